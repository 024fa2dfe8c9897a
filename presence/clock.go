package presence

import "time"

// Clock tells the time. Tests inject a fake one; nil means the system clock.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
