package presence

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure a Tracker.
type Options struct {
	// Clock tells the time; nil means the system clock.
	Clock Clock
	// FeedSize is how many recent events the change feed keeps for
	// subscribers that read behind the head; zero means 4096. A subscriber
	// further behind gets ErrLagged.
	FeedSize int
}

// user is the state of one user. Resources hold the available ones only.
type user struct {
	resources []Resource
	// While offline: when the last resource left and what it said.
	lastSeen   time.Time
	lastShow   Show
	lastStatus string
}

// Tracker holds the presence of every known user. It is safe for concurrent
// use; the zero value is not usable, call New.
type Tracker struct {
	clock Clock

	mu    sync.Mutex
	users map[string]*user
	feed  feed
}

// New returns an empty Tracker.
func New(opts Options) *Tracker {
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.FeedSize <= 0 {
		opts.FeedSize = 4096
	}
	return &Tracker{
		clock: opts.Clock,
		users: make(map[string]*user),
		feed:  feed{ring: make([]Event, opts.FeedSize)},
	}
}

// Now returns the tracker's clock reading, for adapters that must agree with
// it (for example to take the instant passed to Expire).
func (t *Tracker) Now() time.Time { return t.clock.Now() }

// Apply records one presence report and returns the resulting event.
//
// changed is false, and no event is published, when the report changes
// nothing: an available resource that repeats its state (it still counts as
// confirmed, see Expire), unavailable for a resource that is not online, or
// an update without User. O(resources of the user) plus O(1) for the feed.
func (t *Tracker) Apply(u Update) (ev Event, changed bool) {
	if u.User == "" {
		return Event{}, false
	}
	now := t.clock.Now()
	at := u.Time
	if at.IsZero() || at.After(now) {
		at = now
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	usr := t.users[u.User]
	if usr == nil {
		if !u.Available {
			return Event{}, false
		}
		usr = &user{}
		t.users[u.User] = usr
	}
	i := slices.IndexFunc(usr.resources, func(r Resource) bool { return r.Name == u.Resource })

	if !u.Available {
		if i < 0 {
			return Event{}, false
		}
		reason := u.Reason
		if reason == "" {
			reason = ReasonClient
		}
		return t.removeLocked(u.User, usr, i, reason, at), true
	}

	kind := EventChanged
	if i < 0 {
		kind = EventOnline
		usr.resources = append(usr.resources, Resource{Name: u.Resource})
		i = len(usr.resources) - 1
	} else if usr.resources[i].same(&u) {
		usr.resources[i].confirmed = now
		return Event{}, false
	}
	r := &usr.resources[i]
	r.Show, r.Status, r.Priority = u.Show, u.Status, u.Priority
	r.Since, r.confirmed = at, now
	ev = Event{Kind: kind, Time: at, User: u.User, Resource: *r, Aggregate: usr.aggregate()}
	t.feed.publish(&ev)
	return ev, true
}

// Drop marks every resource of the user offline with the given reason, as
// when the server reports an error for the bare JID. It returns how many
// resources went offline. O(resources of the user).
func (t *Tracker) Drop(jid string, reason Reason) int {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	usr := t.users[jid]
	if usr == nil {
		return 0
	}
	n := len(usr.resources)
	for len(usr.resources) > 0 {
		t.removeLocked(jid, usr, len(usr.resources)-1, reason, now)
	}
	return n
}

// Expire marks offline, with the given reason, every resource that no report
// has confirmed since before. It returns how many went offline. O(resources).
func (t *Tracker) Expire(before time.Time, reason Reason) int {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for jid, usr := range t.users {
		for i := len(usr.resources) - 1; i >= 0; i-- {
			if usr.resources[i].confirmed.Before(before) {
				t.removeLocked(jid, usr, i, reason, now)
				n++
			}
		}
	}
	return n
}

// removeLocked takes resource i offline and publishes the event.
func (t *Tracker) removeLocked(jid string, usr *user, i int, reason Reason, at time.Time) Event {
	r := usr.resources[i]
	usr.resources = slices.Delete(usr.resources, i, i+1)
	if len(usr.resources) == 0 {
		usr.lastSeen, usr.lastShow, usr.lastStatus = at, r.Show, r.Status
	}
	agg := usr.aggregate()
	if !agg.Online {
		// Offline keeps the last words, as Get does.
		agg.Show, agg.Status = r.Show, r.Status
	}
	ev := Event{Kind: EventOffline, Time: at, User: jid, Resource: r, Reason: reason, Aggregate: agg}
	t.feed.publish(&ev)
	return ev
}

// aggregate derives the user's overall presence.
func (u *user) aggregate() Aggregate {
	w := winner(u.resources)
	if w < 0 {
		return Aggregate{}
	}
	r := &u.resources[w]
	return Aggregate{Online: true, Show: r.Show, Status: r.Status, Priority: r.Priority, Resource: r.Name}
}

// snapshot returns the exported view of u.
func (u *user) snapshot(jid string) User {
	out := User{JID: jid, LastSeen: u.lastSeen}
	if len(u.resources) == 0 {
		out.Show, out.Status, out.Since = u.lastShow, u.lastStatus, u.lastSeen
		return out
	}
	out.Resources = slices.Clone(u.resources)
	sortResources(out.Resources)
	w := &out.Resources[0]
	out.Online, out.Show, out.Status, out.Priority, out.Since = true, w.Show, w.Status, w.Priority, w.Since
	out.LastSeen = time.Time{}
	return out
}

// Get returns the presence of one user, and false if the user is unknown.
func (t *Tracker) Get(jid string) (User, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	usr := t.users[jid]
	if usr == nil {
		return User{}, false
	}
	return usr.snapshot(jid), true
}

// Snapshot returns every known user, sorted by JID, and the sequence number
// of the last event reflected in it: follow the feed with Subscribe(seq) to
// see every later change exactly once. O(users · log users).
func (t *Tracker) Snapshot() ([]User, uint64) {
	t.mu.Lock()
	out := make([]User, 0, len(t.users))
	for jid, usr := range t.users {
		out = append(out, usr.snapshot(jid))
	}
	seq := t.feed.seq
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.JID, b.JID) })
	return out, seq
}

// Users returns the bare JIDs of every known user, online or not, in no
// particular order.
func (t *Tracker) Users() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.users))
	for jid := range t.users {
		out = append(out, jid)
	}
	return out
}

// Restore replaces the state with users, as loaded from a store at
// start-up. It publishes no events. Restored resources count as never
// confirmed, so the first Expire after a resync drops those the server does
// not confirm.
func (t *Tracker) Restore(users []User) {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.users)
	for _, u := range users {
		if u.JID == "" {
			continue
		}
		usr := &user{lastSeen: u.LastSeen}
		for _, r := range u.Resources {
			r.confirmed = time.Time{}
			usr.resources = append(usr.resources, r)
		}
		if len(usr.resources) == 0 {
			usr.lastShow, usr.lastStatus = u.Show, u.Status
		}
		t.users[u.JID] = usr
	}
}
