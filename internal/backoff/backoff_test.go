package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: 30 * time.Second}
	for _, tc := range []struct {
		n       int
		nominal time.Duration
	}{
		{-1, 100 * time.Millisecond},
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{8, 25600 * time.Millisecond},
		{9, 30 * time.Second},
		{1000, 30 * time.Second},
	} {
		if got := p.nominal(tc.n); got != tc.nominal {
			t.Errorf("nominal(%d) = %v, want %v", tc.n, got, tc.nominal)
		}
		for range 100 {
			if d := p.Delay(tc.n); d < tc.nominal/2 || d > tc.nominal {
				t.Fatalf("Delay(%d) = %v, outside [%v, %v]", tc.n, d, tc.nominal/2, tc.nominal)
			}
		}
	}
}

func ExamplePolicy_Delay() {
	p := Policy{Min: time.Second, Max: 30 * time.Second}
	for n := range 6 {
		d := p.Delay(n)
		// Somewhere in the upper half of 1s, 2s, 4s, 8s, 16s, 30s.
		_ = d
	}
	// Output:
}
