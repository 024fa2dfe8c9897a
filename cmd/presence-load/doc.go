// Command presence-load is the load generator of whole-system runs: real
// XMPP users on one side, real dashboards on the other, presenced between.
//
// It logs in -users real XMPP clients over c2s (STARTTLS, SASL, bind:
// internal/xmppclient), makes them change presence at -rate changes per
// second in total, opens -subscribers WebSocket dashboards on presenced's
// /v1/stream, and measures what arrives:
//
//	presence-load -c2s 127.0.0.1:5222 -domain localhost -users 2000 -user 'user%d' -password 'pass%d' \
//	    -rate 1000 -churn 0.05 -duration 60s -subscribers 1000 -stream ws://127.0.0.1:8080/v1/stream
//
// The users must exist with presenced's component on their rosters (a
// "from" or "both" subscription), so that the server broadcasts their
// presence to presenced; scripts/loadrun creates them, starts ejabberd,
// PostgreSQL and presenced, and runs this tool. -user and -password are
// patterns in which %d is the user's number (-user-start, -user-start+1,
// ...).
//
// A run has four phases. The subscribers connect first (-connect-concurrency
// at a time, waiting as long as a 429 answer asks) and get their snapshot.
// Then every user logs in (-login-concurrency at a time, at most -login-rate
// per second if set; a failed login is retried twice, a second and two
// seconds later) and sends its initial presence. Then the load window:
// every action is one presence change, chosen at random: with probability
// -churn a logout (the client closes its stream; the server sends the
// unavailable), otherwise a status change of an idle online user, or the
// login of a user whose -offline pause is over. After -duration it waits up
// to -drain for the last frames, prints the summary, and logs everyone out.
//
// Every change carries a marker: the status text "pl/<seq>/<ns>", the send
// time in nanoseconds since the tool started. The subscribers read it back
// out of the change frames (expanding "changes" batches), so the latency is
// from the client's send to the dashboard's receipt of that change, on one
// clock. A logout is matched by the user's JID against the time its stream
// was closed. Only changes sent in the load window count.
//
// Output: a progress line on stderr every -progress (changes sent/s, frames
// received/s, latency p50/p99 of that interval, how many frames are still
// due, errors), then on stdout one line of key=value pairs (for scripts) and
// a table. "delivered" is the fraction of the expected frames (changes sent
// in the window × subscribers) that arrived with their marker. -cpu
// name=pid,... also reports the CPU seconds of those processes (with their
// descendants, from /proc/PID/stat) from the start of the window to the end
// of the drain, and their ratio when they are named presenced and ejabberd;
// -metrics reads presenced's Prometheus counters (presence stanzas
// received, changes published) over the same interval.
//
// The subscribers' sockets are read by -readers epoll loops (Linux,
// internal/wsload), and frames are scanned for the few fields the tool
// needs rather than decoded: at a million frames a second a JSON decode
// would cost more CPU than the server being measured, and the tool shares
// the machine with it. Errors
// (refused logins, send errors, dropped streams) are counted and reported;
// a dropped stream reconnects with resume=<last seq> after a growing pause,
// a lost XMPP session logs in again after -offline. Nothing retries in a
// tight loop.
//
// It trusts any server certificate: it is meant for private test servers
// on loopback.
//
// # Libraries, and what stays hand-written
//
// Latencies go to HDR histograms (github.com/HdrHistogram/hdrhistogram-go,
// 3 significant digits, where the hand-written one had 64 sub-buckets per
// power of two, 1.6%) behind a mutex, with the exact maximum kept aside;
// the percentiles are read as before (the highest value of the quantile's
// bucket, at most the maximum) and printed in the same format. A record
// costs about 17 ns instead of the lock-free one's 6.5 ns
// (BenchmarkHistRecord, uncontended): at a million frames a second, 1% of
// a core, next to the 2–3 µs of CPU the reader spends on a frame
// (internal/wsload's BenchmarkReader). /proc/PID/stat, /proc/PID/io and
// /proc/stat are read through github.com/prometheus/procfs, presenced's
// /metrics through github.com/prometheus/common/expfmt (the text parser;
// a body that does not parse gives no presenced_* counts, as an
// unreadable one did). The XMPP clients are internal/xmppclient's
// (mellium.im/xmpp).
//
// Hand-written, on purpose:
//
//   - The reader of the sockets (internal/wsload, shared with
//     cmd/presenced-fanout): one edge-triggered epoll loop per -readers for
//     every subscriber, instead of a WebSocket library's goroutine per
//     connection. docs/benchmarks.md measures it with presenced-fanout:
//     with gorilla/websocket reading each connection, that client took 3.5
//     s of CPU over 4 s, later 2.6 s, at 1,000 subscribers × 500 changes/s
//     ("First design"); the epoll reader takes 1.7 s over 5 s at twice the
//     rate ("A cheaper load client"). Here it makes Go's system calls
//     rather than raw ones, so that the XMPP users get the P while it
//     waits.
//   - dialStream's handshake over a raw socket (reader_linux.go): a
//     socket that Go's poller never sees gives the runtime no wake-ups.
//   - The scanning of frames by byte patterns (stream.go), which depends on
//     the field order of bridge/json.go: TestWireContract checks it on
//     real frames of a real bridge.
//   - /proc/PID/task/*/children, for a target's descendants: procfs has no
//     reader for it, and finding them by every process's parent would read
//     all of /proc at each sample.
package main
