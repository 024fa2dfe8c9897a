package presence

import (
	"slices"
	"time"
)

// Show is the availability sub-state of an available resource (RFC 6121
// §4.7.2.1). The zero value means plainly available.
type Show string

// The show values of RFC 6121.
const (
	ShowNone Show = ""
	ShowChat Show = "chat"
	ShowAway Show = "away"
	ShowXA   Show = "xa"
	ShowDND  Show = "dnd"
)

// ParseShow returns the Show for s, and false if s is not one of the values
// RFC 6121 defines (the caller then treats the resource as plainly
// available, as the RFC asks).
func ParseShow(s string) (Show, bool) {
	switch sh := Show(s); sh {
	case ShowNone, ShowChat, ShowAway, ShowXA, ShowDND:
		return sh, true
	}
	return ShowNone, false
}

// Reason says why a resource went offline.
type Reason string

// Reasons for an offline transition.
const (
	// ReasonClient: the client sent unavailable presence (or its server did
	// on its behalf when the session ended).
	ReasonClient Reason = "client"
	// ReasonServer: the server reported an error for the user, revoked the
	// subscription through which presenced learnt the user's presence, or
	// the link to the server stayed down too long.
	ReasonServer Reason = "server"
	// ReasonTimeout: the resource stopped answering pings, or its TTL ran
	// out without a refresh.
	ReasonTimeout Reason = "timeout"
	// ReasonReconcile: an authoritative check (a probe, a snapshot of the
	// server's sessions) did not confirm the resource.
	ReasonReconcile Reason = "reconcile"
	// ReasonRestart: the resource was restored after presenced restarted and
	// nothing confirmed it.
	ReasonRestart Reason = "restart"
	// ReasonAdmin: an administrator removed the resource.
	ReasonAdmin Reason = "admin"
)

// LangStatus is a status text in one language (xml:lang).
type LangStatus struct {
	Lang string
	Text string
}

// Update is one presence report for one resource of one user.
type Update struct {
	// User is the bare JID, already normalized by the caller. Required.
	User string
	// Resource is the resourcepart; empty for a report about the bare JID.
	Resource string
	// Available is false for unavailable presence.
	Available bool
	// Show, Status, Statuses, Priority and Idle describe an available
	// resource and are ignored otherwise.
	Show Show
	// Status is the status text without xml:lang (or the first one).
	Status string
	// Statuses are the status texts in other languages; nil when none. The
	// tracker keeps the slice: the caller must not modify it afterwards.
	Statuses []LangStatus
	// Priority is -128..127; a negative priority is still online.
	Priority int
	// Idle is when the user became idle (XEP-0319); zero when not idle.
	Idle time.Time
	// Time is when the change happened (for example a delay stamp on a probe
	// answer). The zero value means now, as the tracker's clock tells; a
	// time in the future is taken as now.
	Time time.Time
	// TTL, if positive, makes the resource go offline (reason timeout) when
	// no update refreshes it within TTL: web sessions use it. Zero means the
	// resource stays until it says unavailable or stops answering pings.
	TTL time.Duration
	// Reason says why the resource went offline; the zero value means
	// ReasonClient. Ignored for available presence.
	Reason Reason
	// Answer marks the report as the server's word about a session rather
	// than the client's own act: typically its answer to a probe, which the
	// server gives from the presence it cached, whether or not the client
	// still responds. Such a report confirms that the server holds the
	// session (for Expire, Settle), but proves nothing about the
	// client: it does not postpone the client's next ping, does not keep a
	// resource online past a ping it left unanswered, and does not bring back
	// a resource that went offline that way, unless its Time (a delay stamp)
	// is later than that. It also tells the tracker that the server answers
	// probes for this user (see Settle). The zero value: the client's own
	// presence.
	Answer bool
	// Listed marks a report taken from the server's session list alone
	// (Tracker.Reconcile bringing a session online, the reconcile policy
	// "online"): the server said a session exists, nobody said what its
	// presence is. The resource then carries Resource.Listed until a
	// presence stanza for it (the client's or a probe answer) replaces it.
	Listed bool
}

// Resource is the state of one resource of a user.
type Resource struct {
	Name     string
	Show     Show
	Status   string
	Statuses []LangStatus
	Priority int
	// Idle is when the resource became idle (XEP-0319); zero when not idle.
	Idle time.Time
	// Since is when the resource came online or last changed.
	Since time.Time
	// Expires is when a resource with a TTL goes offline unless refreshed;
	// zero for resources without TTL.
	Expires time.Time
	// Listed: the resource is known from the server's session list only
	// (Update.Listed). Its Show is plain available and its Status empty
	// because nobody has said otherwise, not because the user did; an API
	// says so. Not kept by stores: a restored resource has it false.
	Listed bool

	// confirmed is when a report (the client's or the server's) last
	// confirmed the resource (see Expire), alive when the client itself last
	// showed it is there (its own presence, an answer to a ping), pinged
	// when Silent last handed it out for a ping, in Unix nanoseconds (8
	// bytes each instead of a time.Time's 24: there is one per resource).
	// Pings go by alive, probes by confirmed: a server answers a probe from
	// the presence it cached even for a client that froze.
	confirmed, alive, pinged int64
	// restored: loaded by Restore and not confirmed since.
	restored bool
}

// same reports whether r already carries what u says.
func (r *Resource) same(u *Update) bool {
	return r.Show == u.Show && r.Status == u.Status && r.Priority == u.Priority &&
		r.Idle.Equal(u.Idle) && slices.Equal(r.Statuses, u.Statuses)
}

// User is the state of one user: the aggregate presence and the online
// resources.
type User struct {
	// JID is the bare JID.
	JID string
	// Online is true when at least one resource is available.
	Online bool
	// Show, Status and Priority are the winning resource's while online,
	// and the last values seen while offline (Priority is then 0).
	Show     Show
	Status   string
	Priority int
	// Resources are the available resources, winner first, then by
	// decreasing priority, then most recent first.
	Resources []Resource
	// Since is when the aggregate last changed: the winning resource's Since
	// while online, the time the user went offline otherwise.
	Since time.Time
	// LastSeen is the user's last activity in the sense of XEP-0012: when
	// the last resource went offline. Zero while online or never seen
	// offline.
	LastSeen time.Time
}

// State is the user's presence as one word, for displays and reports:
// "offline", "available" for an online user without a show value, or the
// show value.
func (u *User) State() string { return StateOf(u.Online, u.Show) }

// StateOf is State for any online flag and show value (a resource, an
// aggregate).
func StateOf(online bool, s Show) string {
	switch {
	case !online:
		return "offline"
	case s == ShowNone:
		return "available"
	}
	return string(s)
}

// Aggregate is a user's overall presence, derived from its resources. While
// offline, Show and Status are the last ones seen, as in User.
type Aggregate struct {
	Online   bool
	Show     Show
	Status   string
	Priority int
	// Resource names the winning resource; empty when offline.
	Resource string
}

// Ref names one resource of one user.
type Ref struct {
	User, Resource string
}

// better reports whether a should win over b: higher priority, then the
// more recent change (RFC 6121 leaves ties to the server; the most recent
// change is what a person sees last), then the smaller name, so that the
// order is total and every view (events, Get, stores) names the same winner
// even when delay stamps of second precision tie.
func better(a, b *Resource) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if !a.Since.Equal(b.Since) {
		return a.Since.After(b.Since)
	}
	return a.Name < b.Name
}

// winner returns the index of the winning resource, or -1 if rs is empty.
// O(len(rs)).
func winner(rs []Resource) int {
	w := -1
	for i := range rs {
		if w < 0 || better(&rs[i], &rs[w]) {
			w = i
		}
	}
	return w
}

// sortResources orders rs winner first, as User.Resources documents.
func sortResources(rs []Resource) {
	slices.SortFunc(rs, func(a, b Resource) int {
		if better(&a, &b) {
			return -1
		}
		if better(&b, &a) {
			return 1
		}
		return 0
	})
}

// NewUser assembles a User from stored parts, deriving the aggregate as the
// tracker does: for stores that keep resources and last activity apart.
// resources may be in any order; the slice is sorted in place.
func NewUser(jid string, resources []Resource, lastSeen time.Time, lastShow Show, lastStatus string) User {
	u := User{JID: jid}
	if len(resources) == 0 {
		u.Show, u.Status, u.Since, u.LastSeen = lastShow, lastStatus, lastSeen, lastSeen
		return u
	}
	sortResources(resources)
	w := &resources[0]
	u.Online, u.Show, u.Status, u.Priority, u.Since, u.Resources = true, w.Show, w.Status, w.Priority, w.Since, resources
	return u
}
