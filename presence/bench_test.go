package presence

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks measure steady-state updates: every user is online and
// each update changes its status, so each one publishes an event. Compare
// runs with benchstat (docs/benchmarks.md has the method and results).

const benchUsers = 10000

func benchJIDs(n int) []string {
	jids := make([]string, n)
	for i := range jids {
		jids[i] = fmt.Sprintf("user%d@example.org", i)
	}
	return jids
}

var statuses = [2]string{"at my desk", "in a meeting"}

func populated(jids []string) *Tracker {
	tr := New(Options{})
	for _, j := range jids {
		tr.Apply(Update{User: j, Resource: "pc", Available: true, Status: statuses[0]})
	}
	return tr
}

// drain follows the feed as the store writer would, until ctx ends.
func drain(ctx context.Context, tr *Tracker) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]Event, 512)
		for {
			_, _, sub := tr.Subscribe(Filter{}, 1<<16)
			for {
				if _, err := sub.Read(ctx, buf); err != nil {
					sub.Close()
					if ctx.Err() != nil {
						return
					}
					break // lagged: resubscribe
				}
			}
		}
	}()
	return &wg
}

func BenchmarkApply(b *testing.B) {
	for _, subscribed := range []bool{false, true} {
		b.Run(fmt.Sprintf("subscriber=%v", subscribed), func(b *testing.B) {
			jids := benchJIDs(benchUsers)
			tr := populated(jids)
			ctx, cancel := context.WithCancel(context.Background())
			if subscribed {
				defer drain(ctx, tr).Wait()
			}
			defer cancel()
			u := Update{Resource: "pc", Available: true}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				u.User, u.Status = jids[i%benchUsers], statuses[(i/benchUsers+1)%2]
				tr.Apply(u)
			}
		})
	}
}

func BenchmarkApplyParallel(b *testing.B) {
	jids := benchJIDs(benchUsers)
	tr := populated(jids)
	ctx, cancel := context.WithCancel(context.Background())
	defer drain(ctx, tr).Wait()
	defer cancel()
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each worker updates its own slice of users, as independent XMPP
		// connections would.
		w := int(worker.Add(1))
		u := Update{Resource: "pc", Available: true}
		for i := 0; pb.Next(); i++ {
			u.User, u.Status = jids[(w*7919+i)%benchUsers], statuses[i%2]
			tr.Apply(u)
		}
	})
}

// actorTracker is the baseline the design was chosen against: one
// goroutine per user owning that user's state, fed through a channel, with
// the ordered feed still behind a lock (events need one total order). It is
// a benchmark-only sketch with just enough semantics for steady-state
// updates.
type actorTracker struct {
	inbox map[string]chan Update
	mu    sync.Mutex
	seq   uint64
	ring  []Event
	done  sync.WaitGroup
}

func newActorTracker(jids []string) *actorTracker {
	a := &actorTracker{inbox: make(map[string]chan Update, len(jids)), ring: make([]Event, 4096)}
	for _, j := range jids {
		ch := make(chan Update, 64)
		a.inbox[j] = ch
		go a.actor(j, ch)
	}
	return a
}

func (a *actorTracker) actor(jid string, in <-chan Update) {
	var res Resource
	for u := range in {
		if u.Status != res.Status {
			res.Name, res.Status, res.Since = u.Resource, u.Status, time.Now()
			ev := Event{Kind: EventChanged, User: jid, Resource: res, Aggregate: Aggregate{Online: true, Status: res.Status, Resource: res.Name}}
			a.mu.Lock()
			a.seq++
			ev.Seq = a.seq
			a.ring[a.seq%uint64(len(a.ring))] = ev
			a.mu.Unlock()
		}
		a.done.Done()
	}
}

func (a *actorTracker) apply(u Update) {
	a.done.Add(1)
	a.inbox[u.User] <- u
}

func (a *actorTracker) close() {
	for _, ch := range a.inbox {
		close(ch)
	}
}

func BenchmarkActorBaselineParallel(b *testing.B) {
	jids := benchJIDs(benchUsers)
	a := newActorTracker(jids)
	defer a.close()
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(worker.Add(1))
		u := Update{Resource: "pc", Available: true}
		for i := 0; pb.Next(); i++ {
			u.User, u.Status = jids[(w*7919+i)%benchUsers], statuses[i%2]
			a.apply(u)
		}
	})
	a.done.Wait() // every update applied, not just queued
}

// BenchmarkMemoryPerUser reports the heap held per online user with
// 1,000,000 users of one resource each. Run it once: -benchtime=1x.
func BenchmarkMemoryPerUser(b *testing.B) {
	const n = 1_000_000
	jids := benchJIDs(n) // allocated before the measurement: the caller's strings
	var before, after runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := populated(jids)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/user")
		runtime.KeepAlive(tr)
	}
}
