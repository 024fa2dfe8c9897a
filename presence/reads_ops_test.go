package presence

// The reader operations of reads_bench_test.go, done as the readers do
// them with the index (bridge/rest.go, cmd/presenced/metrics.go,
// bridge/stream.go); testdata/reads_ops_baseline.go.txt has the same with
// Snapshot, for the design before it.

import "time"

// readAge is how old a View the recent readers accept (Tracker.RecentView).
const readAge = 5 * time.Millisecond

// readRecent: this design has RecentView (BenchmarkApplyDuringReads then
// runs readers=recent too).
const readRecent = true

func newReadTracker() *Tracker {
	return New(Options{Domains: []string{"example.org", "example.net", "example.com"}})
}

// readPage returns how many users one page (limit) after the cursor has.
func readPage(tr *Tracker, after string, domains, shows []string, limit int) int {
	return pageOf(tr.View(), after, domains, shows, limit)
}

// readPageRecent is readPage from a View up to readAge old.
func readPageRecent(tr *Tracker, after string, domains, shows []string, limit int) int {
	return pageOf(tr.RecentView(readAge), after, domains, shows, limit)
}

func pageOf(v *View, after string, domains, shows []string, limit int) int {
	n := 0
	_ = v.Range(Query{After: after, Domains: domains, States: shows}, func(*User) bool {
		n++
		return n <= limit // one more, for the next cursor
	})
	return min(n, limit)
}

// readCounts is bridge/rest.go's GET /v1/counts without a filter: a View
// and its Count (the kept counts), so that it costs the tracker what the
// bridge's read costs it, a View included.
func readCounts(tr *Tracker) int { return viewCounts(tr.View()) }

// readCountsRecent is readCounts from a View up to readAge old.
func readCountsRecent(tr *Tracker) int { return viewCounts(tr.RecentView(readAge)) }

func viewCounts(v *View) int {
	n := 0
	counts, _ := v.Count(Query{}) // no states: no error
	for _, d := range counts {
		n += d.Total()
	}
	return n
}

// readScrape returns the series of presence_tracker_users, as
// cmd/presenced/metrics.go reads them: from Counts, no View.
func readScrape(tr *Tracker) int {
	n := 0
	for _, d := range tr.Counts().Domains {
		for _, k := range d.Users {
			if k > 0 {
				n++
			}
		}
	}
	return n
}

// readConnect is the tracker's part of a WebSocket connect: the snapshot
// and the subscription (the bridge encodes one snapshot per feed position
// for all such clients).
func readConnect(tr *Tracker) {
	_, sub := tr.SubscribeView(Filter{}, 16)
	sub.Close()
}
