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
// snapshot, then reads every socket from one epoll loop (Linux), so that it
// takes as little of the shared CPU as it can (edge-triggered, raw system
// calls); -nap makes it poll and sleep instead of waiting for each frame.
// -writers sets the server's bridge.Config.StreamWriters. Results are printed as one line of key=value pairs;
// docs/benchmarks.md has the method and the numbers. FANOUT_CPU_PROFILE=file
// writes a CPU profile of the server during the load, and
// FANOUT_HEAP_PROFILE=file a heap profile of the idle connections.
package main
