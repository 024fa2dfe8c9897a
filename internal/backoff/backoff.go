package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is a capped exponential backoff. Its zero value is not useful:
// both fields must be positive and Min ≤ Max.
type Policy struct {
	// Min is the nominal delay before the first retry (attempt 0).
	Min time.Duration
	// Max caps the nominal delay.
	Max time.Duration
}

// Delay returns the delay before retry attempt n (0-based): Min·2ⁿ capped
// at Max, then a random point in the upper half of that, so the result is
// in [d/2, d] for the nominal delay d. A negative n counts as 0. O(1).
func (p Policy) Delay(n int) time.Duration {
	d := p.nominal(n)
	half := d / 2
	return half + rand.N(half+1)
}

// nominal returns Min·2ⁿ capped at Max.
func (p Policy) nominal(n int) time.Duration {
	d := p.Min
	for i := 0; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}
