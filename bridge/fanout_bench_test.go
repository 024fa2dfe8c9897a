package bridge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/wsframe"
	"github.com/presenced/presenced/presence"
)

// BenchmarkFanout measures the stream's fan-out over loopback TCP: N
// subscribers, each a real socket read by a goroutine of its own with the
// load tools' frame parser (no WebSocket library on the client side, so
// that the clients take little of the CPU they share with the server). One
// op is a round: roundChanges changes applied to the tracker, done when
// every subscriber has read the round's last one. The flush interval is
// off (a flush per read from the tracker), so a round costs the hub's
// encoding and the writers' writes, not a timer's wait. Metrics:
// deliveries/s (changes × subscribers per second) and ns/delivery.
//
// cmd/presenced-fanout is the heavier load tool (a server in a child
// process, open-loop rates, latency); this is the re-runnable number for
// comparing two builds in one run:
//
//	go test ./bridge -run '^$' -bench Fanout -benchmem -count 6
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) { benchFanout(b, n) })
	}
}

// roundChanges is the changes of one round of BenchmarkFanout: one
// "changes" message (maxBatch) when the hub reads them at once.
const roundChanges = 64

func benchFanout(b *testing.B, n int) {
	tr := presence.New(presence.Options{})
	br := New(Config{Tracker: tr, Logger: quietLog, PingInterval: time.Hour, StreamFlushInterval: -1,
		RatePerSecond: 1e9, RateBurst: 1 << 30})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- br.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()

	// marker is what the round's last change carries, as its frame has it;
	// each subscriber reports a round once on done.
	var marker atomic.Pointer[[]byte]
	none := []byte("\x00never")
	marker.Store(&none)
	done := make(chan struct{}, n)
	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	for range n {
		c, rest, err := rawDial(ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			benchRead(c, rest, &marker, done)
		}()
	}
	users := make([]string, roundChanges)
	for i := range users {
		users[i] = fmt.Sprintf("u%d@example.org", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		m := []byte(fmt.Sprintf(`"status":"end-%d"`, i))
		marker.Store(&m)
		for k, u := range users {
			status := fmt.Sprintf("r%d", i)
			if k == len(users)-1 {
				status = fmt.Sprintf("end-%d", i)
			}
			tr.Apply(presence.Update{User: u, Resource: "r", Available: true, Status: status})
		}
		for range n {
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				b.Fatalf("round %d: not every subscriber got the round's last change", i)
			}
		}
	}
	elapsed := time.Since(start)
	deliveries := float64(b.N) * roundChanges * float64(n)
	b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
}

// rawDial opens a stream with a hand-written upgrade request and returns
// the socket and what came after the response's header.
func rawDial(addr string) (net.Conn, []byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	_, err = io.WriteString(c, "GET /v1/stream HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	buf := make([]byte, 0, 4096)
	for err == nil {
		var k int
		k, err = c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			if !bytes.HasPrefix(buf, []byte("HTTP/1.1 101")) {
				c.Close()
				return nil, nil, fmt.Errorf("upgrade refused: %q", buf[:i])
			}
			return c, buf[i+4:], nil
		}
		if len(buf) == cap(buf) {
			err = fmt.Errorf("upgrade response too long")
		}
	}
	c.Close()
	return nil, nil, err
}

// benchRead reads frames until the socket closes, sending on done once per
// marker seen.
func benchRead(c net.Conn, rest []byte, marker *atomic.Pointer[[]byte], done chan<- struct{}) {
	var p wsframe.Parser
	var seen *[]byte
	frame := func(_ bool, _ byte, payload []byte) bool {
		if m := marker.Load(); m != seen && bytes.Contains(payload, *m) {
			seen = m
			done <- struct{}{}
		}
		return true
	}
	buf := make([]byte, 64<<10)
	data := rest
	for {
		if p.Feed(data, frame) != nil {
			return
		}
		k, err := c.Read(buf)
		if err != nil {
			return
		}
		data = buf[:k]
	}
}
