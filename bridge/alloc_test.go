//go:build !race

// The race detector's instrumentation allocates where a plain build does
// not, so the tests that count allocations are built without it only;
// scripts/test runs them in a build of their own (go test -run Allocates).

package bridge

import "testing"

// TestFramingAllocates: a batch is framed in one allocation, and a
// writer's frames of a filtered client's changes in its own buffer, with
// none, once the buffer has grown.
func TestFramingAllocates(t *testing.T) {
	var evs []*hubEvent
	for i := range 3*maxBatch + 5 {
		evs = append(evs, testEvent(uint64(i+1), "u@x", "available"))
	}
	for _, n := range []int{1, 2, len(evs)} {
		if a := testing.AllocsPerRun(20, func() { appendBatch(nil, evs[:n]) }); a != 1 {
			t.Errorf("a batch of %d framed in %v allocations, want 1", n, a)
		}
	}
	frames := [][]byte{evs[0].frame, evs[1].frame}
	buf := appendChangesMessage(nil, frames)
	if a := testing.AllocsPerRun(20, func() {
		buf = appendText(buf[:0], frames[0])
		buf = appendChangesMessage(buf[:0], frames)
	}); a != 0 {
		t.Errorf("framing in a grown buffer: %v allocations", a)
	}
}
