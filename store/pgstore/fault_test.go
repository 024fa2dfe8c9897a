//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/poll"
	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/store"
	"github.com/presenced/presenced/store/pgstore"
)

// TestDatabaseGoesAwayUnderLoad stops PostgreSQL while changes keep coming,
// then starts it again: presenced keeps serving, the store reports itself
// degraded, and once the database is back the final state of every resource
// is there, with every history row (the bound is not reached here) and a
// counted loss when the bound is small. It runs its own cluster, since it
// must stop it.
func TestDatabaseGoesAwayUnderLoad(t *testing.T) {
	for _, limit := range []int{0, 50} {
		t.Run(fmt.Sprintf("HistoryLimit=%d", limit), func(t *testing.T) {
			dir := t.TempDir()
			url, err := startCluster(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer stopCluster(dir)
			s := open(t, url, pgstore.Config{FlushInterval: 20 * time.Millisecond, HistoryLimit: limit})
			defer s.Close()
			tr := presence.New(presence.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			w := &store.Writer{Tracker: tr, Store: s, Logger: quiet}
			done := make(chan struct{})
			go func() { w.Serve(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			load := func(from, to int) {
				for i := from; i < to; i++ {
					tr.Apply(presence.Update{User: fmt.Sprintf("u%d@x", i%20), Resource: "r", Available: i%7 != 0,
						Status: fmt.Sprint(i), Priority: i % 3})
				}
			}
			load(0, 200)
			waitFor(t, "the first writes", func() bool { return s.Flush(context.Background()) == nil })

			if err := stopCluster(dir); err != nil {
				t.Fatal(err)
			}
			load(200, 400) // the core goes on; the store buffers
			waitFor(t, "the store to report itself degraded", func() bool { return s.Health() != nil })
			load(400, 600)

			if _, err := startCluster(dir); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the store to catch up", func() bool {
				return s.Health() == nil && s.Flush(context.Background()) == nil
			})
			got, err := s.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want, _ := tr.Snapshot()
			if len(got) != len(want) {
				t.Fatalf("database has %d users, tracker %d", len(got), len(want))
			}
			for i := range got {
				if got[i].JID != want[i].JID || got[i].Online != want[i].Online || got[i].Status != want[i].Status || got[i].Priority != want[i].Priority {
					t.Fatalf("user %s: database %+v, tracker %+v", want[i].JID, got[i], want[i])
				}
			}
			// The writer starts with a snapshot, so history begins where it
			// subscribed; from there on no event may be missing.
			var rows, minSeq, maxSeq int64
			s.Pool().QueryRow(context.Background(), `SELECT count(*), min(seq), max(seq) FROM presence_history`).Scan(&rows, &minSeq, &maxSeq)
			_, seq := tr.Snapshot()
			if limit == 0 && (rows != maxSeq-minSeq+1 || uint64(maxSeq) != seq) {
				t.Fatalf("history has %d rows for seq %d..%d, the feed ended at %d: rows were lost", rows, minSeq, maxSeq, seq)
			}
			if limit > 0 && (s.Dropped() == 0 || rows+s.Dropped() < maxSeq-minSeq+1) {
				t.Fatalf("%d history rows for seq %d..%d, %d counted as dropped, with a bound of %d", rows, minSeq, maxSeq, s.Dropped(), limit)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.True(t, what, 30*time.Second, cond)
}
