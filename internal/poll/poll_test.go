package poll

import (
	"errors"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	n := 0
	if err := For(time.Second, func() error {
		if n++; n < 3 {
			return errors.New("no")
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("For = %v after %d calls, want nil after 3", err, n)
	}
	want := errors.New("never")
	start := time.Now()
	if err := For(20*time.Millisecond, func() error { return want }); err != want {
		t.Fatalf("For = %v, want the last error", err)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("For gave up before its timeout")
	}
}

func TestTrue(t *testing.T) {
	n := 0
	True(t, "the third call", time.Second, func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("%d calls", n)
	}
}
