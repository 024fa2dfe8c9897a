// The pending buffer: what Apply has recorded and the flusher has not
// written yet, coalesced per resource and per user, with history and
// session rows in feed order and bounded by Config.HistoryLimit.

package pgstore

import (
	"slices"
	"time"

	"github.com/presenced/presenced/presence"
)

// pending is what the flusher has not written yet.
type pending struct {
	history  [][]any // presence_history rows, in feed order
	sessions []sessionOp
	current  map[presence.Ref]*curState // last state per resource
	users    map[string][]any           // presence_users rows, last per user
	events   int                        // events added, for the batch trigger
}

type sessionOp struct {
	open           bool
	user, resource string
	at             time.Time
	reason         string
}

type curState struct {
	gone bool
	r    presence.Resource
}

func newPending() *pending {
	return &pending{current: map[presence.Ref]*curState{}, users: map[string][]any{}}
}

func (p *pending) empty() bool {
	return len(p.history) == 0 && len(p.sessions) == 0 && len(p.current) == 0 && len(p.users) == 0
}

func (p *pending) add(ev *presence.Event) {
	p.events++
	ref := presence.Ref{User: ev.User, Resource: ev.Resource.Name}
	if ev.Kind != presence.EventRefreshed {
		p.history = append(p.history, historyRow(ev))
	}
	switch ev.Kind {
	case presence.EventOnline:
		p.sessions = append(p.sessions, sessionOp{open: true, user: ev.User, resource: ev.Resource.Name, at: ev.Time})
	case presence.EventOffline:
		p.sessions = append(p.sessions, sessionOp{user: ev.User, resource: ev.Resource.Name, at: ev.Time, reason: string(ev.Reason)})
	}
	p.current[ref] = &curState{gone: ev.Kind == presence.EventOffline, r: ev.Resource}
	a := ev.Aggregate
	var seen time.Time
	if !a.Online {
		seen = ev.Time
	}
	p.users[ev.User] = userValues(ev.User, a.Online, seen, string(a.Show), a.Status)
}

// bound drops the oldest history rows, then the oldest session operations,
// beyond limit, and returns how many it dropped.
func (p *pending) bound(limit int) int64 {
	var n int64
	if over := len(p.history) + len(p.sessions) - limit; over > 0 {
		h := min(over, len(p.history))
		p.history = slices.Delete(p.history, 0, h)
		n += int64(h)
		if over -= h; over > 0 {
			p.sessions = slices.Delete(p.sessions, 0, over)
			n += int64(over)
		}
	}
	return n
}

// merge puts newer (buffered while p was being written) after p: rows are
// appended in order, and newer state replaces p's.
func (p *pending) merge(newer *pending) {
	p.history = append(p.history, newer.history...)
	p.sessions = append(p.sessions, newer.sessions...)
	for k, v := range newer.current {
		p.current[k] = v
	}
	for k, v := range newer.users {
		p.users[k] = v
	}
	p.events += newer.events
}
