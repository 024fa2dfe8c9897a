//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/store/pgstore"
)

// The benchmarks mirror the same stream of presence changes: 10,000 users
// with one resource each, every event a new status, and one event in ten
// taking a resource offline or back online (so sessions and last activity
// move too). They report events per second mirrored (current state and
// history together). Compare with benchstat; docs/benchmarks.md has the
// results.

const benchUsers = 10_000

// events returns n events as the tracker would publish them.
func benchEvents(n int) []presence.Event {
	tr := presence.New(presence.Options{})
	_, _, sub := tr.Subscribe(presence.Filter{}, n+benchUsers)
	online := make([]bool, benchUsers)
	for i := 0; i < n; i++ {
		u := i % benchUsers
		up := presence.Update{User: fmt.Sprintf("user%d@example.org", u), Resource: "pc", Available: true,
			Status: fmt.Sprintf("status %d", i), Priority: 1}
		if i%10 == 9 && online[u] {
			up.Available = false
		}
		online[u] = up.Available
		tr.Apply(up)
	}
	out := make([]presence.Event, n)
	got, _ := sub.TryRead(out)
	return out[:got]
}

// BenchmarkMirror: the pgstore path (Apply in batches of 1,000, as the
// store writer hands them over, then the write-behind flush).
func BenchmarkMirror(b *testing.B) {
	evs := benchEvents(b.N)
	s := open(b, newDB(b, adminURL), pgstore.Config{FlushInterval: time.Hour}) // flush by size only
	defer s.Close()
	ctx := context.Background()
	b.ResetTimer()
	for len(evs) > 0 {
		n := min(1000, len(evs))
		s.Apply(ctx, evs[:n])
		evs = evs[n:]
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkNaive: the baseline, one autocommit statement per row: an
// upsert (or delete) of the current state and an insert into the history
// for each event.
func BenchmarkNaive(b *testing.B) {
	evs := benchEvents(b.N)
	s := open(b, newDB(b, adminURL), pgstore.Config{})
	defer s.Close()
	ctx := context.Background()
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	b.ResetTimer()
	for i := range evs {
		ev := &evs[i]
		if ev.Kind == presence.EventOffline {
			_, err = conn.Exec(ctx, `DELETE FROM presence_current WHERE user_jid = $1 AND resource = $2`, ev.User, ev.Resource.Name)
		} else {
			_, err = conn.Exec(ctx, `INSERT INTO presence_current (user_jid, resource, show, status, priority, since)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_jid, resource) DO UPDATE SET show = EXCLUDED.show,
				status = EXCLUDED.status, priority = EXCLUDED.priority, since = EXCLUDED.since`,
				ev.User, ev.Resource.Name, string(ev.Resource.Show), ev.Resource.Status, ev.Resource.Priority, ev.Resource.Since)
		}
		if err == nil {
			_, err = conn.Exec(ctx, `INSERT INTO presence_history (at, seq, user_jid, resource, event, show, status, priority)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, ev.Time, int64(ev.Seq), ev.User, ev.Resource.Name, string(ev.Kind),
				string(ev.Resource.Show), ev.Resource.Status, ev.Resource.Priority)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkLag offers events at a fixed 100,000 per second for 3 seconds
// (b.N is ignored: run with -benchtime=1x) with the flusher on its own
// schedule, and reports how long a change takes to be visible in
// presence_current: each 100 ms a marker resource comes online and its
// arrival is polled. It also reports the rate actually offered, to show the load kept
// up.
func BenchmarkLag(b *testing.B) {
	const rate, seconds = 100_000, 3
	evs := benchEvents(rate * seconds)
	s := open(b, newDB(b, adminURL), pgstore.Config{})
	defer s.Close()
	ctx := context.Background()
	poll, err := pgx.Connect(ctx, s.Pool().Config().ConnConfig.ConnString())
	if err != nil {
		b.Fatal(err)
	}
	defer poll.Close(ctx)

	type marker struct {
		status string
		at     time.Time
	}
	markers := make(chan marker, 100)
	var lags []time.Duration
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for m := range markers {
			for {
				var n int
				poll.QueryRow(ctx, `SELECT count(*) FROM presence_current WHERE user_jid = 'marker@example.org' AND resource = $1`, m.status).Scan(&n)
				if n == 1 {
					lags = append(lags, time.Since(m.at))
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond) // 1,000 events per tick
	defer tick.Stop()
	seq := uint64(len(evs))
	for i := 0; len(evs) > 0; i++ {
		<-tick.C
		n := min(rate/100, len(evs))
		s.Apply(ctx, evs[:n])
		evs = evs[n:]
		if i%10 == 0 {
			seq++
			st := fmt.Sprintf("marker %d", i)
			s.Apply(ctx, []presence.Event{{Seq: seq, Kind: presence.EventChanged, Time: time.Now(), User: "marker@example.org",
				Resource: presence.Resource{Name: st, Since: time.Now()}, Aggregate: presence.Aggregate{Online: true}}})
			markers <- marker{st, time.Now()}
		}
	}
	offered := float64(rate*seconds) / time.Since(start).Seconds()
	close(markers)
	<-pollDone
	b.StopTimer()
	slices.Sort(lags)
	b.ReportMetric(offered, "offered_events/s")
	b.ReportMetric(float64(lags[len(lags)/2].Milliseconds()), "lag_p50_ms")
	b.ReportMetric(float64(lags[len(lags)-1].Milliseconds()), "lag_max_ms")
}
