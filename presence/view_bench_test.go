package presence

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkApplyViewEvery measures what Views cost the updates after them:
// one goroutine applies the updates of BenchmarkApplyDuringReads to the
// 1,000,000 users and takes a View (kept, as a reader would) every so many
// updates, none for every=0. Its B/op is the copy-on-write of the trees'
// shared nodes; single-threaded, it depends less on the machine's load
// than BenchmarkApplyDuringReads. Index only: not in the baseline.
func BenchmarkApplyViewEvery(b *testing.B) {
	tr, jids := readTracker(b)
	for _, every := range []int{0, 1000, 100, 20} {
		b.Run(fmt.Sprintf("every=%d", every), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 7))
			var u Update
			var keep *View
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				readUpdate(r, jids, &u)
				tr.Apply(u)
				if i++; every > 0 && i%every == 0 {
					keep = tr.View()
				}
			}
			_ = keep
		})
	}
}
