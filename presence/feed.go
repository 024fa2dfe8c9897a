package presence

import (
	"context"
	"errors"
	"time"
)

// EventKind says what happened to a resource.
type EventKind string

// Event kinds.
const (
	EventOnline  EventKind = "online"
	EventOffline EventKind = "offline"
	EventChanged EventKind = "changed"
)

// Event is one change of one resource, as published on the change feed.
type Event struct {
	// Seq numbers events from 1, without gaps, in the order they happened.
	Seq  uint64
	Kind EventKind
	// Time is when the change happened.
	Time time.Time
	// User is the bare JID.
	User string
	// Resource is the resource's new state; for EventOffline, its last one.
	Resource Resource
	// Reason says why, for EventOffline.
	Reason Reason
	// Aggregate is the user's overall presence after the change.
	Aggregate Aggregate
}

// ErrLagged is returned by a Subscription that fell further behind than the
// feed keeps: the reader must take a new Snapshot and Subscribe again.
var ErrLagged = errors.New("presence: subscriber fell behind the change feed")

// feed is the ring of recent events. Guarded by Tracker.mu.
type feed struct {
	ring []Event
	seq  uint64 // last published
	wake chan struct{}
}

// publish numbers ev, stores it and wakes waiting readers.
func (f *feed) publish(ev *Event) {
	f.seq++
	ev.Seq = f.seq
	f.ring[f.seq%uint64(len(f.ring))] = *ev
	if f.wake != nil {
		close(f.wake)
		f.wake = nil
	}
}

// Subscription follows the change feed. It is not safe for concurrent use;
// each reader takes its own.
type Subscription struct {
	t    *Tracker
	next uint64
}

// Subscribe returns a subscription that yields the events after sequence
// number after, usually the one returned by Snapshot.
func (t *Tracker) Subscribe(after uint64) *Subscription {
	return &Subscription{t: t, next: after + 1}
}

// Read waits until at least one event is available, then copies as many as
// fit into buf, in order, and returns their count. It returns ErrLagged if
// the events it should return next were overwritten, and ctx.Err() when ctx
// ends first.
func (s *Subscription) Read(ctx context.Context, buf []Event) (int, error) {
	for {
		n, wake, err := s.read(buf, true)
		if n > 0 || err != nil {
			return n, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// TryRead is Read without waiting: it returns 0 and no error when nothing is
// new.
func (s *Subscription) TryRead(buf []Event) (int, error) {
	n, _, err := s.read(buf, false)
	return n, err
}

func (s *Subscription) read(buf []Event, wantWake bool) (int, <-chan struct{}, error) {
	f := &s.t.feed
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	size := uint64(len(f.ring))
	if f.seq >= size && s.next <= f.seq-size {
		return 0, nil, ErrLagged
	}
	n := 0
	for n < len(buf) && s.next <= f.seq {
		buf[n] = f.ring[s.next%size]
		s.next++
		n++
	}
	if n > 0 || !wantWake {
		return n, nil, nil
	}
	if f.wake == nil {
		f.wake = make(chan struct{})
	}
	return 0, f.wake, nil
}
