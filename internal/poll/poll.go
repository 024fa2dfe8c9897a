// Package poll is the tests' one way to wait for a condition that no
// event announces: a real server's state, a goroutine's effect seen from
// outside. It polls instead of sleeping a fixed time, so that a test is as
// fast as the system it watches and fails with what it waited for.
//
// Where an event exists (a channel, a callback, a feed), tests wait on it
// instead; where a test must show that something does not happen, it
// waits the bound it proves, and says so.
package poll

import (
	"errors"
	"testing"
	"time"
)

// First and Max bound the pause between two calls of a condition: it
// starts at First, for conditions that hold a moment later, and doubles up
// to Max, so that a condition that asks a real server (over HTTP, within
// its rate limit of 20 a second) does not load it while a test waits
// seconds for a timeout to take effect.
const (
	First = 5 * time.Millisecond
	Max   = 50 * time.Millisecond
)

// Until calls cond, pausing First to Max between calls, until it returns nil, and fails t
// (t.Fatalf, naming what and cond's last error) if timeout passes first.
// It returns at once when cond is nil the first time.
func Until(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := For(timeout, cond); err != nil {
		t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
	}
}

// True is Until for a condition without an error to tell.
func True(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	Until(t, what, timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// For calls cond, pausing First to Max between calls, until it returns nil, and returns nil, or
// cond's last error once timeout has passed: for a test that goes on
// after a wait that may end either way.
func For(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for pause := First; ; pause = min(2*pause, Max) {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(pause)
	}
}

var errNotYet = errors.New("not yet")
