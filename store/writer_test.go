package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/store"
	"github.com/presenced/presenced/store/memstore"
)

// flaky is a Store that fails on demand: no real backend can be told to
// fail on one call, so this one is a named fake.
type flaky struct {
	*memstore.Store
	mu       sync.Mutex
	failNext int
	applied  chan int
}

func (f *flaky) Apply(ctx context.Context, evs []presence.Event) error {
	f.mu.Lock()
	fail := f.failNext > 0
	if fail {
		f.failNext--
	}
	f.mu.Unlock()
	if fail {
		return errors.New("flaky: down")
	}
	err := f.Store.Apply(ctx, evs)
	f.applied <- len(evs)
	return err
}

func TestWriterMirrorsAndRecovers(t *testing.T) {
	tr := presence.New(presence.Options{FeedSize: 8})
	st := &flaky{Store: memstore.New(), failNext: 1, applied: make(chan int, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	w := &store.Writer{Tracker: tr, Store: st, RetryDelay: time.Millisecond}
	done := make(chan error)
	go func() { done <- w.Serve(ctx) }()

	tr.Apply(presence.Update{User: "a@x", Resource: "r", Available: true})
	// The first Apply fails; the writer retries from a snapshot. Then more
	// events than the feed holds arrive: lag, snapshot again.
	for i := range 20 {
		tr.Apply(presence.Update{User: "b@x", Resource: "r", Available: true, Priority: i})
	}
	tr.Apply(presence.Update{User: "a@x", Resource: "r"})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve = %v", err)
	}
	got, _ := st.Load(context.Background())
	want, _ := tr.Snapshot()
	if len(got) != len(want) {
		t.Fatalf("store has %d users, tracker %d", len(got), len(want))
	}
	for i := range got {
		if got[i].JID != want[i].JID || got[i].Online != want[i].Online || got[i].Priority != want[i].Priority {
			t.Fatalf("store %+v\ntracker %+v", got[i], want[i])
		}
	}
}

func TestWriterNeedsParts(t *testing.T) {
	if err := (&store.Writer{}).Serve(context.Background()); err == nil {
		t.Fatal("a Writer without Tracker and Store must refuse to run")
	}
}
