package presence

// The reader operations of reads_bench_test.go, done as the readers do
// them with the index (bridge/rest.go, internal/app/metrics.go,
// bridge/stream.go); testdata/reads_ops_baseline.go.txt has the same with
// Snapshot, for the design before it.

import "time"

func newReadTracker() *Tracker {
	return New(Options{Domains: []string{"example.org", "example.net", "example.com"}})
}

// readPage returns how many users one page (limit) after the cursor has,
// read as bridge/rest.go reads it: Tracker.Range, no View.
func readPage(tr *Tracker, after string, domains, shows []string, limit int) int {
	n := 0
	_, _ = tr.Range(Query{After: after, Domains: domains, States: shows, Limit: limit + 1}, func(*User) bool {
		n++
		return n <= limit // one more, for the next cursor
	})
	return min(n, limit)
}

// readCounts is bridge/rest.go's GET /v1/counts: without a filter (domain
// empty) for a client that sees everyone, the kept counts (Tracker.Counts);
// with a domain, Tracker.Count (whole buckets under the lock, no View).
func readCounts(tr *Tracker, domain string) int {
	var counts []DomainCounts
	if domain == "" {
		counts = tr.Counts().Domains
	} else {
		counts, _, _ = tr.Count(Query{Domains: []string{domain}}) // no states: no error
	}
	n := 0
	for _, d := range counts {
		n += d.Total()
	}
	return n
}

// readScrape returns the series of presence_tracker_users, as
// internal/app/metrics.go reads them: from Counts, no View.
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
// does it: a filtered client's connect encodes its snapshot from a View of
// at most a second ago (RecentView; the hub then replays the changes after
// it); a full-feed client's gets the snapshot another connect encoded at
// most a second ago (bridge/snapshot.go), so those take one View a second
// between them (lastShared: when the last was taken).
func readConnect(tr *Tracker, filtered bool, lastShared *time.Time) {
	if filtered {
		tr.RecentView(time.Second)
		return
	}
	if now := time.Now(); now.Sub(*lastShared) >= time.Second {
		tr.View()
		*lastShared = now
	}
}
