package presence

import (
	"strings"
	"time"
)

// Session is one session in an authoritative snapshot, such as a server's
// admin API lists.
type Session struct {
	User, Resource string
	Show           Show
	Status         string
	Priority       int
}

// Reconcile makes the state agree with sessions, the complete list of the
// sessions of the given domains (every domain when domains is empty) as
// the server saw them at the instant at.
//
// A resource online here but absent there goes offline with
// ReasonReconcile (ReasonRestart if it was restored and never confirmed),
// unless a report confirmed it after at (it came online while the snapshot
// was taken). A session unknown here comes online with the snapshot's show,
// status and priority, unless a resource of that user went offline after
// at (the snapshot may be older than that goodbye). Resources with a TTL
// are left to their TTL. A session known on both sides
// counts as confirmed and keeps its own show and status (the snapshot may
// carry less than the resource's presence did). A session listed twice
// counts once, as first listed. The whole correction happens under the
// tracker's lock: no report can slip in between. It returns how many resources came online and went
// offline. O(users of the domains + sessions).
func (t *Tracker) Reconcile(at time.Time, domains []string, sessions []Session) (online, offline int) {
	inScope := func(jid string) bool {
		if len(domains) == 0 {
			return true
		}
		_, dom, _ := strings.Cut(jid, "@")
		for _, d := range domains {
			if d == dom {
				return true
			}
		}
		return false
	}
	live := make(map[Ref]bool, len(sessions))
	for _, s := range sessions {
		if inScope(s.User) {
			live[Ref{s.User, s.Resource}] = true
		}
	}
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for jid, usr := range t.users {
		if !inScope(jid) {
			continue
		}
		for i := len(usr.resources) - 1; i >= 0; i-- {
			r := &usr.resources[i]
			switch {
			case !r.Expires.IsZero():
				// TTL resources are not the server's: their TTL decides, and a
				// session of the same name does not overwrite them.
				if _, listed := live[Ref{jid, r.Name}]; listed {
					live[Ref{jid, r.Name}] = false
				}
			case live[Ref{jid, r.Name}]:
				r.confirmed, r.restored = now.UnixNano(), false
				live[Ref{jid, r.Name}] = false // known: keep what it said itself
			case r.confirmed <= at.UnixNano():
				reason := ReasonReconcile
				if r.restored {
					reason = ReasonRestart
				}
				t.removeLocked(jid, usr, i, reason, now)
				offline++
			}
		}
	}
	for _, s := range sessions {
		ref := Ref{s.User, s.Resource}
		if !live[ref] {
			continue // out of scope, known here already, or listed twice
		}
		live[ref] = false
		if usr := t.users[s.User]; usr != nil && (usr.lastOff > at.UnixNano() || usr.staleAt(s.Resource) != 0) {
			// A resource of this user went offline after the snapshot (the
			// snapshot may list it still: let the next check decide), or this
			// one stopped answering pings (the server still holds a session
			// whose client is gone or frozen).
			continue
		}
		// The server's word, not the client's: it does not bring back a
		// resource that stopped answering pings (Update.Answer).
		u := Update{User: s.User, Resource: s.Resource, Available: true,
			Show: s.Show, Status: s.Status, Priority: s.Priority, Time: at, Answer: true, Listed: true}
		if _, changed, _ := t.applyLocked(&u, now); changed {
			online++
		}
	}
	return online, offline
}
