package presence

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The read benchmarks run at 1,000,000 users (the default -max-users):
// 3 served domains and 1 % of users in 100 others, one resource each, a
// quarter of them away and every tenth offline. The reader operations
// (a REST page, counts, a scrape, a WebSocket connect) are in
// reads_ops_test.go; testdata/reads_ops_baseline.go.txt has them for the
// design before the index, so that the same file measures both
// (docs/benchmarks.md has the method).

const readUsers = 1_000_000

var (
	readOnce sync.Once
	readTr   *Tracker
	readJIDs []string
)

func readDomain(i int) string {
	if i%100 == 99 {
		return fmt.Sprintf("d%d.example", i%10000/100)
	}
	return [3]string{"example.org", "example.net", "example.com"}[i%3]
}

// readTracker builds the 1,000,000 users once per process.
func readTracker(b *testing.B) (*Tracker, []string) {
	readOnce.Do(func() {
		readJIDs = make([]string, readUsers)
		for i := range readJIDs {
			readJIDs[i] = fmt.Sprintf("user%07d@%s", (i*7919)%readUsers, readDomain(i))
		}
		readTr = newReadTracker()
		for i, j := range readJIDs {
			show := ShowNone
			if i%4 == 1 {
				show = ShowAway
			}
			readTr.Apply(Update{User: j, Resource: "pc", Available: true, Show: show, Status: statuses[0]})
			if i%10 == 3 {
				readTr.Apply(Update{User: j, Resource: "pc"})
			}
		}
	})
	return readTr, readJIDs
}

// pageQueries are the REST pages the readers ask for: limit 100, a random
// cursor, with and without filters.
var pageQueries = []struct {
	name    string
	domains []string
	shows   []string
}{
	{"all", nil, nil},
	{"domain", []string{"example.net"}, nil},
	{"show", nil, []string{"away"}},
	{"domain+show", []string{"example.com"}, []string{"dnd", "away"}},
	{"other-domain", []string{"d7.example"}, nil},
}

func BenchmarkPage(b *testing.B) {
	tr, jids := readTracker(b)
	for _, pq := range pageQueries {
		b.Run(pq.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for b.Loop() {
				if n := readPage(tr, jids[rng.IntN(len(jids))], pq.domains, pq.shows, 100); n > 100 {
					b.Fatal(n)
				}
			}
		})
	}
}

func BenchmarkCounts(b *testing.B) {
	tr, _ := readTracker(b)
	for _, domain := range []string{"", "example.org"} {
		b.Run("domain="+domain, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if readCounts(tr, domain) == 0 {
					b.Fatal("no users")
				}
			}
		})
	}
}

func BenchmarkScrape(b *testing.B) {
	tr, _ := readTracker(b)
	b.ReportAllocs()
	for b.Loop() {
		if readScrape(tr) == 0 {
			b.Fatal("no series")
		}
	}
}

func BenchmarkConnect(b *testing.B) {
	tr, _ := readTracker(b)
	b.ReportAllocs()
	for b.Loop() {
		readConnect(tr, true, nil) // a filtered client: a View each
	}
}

// pacedRate is the update rate of the paced runs of
// BenchmarkApplyDuringReads: about a third of what two writers reach here
// (and a change every 20 seconds for each of the 1,000,000 users), so that
// the wait of an update is what the readers cost it, not the queue of the
// other writer's updates.
const pacedRate = 50_000

// readUpdate sets u to the next update of the benchmarks: a random user
// goes offline (1 in 10), away (1 in 4) or available, with one of two
// statuses. The mix is the one readTracker starts with, so it stays the
// same however many updates ran before: about a third change the user's
// state (its bucket), a third change only the status, a third change
// nothing (they confirm).
func readUpdate(r *rand.Rand, jids []string, u *Update) {
	*u = Update{User: jids[r.IntN(len(jids))], Resource: "pc"}
	switch k := r.IntN(20); {
	case k < 2:
		return // unavailable
	case k < 7:
		u.Show = ShowAway
	}
	u.Available, u.Status = true, statuses[r.IntN(2)]
}

// BenchmarkApplyDuringReads: 2 goroutines (1 in the one-writer runs)
// apply updates (readUpdate) to random users (b.N in all) while, with
// readers, 4 others each repeat one kind of read with a pause of 1 ms
// after each (REST pages, counts, scrapes, WebSocket connects), each as
// presenced does it (reads_ops_test.go). Counts alternate between
// everyone (Tracker.Counts) and one served domain (Tracker.Count);
// connects between a filtered client (a View of at most a second ago,
// RecentView) and a full-feed one (the bridge's shared snapshot: one View
// a second between them). The writers go as fast as they can, or, in the
// paced runs, at pacedRate between them. It reports the updates per
// second, the 99th, 99.9th percentile and the maximum of the time one
// Apply took (its wait for the lock included) and the reads per second
// the readers achieved.
func BenchmarkApplyDuringReads(b *testing.B) {
	tr, jids := readTracker(b)
	for _, bench := range []struct {
		name    string
		writers int
		rate    int // updates a second for the writers together; 0: as fast as they can
	}{
		{"readers=false", 2, 0}, {"readers=true", 2, 0},
		{"paced/readers=false", 2, pacedRate}, {"paced/readers=true", 2, pacedRate},
		{"one-writer/readers=false", 1, 0}, {"one-writer/readers=true", 1, 0},
	} {
		mode := bench.name[strings.LastIndexByte(bench.name, '=')+1:]
		b.Run(bench.name, func(b *testing.B) {
			stop := make(chan struct{})
			var rwg sync.WaitGroup
			var reads atomic.Int64
			if mode != "false" {
				var countsN, connectsN int
				var lastShared time.Time
				ops := []func(*rand.Rand){
					func(r *rand.Rand) {
						pq := pageQueries[r.IntN(len(pageQueries))]
						readPage(tr, jids[r.IntN(len(jids))], pq.domains, pq.shows, 100)
					},
					func(*rand.Rand) {
						countsN++
						readCounts(tr, []string{"", "example.org"}[countsN%2])
					},
					func(*rand.Rand) { readScrape(tr) },
					func(*rand.Rand) {
						connectsN++
						readConnect(tr, connectsN%2 == 0, &lastShared)
					},
				}
				for i, op := range ops {
					rwg.Add(1)
					go func() {
						defer rwg.Done()
						r := rand.New(rand.NewPCG(uint64(i), 9))
						for {
							select {
							case <-stop:
								return
							default:
							}
							op(r)
							reads.Add(1)
							time.Sleep(time.Millisecond)
						}
					}()
				}
				time.Sleep(50 * time.Millisecond) // the readers are under way
			}
			writers := bench.writers
			waits := make([][]time.Duration, writers)
			var wwg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				n := b.N / writers
				if w == 0 {
					n += b.N % writers
				}
				waits[w] = make([]time.Duration, 0, n)
				wwg.Add(1)
				go func() {
					defer wwg.Done()
					r := rand.New(rand.NewPCG(uint64(w), 7))
					var u Update
					var period time.Duration // between two updates of this writer
					if bench.rate > 0 {
						period = time.Duration(writers) * time.Second / time.Duration(bench.rate)
					}
					due := start.Add(time.Duration(w) * period / time.Duration(writers))
					for range n {
						if period > 0 {
							// Open loop: behind schedule, the updates due
							// go at once; ahead, the writer waits.
							if d := time.Until(due); d > 0 {
								time.Sleep(d)
							}
							due = due.Add(period)
						}
						readUpdate(r, jids, &u)
						t0 := time.Now()
						tr.Apply(u)
						waits[w] = append(waits[w], time.Since(t0))
					}
				}()
			}
			wwg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(stop)
			rwg.Wait()
			all := slices.Concat(waits...)
			slices.Sort(all)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "updates/s")
			b.ReportMetric(float64(all[len(all)*999/1000].Nanoseconds()), "p99.9-ns")
			b.ReportMetric(float64(all[len(all)-1].Nanoseconds()), "max-ns")
			b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(reads.Load())/elapsed.Seconds(), "reads/s")
		})
	}
}
