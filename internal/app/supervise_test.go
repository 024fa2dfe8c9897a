package app

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testService records its runs; if panics is set, its first run panics.
type testService struct {
	name   string
	panics bool
	runs   atomic.Int32
	order  *[]string
	mu     *sync.Mutex
	up     chan struct{}
}

func (s *testService) Serve(ctx context.Context) error {
	if s.runs.Add(1) == 1 && s.panics {
		panic("boom")
	}
	s.up <- struct{}{}
	<-ctx.Done()
	s.mu.Lock()
	*s.order = append(*s.order, s.name)
	s.mu.Unlock()
	return ctx.Err()
}

func TestSuperviseRestartsAloneAndStopsInOrder(t *testing.T) {
	var order []string
	var mu sync.Mutex
	up := make(chan struct{}, 10)
	mk := func(name string, panics bool) *testService {
		return &testService{name: name, panics: panics, order: &order, mu: &mu, up: up}
	}
	a, b, c := mk("component", false), mk("bridge", true), mk("writer", false)
	stop := supervise(slog.New(slog.NewTextHandler(io.Discard, nil)), a, b, c)
	for range 3 { // a, c, and b's second run
		select {
		case <-up:
		case <-time.After(10 * time.Second):
			t.Fatal("services did not start")
		}
	}
	if a.runs.Load() != 1 || b.runs.Load() != 2 || c.runs.Load() != 1 {
		t.Fatalf("runs: a=%d b=%d c=%d; want only the panicking one restarted", a.runs.Load(), b.runs.Load(), c.runs.Load())
	}
	stop()
	if len(order) != 3 || order[0] != "component" || order[1] != "bridge" || order[2] != "writer" {
		t.Fatalf("stop order %v", order)
	}
}
