package component

import (
	"math/rand/v2"
	"time"
)

// backoff returns the delay before reconnect attempt n (0-based): min·2^n,
// capped at max, with "equal jitter" (a random point in the upper half), so
// that many presenced instances restarted together do not reconnect in step,
// while the delay never drops below half the nominal value.
func backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + rand.N(half+1)
}
