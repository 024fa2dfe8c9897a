package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/bridge"
	"github.com/presenced/presenced/internal/wsframe"
	"github.com/presenced/presenced/presence"
)

// TestMain lets the test binary be the tool's server child: runClient
// starts its own executable with -serve, which is this binary in a test.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve" {
		main() // serves until the parent kills it
		return
	}
	os.Exit(m.Run())
}

// wireChange is what the tool needs of a change frame, decoded properly.
type wireChange struct {
	Type string    `json:"type"`
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
}

// decodeChanges decodes a stream message as JSON: a change, or a changes
// batch expanded.
func decodeChanges(t *testing.T, m []byte) []wireChange {
	t.Helper()
	var v struct {
		wireChange
		Frames []json.RawMessage `json:"frames"`
	}
	if err := json.Unmarshal(m, &v); err != nil {
		t.Fatalf("%v: %s", err, m)
	}
	switch v.Type {
	case "change":
		return []wireChange{v.wireChange}
	case "changes":
		var out []wireChange
		for _, f := range v.Frames {
			out = append(out, decodeChanges(t, f)...)
		}
		return out
	}
	t.Fatalf("a message of type %q: %s", v.Type, m)
	return nil
}

// TestWireContract pins what the tool's matchers rely on in the bridge's
// encoding of change frames (bridge/wire.go changeFrame and
// appendChanges), on real frames from a real bridge: it counts the change
// frames of a message as the occurrences of `"type":"change"` (a "changes"
// batch is `"type":"changes"`, which must not match), and samples their
// latency from every `"time":"` in the message, which must be the change's
// time in RFC 3339 with nanoseconds and the only field of that name. If
// this fails, the bridge's wire format changed under the tool: fix
// message and eachTime (sub.go) before trusting its numbers.
func TestWireContract(t *testing.T) {
	tr := presence.New(presence.Options{})
	for i := range 3 {
		tr.Apply(presence.Update{User: "user" + strconv.Itoa(i) + "@example.org", Resource: "pc", Available: true})
	}
	// A long flush interval: the first change goes out alone, the ones
	// right after it wait and go out as one "changes" batch.
	b := bridge.New(bridge.Config{Tracker: tr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		RatePerSecond: 1e6, RateBurst: 1e6, StreamFlushInterval: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Start(ctx)
	srv := httptest.NewServer(b)
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, snap, err := c.ReadMessage(); err != nil || bytes.Contains(snap, changeKey) {
		t.Fatalf("snapshot %v: %.200s (a snapshot must not count as a change)", err, snap)
	}

	// One change alone (a "change" message), then five at once (a
	// "changes" batch: they come within the flush interval).
	apply := func(n int) {
		u := presence.Update{User: "user" + strconv.Itoa(n%3) + "@example.org", Resource: "pc", Available: n != 4, Status: "s" + strconv.Itoa(n)}
		if n == 2 {
			u.Idle = time.Now().Add(-time.Minute) // another time field: idle_since
		}
		tr.Apply(u)
	}
	singles, batches := 0, 0
	read := func(changes int) {
		for seen := 0; seen < changes; {
			op, m, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if op != websocket.TextMessage {
				t.Fatalf("opcode %d", op)
			}
			want := decodeChanges(t, m)
			if len(want) > 1 {
				batches++
			} else {
				singles++
			}
			seen += len(want)
			if got := bytes.Count(m, changeKey); got != len(want) {
				t.Errorf("`%s` occurs %d times in a message of %d changes: %s", changeKey, got, len(want), m)
			}
			var times []time.Time
			eachTime(m, func(tm time.Time) { times = append(times, tm) })
			if len(times) != len(want) {
				t.Fatalf("%d times read in a message of %d changes: %s", len(times), len(want), m)
			}
			for i, w := range want {
				if !times[i].Equal(w.Time) || w.Time.IsZero() {
					t.Errorf("change %d: time read %v, the frame's is %v", w.Seq, times[i], w.Time)
				}
			}
			// And the tool's handler counts them.
			s := &rawSub{lat: newLatencies()}
			s.Message(nil, wsframe.Text, m)
			if s.frames != int64(len(want)) {
				t.Errorf("rawSub counted %d change frames of %d", s.frames, len(want))
			}
		}
	}
	apply(0)
	read(1)
	// A machine stalled for the whole interval between two of them would
	// send them alone: then again.
	for try := 0; batches == 0 && try < 5; try++ {
		for n := 1; n < 6; n++ {
			apply(n)
		}
		read(5)
	}
	if singles == 0 || batches == 0 {
		t.Fatalf("%d single change messages and %d batches: the test did not see both encodings", singles, batches)
	}
}

func TestMessageIgnoresOtherOpcodes(t *testing.T) {
	s := &rawSub{lat: newLatencies()}
	frame := []byte(`{"type":"change","seq":1,"time":"2026-01-02T03:04:05.123456789Z"}`)
	for _, op := range []byte{wsframe.Binary, wsframe.Ping, wsframe.Pong, wsframe.Close} {
		if !s.Message(nil, op, frame) {
			t.Fatalf("opcode %#x closed the connection", op)
		}
	}
	if s.frames != 0 {
		t.Fatalf("%d frames counted from non-text messages", s.frames)
	}
	for range 80 { // sampled 1 in 8: some are
		s.Message(nil, wsframe.Text, frame)
	}
	if s.frames != 80 || s.lat.count() == 0 {
		t.Fatalf("frames %d, latencies sampled %d", s.frames, s.lat.count())
	}
	s.Closed(nil, io.EOF)
	if !s.closed {
		t.Fatal("Closed did not mark the subscriber")
	}
}

func TestEachTime(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 7, 10, 22, 123456789, time.UTC)
	for _, tt := range []struct {
		name string
		in   string
		want []time.Time
	}{
		{"none", `{"type":"snapshot","seq":3}`, nil},
		{"one", `{"type":"change","time":"2026-11-27T07:10:22.123456789Z"}`, []time.Time{t0}},
		{"offset and fewer digits", `{"time":"2026-11-27T08:10:22.1+01:00"}`, []time.Time{t0.Truncate(100 * time.Millisecond)}},
		{"batch", `{"frames":[{"time":"2026-11-27T07:10:22.123456789Z"},{"time":"2026-11-27T07:10:23.123456789Z"}]}`,
			[]time.Time{t0, t0.Add(time.Second)}},
		{"not a time: skipped", `{"time":"yesterday"},{"time":"2026-11-27T07:10:22.123456789Z"}`, []time.Time{t0}},
		{"empty: skipped", `{"time":""}`, nil},
		{"cut", `{"time":"2026-11-27T07:10`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Time
			eachTime([]byte(tt.in), func(tm time.Time) { got = append(got, tm) })
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if !got[i].Equal(tt.want[i]) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestLatencies(t *testing.T) {
	ms := time.Millisecond
	for _, tt := range []struct {
		name          string
		in            []time.Duration
		p50, p99, max time.Duration
	}{
		{"empty", nil, 0, 0, 0},
		{"one", []time.Duration{7 * ms}, 7 * ms, 7 * ms, 7 * ms},
		{"1..100 ms", func() (d []time.Duration) {
			for i := 100; i >= 1; i-- {
				d = append(d, time.Duration(i)*ms)
			}
			return
		}(), 50 * ms, 99 * ms, 100 * ms},
		{"negative counts as 0", []time.Duration{-time.Second, -time.Second, 3 * ms}, 0, 3 * ms, 3 * ms},
		{"over an hour counts as an hour", []time.Duration{2 * time.Hour}, time.Hour, time.Hour, time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLatencies()
			for _, d := range tt.in {
				l.record(d)
			}
			// HDR with 3 significant digits: within 0.1%, and never above the maximum.
			near := func(got, want time.Duration) bool {
				return got <= l.max && got >= want-want/1000 && got <= want+want/1000
			}
			if !near(l.pct(0.5), tt.p50) || !near(l.pct(0.99), tt.p99) || l.pct(1) != tt.max {
				t.Fatalf("p50 %v p99 %v max %v, want %v %v %v", l.pct(0.5), l.pct(0.99), l.pct(1), tt.p50, tt.p99, tt.max)
			}
			if l.count() != int64(len(tt.in)) {
				t.Fatalf("count %d, want %d", l.count(), len(tt.in))
			}
		})
	}
}

// The output line is what docs/benchmarks.md's numbers and scripts read.
func TestResultString(t *testing.T) {
	r := result{subs: 1000, rate: 500, offered: 2500, delivered: 2_499_000, loadTime: 5 * time.Second,
		p50: 3456 * time.Microsecond, p99: 9500 * time.Microsecond, max: 41 * time.Millisecond,
		idleBytes: 10240.4, idleStacks: 5600, idleRSS: 12000, serverCPU: 2.54, clientCPU: 1.66, serverWrites: 510000}
	want := "subscribers=1000 rate=500 offered=2500 expected=2500000 delivered=2499000 deliveries_per_s=499800 p50=3ms p99=10ms max=41ms " +
		"idle_bytes_per_conn=10240 (stacks 5600) idle_rss_per_conn=12000 server_cpu_s=2.5 client_cpu_s=1.7 load_s=5.0 server_writes=510000"
	if got := r.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSelfStats(t *testing.T) {
	st := selfStats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if st.RSS <= 0 || uint64(st.RSS) > 4*ms.Sys+(1<<30) {
		t.Errorf("RSS %d bytes (the runtime has %d from the system)", st.RSS, ms.Sys)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	for range 3 {
		pw.Write([]byte("x"))
	}
	if after := selfStats(); after.Writes-st.Writes < 3 {
		t.Errorf("write syscalls %d, then %d after 3 writes", st.Writes, after.Writes)
	}
	if st.HeapInuse == 0 || st.Goroutines == 0 || st.CPUSeconds <= 0 {
		t.Errorf("stats %+v", st)
	}
}

// A short run of the whole tool: the server child (this binary with
// -serve, see TestMain), subscribers over loopback, a second of load.
func TestSmoke(t *testing.T) {
	start := time.Now()
	res, err := runClient(config{subs: 20, rate: 50, dur: time.Second, users: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v (%.1fs)", res, time.Since(start).Seconds())
	// Every change is delivered, unless the machine is so loaded that some
	// come after the second the tool waits for them.
	if res.offered != 50 || res.expected() != 1000 || res.delivered > res.expected() || res.delivered < res.expected()*9/10 {
		t.Errorf("offered %d, delivered %d of %d", res.offered, res.delivered, res.expected())
	}
	if res.samples == 0 || res.p50 <= 0 || res.p50 > res.p99 || res.p99 > res.max || res.max > 10*time.Second {
		t.Errorf("latencies: %d samples, p50 %v p99 %v max %v", res.samples, res.p50, res.p99, res.max)
	}
	if res.serverWrites <= 0 || res.serverCPU <= 0 || res.loadTime < time.Second {
		t.Errorf("server writes %d, CPU %.2f s, load %v", res.serverWrites, res.serverCPU, res.loadTime)
	}
	if !strings.HasPrefix(res.String(), "subscribers=20 rate=50 offered=50 expected=1000 delivered=") {
		t.Errorf("line %s", res)
	}
}
