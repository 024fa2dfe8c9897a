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
	// EventRefreshed: a resource with a TTL was refreshed; only its Expires
	// moved. Stores need it; displays may ignore it.
	EventRefreshed EventKind = "refreshed"
)

// Event is one change of one resource, as published on the change feed.
type Event struct {
	// Seq numbers events from 1, without gaps across the whole tracker, in
	// the order they happened. A filtered subscription sees a subsequence.
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

// Errors of a Subscription.
var (
	// ErrLagged: the subscriber fell further behind than its buffer holds.
	// The subscription is closed; take a new one (and with it a snapshot).
	ErrLagged = errors.New("presence: subscriber fell behind the change feed")
	// ErrClosed: the subscription was closed with Close.
	ErrClosed = errors.New("presence: subscription closed")
)

// Filter selects the users a subscription follows. The zero value selects
// everyone; otherwise a user matches if its domain is in Domains or its
// bare JID is in Users.
type Filter struct {
	Domains []string
	Users   []string
}

// matcher is a compiled Filter; a nil *matcher matches everyone.
type matcher struct {
	domains, users map[string]struct{}
}

func (f Filter) compile() *matcher {
	if len(f.Domains) == 0 && len(f.Users) == 0 {
		return nil
	}
	m := &matcher{domains: make(map[string]struct{}), users: make(map[string]struct{})}
	for _, d := range f.Domains {
		m.domains[d] = struct{}{}
	}
	for _, u := range f.Users {
		m.users[u] = struct{}{}
	}
	return m
}

func (m *matcher) match(jid string) bool {
	if m == nil {
		return true
	}
	if _, ok := m.users[jid]; ok {
		return true
	}
	_, ok := m.domains[domainOf(jid)]
	return ok
}

// Subscription follows the change feed through a bounded buffer of its own.
// Read from one goroutine at a time; Close may be called from any.
type Subscription struct {
	t     *Tracker
	match *matcher
	limit int // most events buffered; the ring grows up to it
	// Guarded by t.mu:
	ring       []Event
	head, size int // oldest buffered event, count
	wake       chan struct{}
	err        error // ErrLagged or ErrClosed once ended
}

// Subscribe takes a snapshot of the users f matches (sorted by JID, with the
// sequence number it reflects) and, atomically with it, a subscription to
// every later event of those users. buffer bounds the events kept for the
// subscriber; zero means Options.FeedSize. The core never waits for a
// subscriber: one that falls behind by more than buffer events is ended
// with ErrLagged. O(users) for the snapshot, outside the tracker's lock.
func (t *Tracker) Subscribe(f Filter, buffer int) ([]User, uint64, *Subscription) {
	v, s := t.SubscribeView(f, buffer)
	return v.users(s.match), v.Seq(), s
}

// SubscribeView is Subscribe with the snapshot as a View (of every user;
// f selects the events only): O(labels) under the tracker's lock, so that
// a reader with many users to send holds up no update.
func (t *Tracker) SubscribeView(f Filter, buffer int) (*View, *Subscription) {
	if buffer <= 0 {
		buffer = t.feedSize
	}
	// The ring starts small and doubles up to buffer: an idle subscriber
	// costs little, a busy one pays a few copies once.
	s := &Subscription{t: t, match: f.compile(), limit: buffer, ring: make([]Event, min(buffer, 16))}
	t.mu.Lock()
	v := t.viewLocked()
	t.subs = append(t.subs, s)
	t.mu.Unlock()
	return v, s
}

// publishLocked numbers ev and hands it to every matching subscriber.
// O(subscribers), no allocation.
func (t *Tracker) publishLocked(ev *Event) {
	t.seq++
	ev.Seq = t.seq
	for i := 0; i < len(t.subs); i++ {
		s := t.subs[i]
		if !s.match.match(ev.User) {
			continue
		}
		if s.size == len(s.ring) {
			if len(s.ring) == s.limit {
				s.endLocked(ErrLagged)
				i-- // endLocked removed s from t.subs
				continue
			}
			s.grow()
		}
		s.ring[(s.head+s.size)%len(s.ring)] = *ev
		s.size++
		if s.wake != nil {
			close(s.wake)
			s.wake = nil
		}
	}
}

// grow doubles the ring, up to the limit, keeping the buffered events in
// order.
func (s *Subscription) grow() {
	ring := make([]Event, min(2*len(s.ring), s.limit))
	for i := range s.size {
		ring[i] = s.ring[(s.head+i)%len(s.ring)]
	}
	s.ring, s.head = ring, 0
}

// endLocked ends s with err, drops its buffer and unregisters it.
func (s *Subscription) endLocked(err error) {
	if s.err != nil {
		return
	}
	s.err, s.size, s.ring = err, 0, nil
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
	subs := s.t.subs
	for i := range subs {
		if subs[i] == s {
			s.t.subs = append(subs[:i], subs[i+1:]...)
			subs[len(subs)-1] = nil
			break
		}
	}
}

// Close ends the subscription; a waiting Read returns ErrClosed.
func (s *Subscription) Close() {
	s.t.mu.Lock()
	s.endLocked(ErrClosed)
	s.t.mu.Unlock()
}

// Read waits until at least one event is available, then moves as many as
// fit into buf, in order, and returns their count. It returns ErrLagged or
// ErrClosed once the subscription has ended (what was buffered is dropped),
// and ctx.Err() when ctx ends first.
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
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	n := 0
	for n < len(buf) && s.size > 0 {
		buf[n] = s.ring[s.head]
		s.ring[s.head] = Event{} // let the strings go
		s.head = (s.head + 1) % len(s.ring)
		s.size--
		n++
	}
	if n > 0 {
		return n, nil, nil
	}
	if s.err != nil {
		return 0, nil, s.err
	}
	if !wantWake {
		return 0, nil, nil
	}
	if s.wake == nil {
		s.wake = make(chan struct{})
	}
	return 0, s.wake, nil
}
