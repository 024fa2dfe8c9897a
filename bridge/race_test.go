//go:build race

package bridge

// raceEnabled: the race detector's instrumentation allocates where a
// normal build does not, so allocation counts are not checked.
const raceEnabled = true
