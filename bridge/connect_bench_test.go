package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presenced/presenced/presence"
)

// BenchmarkConnectStorm measures a WebSocket connect storm over loopback
// TCP: a tracker of N users, a goroutine applying status changes all along
// (paced at stormUpdateRate), and per op a storm of `connects` stream
// connects without a filter (the full feed), at most stormInFlight at a
// time; each client reads its snapshot frame (the payload is discarded,
// only the seq is parsed) and closes. Metrics, per storm: connects/s, the
// snapshot encodes the server made (presence_bridge_snapshot_encodes_total;
// a build without that counter encodes once per connect, stream.go), the
// distinct snapshot seqs the clients saw, the 99.9th percentile of one
// Apply's time during the storm (and in the second before the storms,
// without one: p99.9-quiet), and the bytes allocated in the process
// (server and clients) per storm.
//
//	go test ./bridge -run '^$' -bench ConnectStorm -benchtime 1x -count 6
func BenchmarkConnectStorm(b *testing.B) {
	for _, tt := range []struct{ users, connects, inFlight int }{
		{10_000, 1000, 50},
		{100_000, 1000, 50},
		{100_000, 100, 50},
		{1_000_000, 100, 10},
	} {
		b.Run(fmt.Sprintf("users=%d/connects=%d", tt.users, tt.connects), func(b *testing.B) {
			if testing.Short() && tt.users > 100_000 {
				b.Skip("short")
			}
			benchConnectStorm(b, tt.users, tt.connects, tt.inFlight)
		})
	}
}

// stormUpdateRate is the changes per second the updater applies.
const stormUpdateRate = 2000

// stormTrackers keeps one tracker per size across the runs of -count, so
// that building a million users is paid once per process.
var stormTrackers = map[int]*presence.Tracker{}

func stormTracker(n int) *presence.Tracker {
	if tr := stormTrackers[n]; tr != nil {
		return tr
	}
	tr := presence.New(presence.Options{MaxUsers: 2 * n})
	for i := range n {
		show := presence.ShowNone
		if i%4 == 0 {
			show = presence.ShowAway
		}
		tr.Apply(presence.Update{User: "u" + strconv.Itoa(i) + "@example.org", Resource: "r", Available: true, Show: show, Status: "here"})
	}
	stormTrackers[n] = tr
	return tr
}

func benchConnectStorm(b *testing.B, users, connects, inFlight int) {
	tr := stormTracker(users)
	reg := prometheus.NewRegistry()
	// A long write timeout: with an encoding per connect, a client may
	// wait long for the CPU to read its snapshot.
	br := New(Config{Tracker: tr, Logger: quietLog, PingInterval: time.Hour, RatePerSecond: 1e9, RateBurst: 1 << 30,
		Registerer: reg, WriteTimeout: 2 * time.Minute})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- br.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()
	addr := ln.Addr().String()

	// The updater runs for the whole benchmark; waits records the time of
	// each Apply while measuring is set.
	var mu sync.Mutex
	var waits []time.Duration
	measuring := false
	stop := make(chan struct{})
	updated := make(chan struct{})
	go func() {
		defer close(updated)
		rng := rand.New(rand.NewPCG(1, 2))
		start := time.Now()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if wait := time.Until(start.Add(time.Duration(i) * time.Second / stormUpdateRate)); wait > 0 {
				time.Sleep(wait)
			}
			u := presence.Update{User: "u" + strconv.Itoa(rng.IntN(users)) + "@example.org", Resource: "r",
				Available: true, Status: "s" + strconv.Itoa(i)}
			began := time.Now()
			tr.Apply(u)
			took := time.Since(began)
			mu.Lock()
			if measuring {
				waits = append(waits, took)
			}
			mu.Unlock()
		}
	}()
	defer func() { close(stop); <-updated }()

	// The same updates without a storm, for comparison: one second.
	mu.Lock()
	measuring = true
	mu.Unlock()
	time.Sleep(time.Second)
	mu.Lock()
	measuring = false
	quiet := slices.Clone(waits)
	waits = waits[:0]
	mu.Unlock()
	slices.Sort(quiet)

	encodesBefore := counterValue(reg, "presence_bridge_snapshot_encodes_total")
	var elapsed time.Duration
	var allocated uint64
	seqs := map[uint64]bool{}
	var seqMu sync.Mutex
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		mu.Lock()
		measuring = true
		mu.Unlock()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		began := time.Now()
		sem := make(chan struct{}, inFlight)
		errs := make(chan error, connects)
		var wg sync.WaitGroup
		for range connects {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				seq, err := connectForSnapshot(addr)
				if err != nil {
					errs <- err
					return
				}
				seqMu.Lock()
				seqs[seq] = true
				seqMu.Unlock()
			}()
		}
		wg.Wait()
		elapsed += time.Since(began)
		runtime.ReadMemStats(&ms1)
		allocated += ms1.TotalAlloc - ms0.TotalAlloc
		mu.Lock()
		measuring = false
		mu.Unlock()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	storms := float64(b.N)
	encodes := float64(connects) * storms // one per connect without the counter
	if after := counterValue(reg, "presence_bridge_snapshot_encodes_total"); after >= 0 {
		encodes = after - encodesBefore
	}
	mu.Lock()
	slices.Sort(waits)
	var p999 time.Duration
	if len(waits) > 0 {
		p999 = waits[min(len(waits)-1, len(waits)*999/1000)]
	}
	mu.Unlock()
	b.ReportMetric(float64(connects)*storms/elapsed.Seconds(), "connects/s")
	b.ReportMetric(encodes/storms, "encodes/storm")
	b.ReportMetric(float64(len(seqs))/storms, "seqs/storm")
	b.ReportMetric(float64(p999.Microseconds())/1000, "p99.9-update-ms")
	if len(quiet) > 0 {
		b.ReportMetric(float64(quiet[len(quiet)*999/1000].Microseconds())/1000, "p99.9-quiet-update-ms")
	}
	b.ReportMetric(float64(allocated)/storms/(1<<20), "MiB-alloc/storm")
}

// counterValue returns the value of a counter without labels in reg, or
// -1 if reg has none of that name.
func counterValue(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

// connectForSnapshot opens a stream, reads the first message (the
// snapshot) and closes; it returns the snapshot's seq. The payload is
// discarded as it comes, so that the clients allocate little.
func connectForSnapshot(addr string) (uint64, error) {
	c, rest, err := rawDial(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := io.MultiReader(bytes.NewReader(rest), c)
	var hdr [10]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return 0, err
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, hdr[2:4]); err != nil {
			return 0, err
		}
		n = uint64(hdr[2])<<8 | uint64(hdr[3])
	case 127:
		if _, err := io.ReadFull(r, hdr[2:10]); err != nil {
			return 0, err
		}
		n = 0
		for _, x := range hdr[2:10] {
			n = n<<8 | uint64(x)
		}
	}
	head := make([]byte, min(n, 64))
	if _, err := io.ReadFull(r, head); err != nil {
		return 0, err
	}
	const prefix = `{"type":"snapshot","seq":`
	if !bytes.HasPrefix(head, []byte(prefix)) {
		return 0, fmt.Errorf("first message %q is not a snapshot", head)
	}
	digits := head[len(prefix):]
	if i := bytes.IndexByte(digits, ','); i >= 0 {
		digits = digits[:i]
	}
	seq, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, errors.New("snapshot without a seq")
	}
	if _, err := io.CopyN(io.Discard, r, int64(n)-int64(len(head))); err != nil {
		return 0, err
	}
	return seq, nil
}
