package presence

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Tracker.
type Options struct {
	// Clock tells the time; nil means the system clock.
	Clock Clock
	// FeedSize is the default buffer of a subscription, in events; zero
	// means 4096. A subscriber further behind gets ErrLagged.
	FeedSize int
	// MaxUsers bounds the users tracked, online or remembered offline (for
	// their last activity). At the bound, a new user makes room by
	// forgetting an offline user; when every user is online, the update is
	// refused with ErrTooManyUsers. Zero means no bound.
	MaxUsers int
	// MaxResources bounds the online resources of one user: an update that
	// would bring one more is refused with ErrTooManyResources (XMPP
	// servers bound sessions per user too; this guards the tracker against
	// a source that does not). Zero means no bound.
	MaxResources int
	// Domains are the served domains: counts (Tracker.Counts) and the
	// index behind View keep each apart, and every other domain counts as
	// OtherDomain, so that what clients send cannot grow them. Empty means
	// that the first 64 domains seen are taken as served, in the order they
	// come (for tests and small setups; presenced passes its domains).
	Domains []string
}

// Errors of Try: the update was refused by a bound of Options and changed
// nothing.
var (
	ErrTooManyUsers     = errors.New("presence: too many users tracked")
	ErrTooManyResources = errors.New("presence: too many resources for one user")
)

// user is the state of one user. Resources hold the available ones only.
type user struct {
	resources []Resource
	// While offline: when the last resource left and what it said.
	lastSeen   time.Time
	lastShow   Show
	lastStatus string
	// hasTTL: some resource has a TTL (the user is in Tracker.ttl).
	hasTTL bool
	// lastOff: when a resource of the user last went offline, in Unix
	// nanoseconds (Reconcile must not bring back what left after its
	// snapshot).
	lastOff int64
	// answers: the server answered a probe for this user (Update.Answer),
	// so its silence to a probe means something (see Settle).
	answers bool
	// stale: resources that went offline because the client left a ping
	// unanswered, while the server may still hold their sessions; the
	// server's word (Update.Answer, Reconcile) does not bring them back.
	// Nil for almost every user; at most maxStale entries.
	stale []staleResource
	// view is what the index holds for the user (nil before the first
	// change), rebuilt at each change.
	view *view
}

// staleResource is a resource that stopped answering pings, and when.
type staleResource struct {
	name string
	at   int64 // Unix nanoseconds
}

// maxStale bounds the stale resources remembered per user: a client that
// reconnects with a new resource name each time leaves old ones behind.
const maxStale = 8

// staleAt returns when the resource went stale, or 0.
func (u *user) staleAt(resource string) int64 {
	for _, s := range u.stale {
		if s.name == resource {
			return s.at
		}
	}
	return 0
}

// setStale remembers that resource stopped answering at at, forgetting the
// oldest entry beyond maxStale.
func (u *user) setStale(resource string, at int64) {
	u.clearStale(resource)
	if len(u.stale) == maxStale {
		u.stale = slices.Delete(u.stale, 0, 1)
	}
	u.stale = append(u.stale, staleResource{resource, at})
}

// clearStale forgets resource: its client spoke again, or the server said
// its session ended.
func (u *user) clearStale(resource string) {
	for i := range u.stale {
		if u.stale[i].name == resource {
			u.stale = slices.Delete(u.stale, i, i+1)
			if len(u.stale) == 0 {
				u.stale = nil
			}
			return
		}
	}
}

// Tracker holds the presence of every known user. It is safe for concurrent
// use; the zero value is not usable, call New.
type Tracker struct {
	clock        Clock
	feedSize     int
	maxUsers     int
	maxResources int
	refused      atomic.Uint64

	mu    sync.Mutex
	users map[string]*user
	ttl   map[string]struct{} // users with a resource that has a TTL
	// offline holds the users without resources, kept only with MaxUsers:
	// the ones to forget first.
	offline map[string]struct{}
	seq     uint64 // last published event
	subs    []*Subscription
	ix      *index
	// recent is the last View taken and when, for RecentView; dropped by
	// the first update more than recentMax after it, so that it does not
	// keep old nodes and views alive for nobody.
	recent   *View
	recentAt time.Time
}

// New returns an empty Tracker.
func New(opts Options) *Tracker {
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.FeedSize <= 0 {
		opts.FeedSize = 4096
	}
	t := &Tracker{
		clock:        opts.Clock,
		feedSize:     opts.FeedSize,
		maxUsers:     max(opts.MaxUsers, 0),
		maxResources: max(opts.MaxResources, 0),
		users:        make(map[string]*user),
		ttl:          make(map[string]struct{}),
		ix:           newIndex(opts.Domains),
	}
	if t.maxUsers > 0 {
		t.offline = make(map[string]struct{})
	}
	return t
}

// Now returns the tracker's clock reading, for adapters that must agree with
// it (for example to take the instant passed to Expire).
func (t *Tracker) Now() time.Time { return t.clock.Now() }

// Apply records one presence report and returns the resulting event.
//
// changed is false, and no event is published, when the report changes
// nothing: an available resource that repeats its state (it still counts as
// confirmed), unavailable for a resource that is not online, or an update
// without User. Repeating the state with a TTL moves the deadline and
// publishes EventRefreshed. O(resources of the user + subscribers +
// log users); one allocation per change (the user's view in the index),
// more while a View shares the index nodes on its path.
func (t *Tracker) Apply(u Update) (ev Event, changed bool) {
	ev, changed, _ = t.Try(u)
	return ev, changed
}

// Try is Apply that says why an update was refused: ErrTooManyUsers or
// ErrTooManyResources when it would pass a bound of Options (it then
// changes nothing and counts in Refused). O(resources of the user).
func (t *Tracker) Try(u Update) (ev Event, changed bool, err error) {
	if u.User == "" {
		return Event{}, false, nil
	}
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	ev, changed, err = t.applyLocked(&u, now)
	if err != nil {
		t.refused.Add(1)
	}
	if t.recent != nil && now.Sub(t.recentAt) > recentMax {
		t.recent = nil
	}
	if u.Answer {
		if usr := t.users[u.User]; usr != nil {
			usr.answers = true
		}
	}
	return ev, changed, err
}

// Refused returns how many updates the bounds of Options have refused.
func (t *Tracker) Refused() uint64 { return t.refused.Load() }

func (t *Tracker) applyLocked(u *Update, now time.Time) (ev Event, changed bool, err error) {
	at := u.Time
	if at.IsZero() || at.After(now) {
		at = now
	}
	usr := t.users[u.User]
	if usr != nil && usr.stale != nil {
		switch {
		case !u.Available || !u.Answer:
			// The server says the session ended, or the client spoke.
			usr.clearStale(u.Resource)
		case usr.find(u.Resource) < 0:
			// The server's cached word for a client that stopped answering:
			// only a delay stamp later than that says the client acted since.
			if st := usr.staleAt(u.Resource); st != 0 && (u.Time.IsZero() || u.Time.UnixNano() <= st) {
				return Event{}, false, nil
			}
		}
	}
	if usr == nil {
		if !u.Available {
			return Event{}, false, nil
		}
		if t.maxUsers > 0 && len(t.users) >= t.maxUsers && !t.forgetOneLocked() {
			return Event{}, false, ErrTooManyUsers
		}
		usr = &user{}
		t.users[u.User] = usr
	}
	i := usr.find(u.Resource)
	if i < 0 && u.Available && t.maxResources > 0 && len(usr.resources) >= t.maxResources {
		return Event{}, false, ErrTooManyResources
	}
	if i < 0 && u.Available && len(usr.resources) == 0 && t.offline != nil {
		delete(t.offline, u.User)
	}

	if !u.Available {
		if i < 0 {
			return Event{}, false, nil
		}
		reason := u.Reason
		if reason == "" {
			reason = ReasonClient
		}
		if u.Status != "" || u.Statuses != nil {
			// RFC 6121 lets unavailable presence carry a status: it is the
			// user's last word, kept while offline.
			usr.resources[i].Status, usr.resources[i].Statuses = u.Status, u.Statuses
		}
		return t.removeLocked(u.User, usr, i, reason, at), true, nil
	}

	var expires time.Time
	if u.TTL > 0 {
		expires = now.Add(u.TTL)
		if !usr.hasTTL {
			usr.hasTTL = true
			t.ttl[u.User] = struct{}{}
		}
	}
	kind := EventChanged
	if i < 0 {
		kind = EventOnline
		usr.resources = append(usr.resources, Resource{Name: u.Resource})
		i = len(usr.resources) - 1
	} else if r := &usr.resources[i]; r.same(u) {
		r.confirmed, r.restored = now.UnixNano(), false
		if !u.Answer {
			r.alive = now.UnixNano()
		}
		if r.Expires.Equal(expires) && r.Listed == u.Listed {
			return Event{}, false, nil
		}
		// A TTL refresh changes nothing a person sees, but a store must
		// learn the new deadline, or a restart would bring back the old one.
		r.Expires = expires
		kind = EventRefreshed
		if r.Listed != u.Listed {
			// The same presence, now said for the resource rather than
			// taken from a session list: the API must stop saying
			// session_list. Since stays (nothing the user said changed).
			r.Listed = u.Listed
			kind = EventChanged
		}
		ev = Event{Kind: kind, Time: now, User: u.User, Resource: *r, Aggregate: usr.aggregate()}
		t.ix.set(u.User, usr)
		t.publishLocked(&ev)
		return ev, true, nil
	}
	r := &usr.resources[i]
	r.Show, r.Status, r.Statuses, r.Priority, r.Idle, r.Listed = u.Show, u.Status, u.Statuses, u.Priority, u.Idle, u.Listed
	r.Since, r.Expires, r.confirmed, r.restored = at, expires, now.UnixNano(), false
	if !u.Answer {
		r.alive = now.UnixNano()
	}
	ev = Event{Kind: kind, Time: at, User: u.User, Resource: *r, Aggregate: usr.aggregate()}
	t.ix.set(u.User, usr)
	t.publishLocked(&ev)
	return ev, true, nil
}

// forgetOneLocked forgets one offline user, to make room for a new one,
// and reports whether there was one. O(1) expected.
func (t *Tracker) forgetOneLocked() bool {
	for name := range t.offline {
		t.ix.remove(t.users[name])
		delete(t.offline, name)
		delete(t.users, name)
		return true
	}
	return false
}

// Confirm records that the client of the resource is still there (it
// answered a ping) without changing it: the resource counts as confirmed
// and alive. It reports whether the resource is online. O(resources of the
// user).
func (t *Tracker) Confirm(jid, resource string) bool {
	now := t.clock.Now().UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	usr, i := t.resourceLocked(jid, resource)
	if i < 0 {
		return false
	}
	r := &usr.resources[i]
	r.confirmed, r.alive, r.restored = now, now, false
	return true
}

// Vouched reports whether a report confirmed the resource at or after since
// (the client's own, or the server's word such as an answer to a probe),
// and false when the resource is not online. O(resources of the user).
func (t *Tracker) Vouched(jid, resource string, since time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	usr, i := t.resourceLocked(jid, resource)
	return i >= 0 && usr.resources[i].confirmed >= since.UnixNano()
}

// resourceLocked finds a resource: its user and index, or (nil, -1).
func (t *Tracker) resourceLocked(jid, resource string) (*user, int) {
	usr := t.users[jid]
	if usr == nil {
		return nil, -1
	}
	return usr, usr.find(resource)
}

// Drop marks the user's resources offline with the given reason, as when
// the server reports an error for the bare JID. Resources with a TTL are
// not the XMPP server's to judge and stay, except for ReasonAdmin, which
// removes everything. It returns how many went offline. O(resources of the
// user).
func (t *Tracker) Drop(jid string, reason Reason) int {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	usr := t.users[jid]
	if usr == nil {
		return 0
	}
	n := 0
	for i := len(usr.resources) - 1; i >= 0; i-- {
		if usr.resources[i].Expires.IsZero() || reason == ReasonAdmin {
			t.removeLocked(jid, usr, i, reason, now)
			n++
		}
	}
	return n
}

// Expire marks offline, with the given reason, every resource that no report
// has confirmed since before. Restored resources that nothing confirmed go
// offline with ReasonRestart instead. Resources with a TTL are left to
// their TTL (the XMPP server, whose answers confirm the others, does not
// know them); so are they by ExpireResource. It returns how
// many went offline. O(resources).
func (t *Tracker) Expire(before time.Time, reason Reason) int {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for jid, usr := range t.users {
		n += t.expireUserLocked(jid, usr, before.UnixNano(), reason, now)
	}
	return n
}

// ExpireResource takes one resource offline when its client left a ping
// sent at before unanswered: only the client's own word since (its
// presence, Confirm) keeps it online, not the server's (Update.Answer,
// Reconcile), which a frozen client's session still gets. The resource is
// then remembered as stale, so that the server's cached word does not bring
// it back (see Update.Answer). It reports whether the resource went
// offline. O(resources of the user).
func (t *Tracker) ExpireResource(jid, resource string, before time.Time, reason Reason) bool {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	usr, i := t.resourceLocked(jid, resource)
	if i < 0 || usr.resources[i].alive >= before.UnixNano() || !usr.resources[i].Expires.IsZero() {
		return false
	}
	if usr.resources[i].restored {
		reason = ReasonRestart
	}
	usr.setStale(resource, now.UnixNano())
	t.removeLocked(jid, usr, i, reason, now)
	return true
}

// Stale reports whether the resource is offline because its client left a
// ping unanswered (ExpireResource) and is remembered so: the server's word
// about it (Update.Answer) is then ignored. A component that hears the
// server's word for such a resource may ask the client again; if the
// client answers (a stream-management session resumed), its presence
// applied as the client's own (Answer false) brings it back.
// O(resources of the user).
func (t *Tracker) Stale(jid, resource string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	usr := t.users[jid]
	return usr != nil && usr.find(resource) < 0 && usr.staleAt(resource) != 0
}

// Settle decides, for one user whose probe (sent at before) got no answer
// for some resources, what that silence means. If the server has answered
// probes for this user (Update.Answer), it would have answered for a live
// session: the resources nothing confirmed since before go offline with
// reason, as Expire does for everyone. Otherwise (a user known only by directed
// presence, whose server answers no probe of ours, or one not heard from
// since presenced started) the silence says nothing, and those resources
// are handed to the next Silent for a ping instead: the client decides.
// It returns how many went offline and how many await a ping.
// O(resources of the user).
func (t *Tracker) Settle(jid string, before time.Time, reason Reason) (offline, ping int) {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	usr := t.users[jid]
	if usr == nil {
		return 0, 0
	}
	return t.settleLocked(jid, usr, before.UnixNano(), reason, now)
}

// SettleAll is Settle for every user, as after the probes of a reconnect.
// O(resources).
func (t *Tracker) SettleAll(before time.Time, reason Reason) (offline, ping int) {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for jid, usr := range t.users {
		o, p := t.settleLocked(jid, usr, before.UnixNano(), reason, now)
		offline += o
		ping += p
	}
	return offline, ping
}

func (t *Tracker) settleLocked(jid string, usr *user, before int64, reason Reason, now time.Time) (offline, ping int) {
	if usr.answers {
		return t.expireUserLocked(jid, usr, before, reason, now), 0
	}
	for i := range usr.resources {
		if r := &usr.resources[i]; r.confirmed < before && r.Expires.IsZero() {
			r.alive, r.pinged = 0, 0
			ping++
		}
	}
	return 0, ping
}

func (t *Tracker) expireUserLocked(jid string, usr *user, before int64, reason Reason, now time.Time) int {
	n := 0
	for i := len(usr.resources) - 1; i >= 0; i-- {
		if r := &usr.resources[i]; r.confirmed < before && r.Expires.IsZero() {
			why := reason
			if r.restored {
				why = ReasonRestart
			}
			t.removeLocked(jid, usr, i, why, now)
			n++
		}
	}
	return n
}

// removeLocked takes resource i offline and publishes the event.
func (t *Tracker) removeLocked(jid string, usr *user, i int, reason Reason, at time.Time) Event {
	r := usr.resources[i]
	usr.resources = slices.Delete(usr.resources, i, i+1)
	usr.lastOff = t.clock.Now().UnixNano()
	agg := usr.aggregate()
	if len(usr.resources) == 0 {
		if t.offline != nil {
			t.offline[jid] = struct{}{}
		}
		usr.lastSeen, usr.lastShow, usr.lastStatus = at, r.Show, r.Status
		// Offline keeps the last words, as Get does.
		agg.Show, agg.Status = r.Show, r.Status
	}
	ev := Event{Kind: EventOffline, Time: at, User: jid, Resource: r, Reason: reason, Aggregate: agg}
	t.ix.set(jid, usr)
	t.publishLocked(&ev)
	return ev
}

func (u *user) find(resource string) int {
	for i := range u.resources {
		if u.resources[i].Name == resource {
			return i
		}
	}
	return -1
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
// of the last event reflected in it; the Users are the caller's. To follow
// changes without a gap, use Subscribe, which takes the snapshot and
// subscribes at once. O(users), outside the tracker's lock (see View).
func (t *Tracker) Snapshot() ([]User, uint64) {
	v := t.View()
	return v.users(nil), v.Seq()
}

// View returns a consistent picture of every user as of now, to read
// without holding up updates: O(labels) under the tracker's lock (copies
// of the index's copy-on-write trees; the same View again while nothing
// changed). Reading a View costs what it reads; see View.Range.
func (t *Tracker) View() *View {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.viewLocked()
}

// viewLocked is View with the lock held; RecentView may hand the View out
// again.
func (t *Tracker) viewLocked() *View {
	v := t.ix.view(t.seq)
	if v != t.recent {
		t.recent, t.recentAt = v, t.clock.Now()
	}
	return v
}

// Counts returns how many users are in each state, by domain label, and
// their online resources, kept up to date at every change: O(labels).
func (t *Tracker) Counts() Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ix.counts(t.seq)
}

// users returns copies of the users m matches (all for nil), sorted by
// JID, with Resources of their own.
func (v *View) users(m *matcher) []User {
	out := make([]User, 0, v.Len())
	v.scan(func(w *view) bool {
		if m.match(w.JID) {
			u := w.User
			u.Resources = slices.Clone(u.Resources)
			out = append(out, u)
		}
		return true
	})
	return out
}

// Users returns the bare JIDs of every known user, online or not, sorted.
// O(users), outside the tracker's lock.
func (t *Tracker) Users() []string {
	v := t.View()
	out := make([]string, 0, v.Len())
	v.scan(func(w *view) bool {
		out = append(out, w.JID)
		return true
	})
	return out
}

// Probeable returns the bare JIDs of the users with at least one online
// resource without a TTL: those the XMPP server can confirm. Sorted.
// O(users), outside the tracker's lock.
func (t *Tracker) Probeable() []string {
	var out []string
	t.View().scan(func(w *view) bool {
		for i := range w.Resources {
			if w.Resources[i].Expires.IsZero() {
				out = append(out, w.JID)
				break
			}
		}
		return true
	})
	return out
}

// Restore replaces the state with users, as loaded from a store at
// start-up. It publishes no events. Restored resources count as never
// confirmed: the first Expire that covers them (the resync after the first
// connect) drops those the server does not confirm, with ReasonRestart.
func (t *Tracker) Restore(users []User) {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.users)
	clear(t.ttl)
	clear(t.offline)
	t.ix = newIndex(t.ix.served())
	t.recent = nil
	for _, u := range users {
		if u.JID == "" {
			continue
		}
		usr := &user{lastSeen: u.LastSeen}
		if !u.LastSeen.IsZero() {
			usr.lastOff = u.LastSeen.UnixNano()
		}
		for _, r := range u.Resources {
			r.confirmed, r.alive, r.pinged, r.restored = 0, 0, 0, true
			usr.resources = append(usr.resources, r)
			if !r.Expires.IsZero() && !usr.hasTTL {
				usr.hasTTL = true
				t.ttl[u.JID] = struct{}{}
			}
		}
		if len(usr.resources) == 0 {
			usr.lastShow, usr.lastStatus = u.Show, u.Status
			if t.offline != nil {
				t.offline[u.JID] = struct{}{}
			}
		}
		t.users[u.JID] = usr
		t.ix.set(u.JID, usr)
	}
}
