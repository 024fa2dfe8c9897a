// Command presenced-fanout measures the bridge's fan-out: deliveries per
// second from one stream of presence changes to many WebSocket subscribers,
// the latency from change to delivery (p50, p99), and the memory each idle
// connection costs.
//
//	presenced-fanout -subscribers 1000 -rate 500 -duration 10s
//
// It runs the server side (a tracker and the bridge, fed by a generator of
// changes) as a child process of its own, so that the CPU of the load
// client and of the server are counted apart, both on this machine's
// loopback. The client connects with a WebSocket library, reads each
// snapshot, then reads every socket from one epoll loop (internal/wsload,
// Linux), so that it takes as little of the shared CPU as it can
// (edge-triggered, raw system calls); -nap makes it poll and sleep instead
// of waiting for each frame. -writers sets the server's
// bridge.Config.StreamWriters. Results are printed as one line of
// key=value pairs; docs/benchmarks.md has the method and the numbers.
// FANOUT_CPU_PROFILE=file writes a CPU profile of the server during the
// load, and FANOUT_HEAP_PROFILE=file a heap profile of the idle
// connections.
//
// # Libraries, and what stays hand-written
//
// The latencies go to an HDR histogram (github.com/HdrHistogram/
// hdrhistogram-go, 3 significant digits) instead of a sorted slice of
// every sample: the percentiles printed, rounded to the millisecond, are
// the same; the maximum is kept exactly. The server's RSS and write(2)
// count come from /proc/self/status and /proc/self/io through
// github.com/prometheus/procfs; CPU times are getrusage(2), as before. The
// handshake and the snapshot are gorilla/websocket's.
//
// Hand-written, on purpose:
//
//   - The reader of the sockets (internal/wsload, shared with
//     cmd/presence-load): one epoll loop for every connection instead of a
//     library's goroutine per connection, since the client shares the two
//     cores with the server it measures. docs/benchmarks.md: with
//     gorilla/websocket reading each connection, the client took 3.5 s of
//     CPU over 4 s, later 2.6 s, at 1,000 subscribers × 500 changes/s, next
//     to the server's 4.2–4.8 s ("First design"); the edge-triggered reader
//     with raw system calls takes 1.7 s over 5 s, at 1,000 × 1,000/s,
//     where the level-triggered one took 1.9–2.0 s ("A cheaper load
//     client").
//   - Counting change frames and reading their "time" by byte patterns
//     (sub.go), not by decoding JSON, for the same reason: at a million
//     frames a second a decode would cost more than the server's work.
//     The patterns depend on the bridge's encoding; TestWireContract
//     checks them on real frames from a real bridge.
//   - The server child (-serve) and its change generator: they are the
//     experiment itself.
package main
