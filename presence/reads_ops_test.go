package presence

// The reader operations of reads_bench_test.go, done as the readers do
// them with the index (bridge/rest.go, cmd/presenced/metrics.go,
// bridge/stream.go); testdata/reads_ops_baseline.go.txt has the same with
// Snapshot, for the design before it.

import "time"

func newReadTracker() *Tracker {
	return New(Options{Domains: []string{"example.org", "example.net", "example.com"}})
}

// readPage returns how many users one page (limit) after the cursor has.
func readPage(tr *Tracker, after string, domains, shows []string, limit int) int {
	return pageOf(tr.View(), after, domains, shows, limit)
}

func pageOf(v *View, after string, domains, shows []string, limit int) int {
	n := 0
	_ = v.Range(Query{After: after, Domains: domains, States: shows}, func(*User) bool {
		n++
		return n <= limit // one more, for the next cursor
	})
	return min(n, limit)
}

// readCounts is bridge/rest.go's GET /v1/counts: without a filter (domain
// empty) for a client that sees everyone, the kept counts (Tracker.Counts,
// no View); with a domain, a View and its Count, as a filtered request
// takes, so that it costs the tracker what the bridge's read costs it.
func readCounts(tr *Tracker, domain string) int {
	var counts []DomainCounts
	if domain == "" {
		counts = tr.Counts().Domains
	} else {
		counts, _ = tr.View().Count(Query{Domains: []string{domain}}) // no states: no error
	}
	n := 0
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

// readConnect is the tracker's part of a WebSocket connect as the bridge
// does it: a filtered client's connect takes a View (its snapshot is
// encoded from it outside the lock; the hub's one subscription serves every
// connection); a full-feed client's gets the snapshot another connect
// encoded at most a second ago (bridge/snapshot.go), so those take one View
// a second between them (lastShared: when the last was taken).
func readConnect(tr *Tracker, filtered bool, lastShared *time.Time) {
	if filtered {
		tr.View()
		return
	}
	if now := time.Now(); now.Sub(*lastShared) >= time.Second {
		tr.View()
		*lastShared = now
	}
}
