package presence

import (
	"context"
	"time"
)

// Silent returns up to max online resources whose client has not shown
// itself (its own presence, an answer to a ping: not the server's word)
// since before and that no earlier call handed out since before either,
// and records that they are handed out now. The caller pings each one and
// reports the outcome: Confirm when it answers, ExpireResource (with the
// time of the ping) when it does not. A resource whose ping got lost is
// handed out again once its last hand-out is older than before. Resources
// with a TTL are never returned: their TTL does the job.
//
// O(users) in the worst case, fewer when max is reached early.
func (t *Tracker) Silent(before time.Time, max int) []Ref {
	if max <= 0 {
		return nil
	}
	now := t.clock.Now().UnixNano()
	b := before.UnixNano()
	var out []Ref
	t.mu.Lock()
	defer t.mu.Unlock()
	for jid, usr := range t.users {
		for i := range usr.resources {
			r := &usr.resources[i]
			if r.alive < b && r.pinged < b && r.Expires.IsZero() {
				r.pinged = now
				out = append(out, Ref{User: jid, Resource: r.Name})
				if len(out) == max {
					return out
				}
			}
		}
	}
	return out
}

// ExpireDue marks offline, with ReasonTimeout, every resource whose TTL has
// run out. It returns how many went offline. O(users with a TTL resource).
func (t *Tracker) ExpireDue() int {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for jid := range t.ttl {
		usr := t.users[jid]
		keep := false
		for i := len(usr.resources) - 1; i >= 0; i-- {
			r := &usr.resources[i]
			switch {
			case r.Expires.IsZero():
			case !r.Expires.After(now):
				t.removeLocked(jid, usr, i, ReasonTimeout, now)
				n++
			default:
				keep = true
			}
		}
		if !keep {
			usr.hasTTL = false
			delete(t.ttl, jid)
		}
	}
	return n
}

// RunTimers calls ExpireDue every interval until ctx ends, then returns
// ctx.Err(). It is the tracker's only use of real time besides its Clock,
// meant to run as a supervised service; tests call ExpireDue directly.
func (t *Tracker) RunTimers(ctx context.Context, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			t.ExpireDue()
		}
	}
}
