package component

import (
	"context"
	"sync"
	"time"

	"mellium.im/xmpp"
)

// probeLog remembers the users probed in the last ProbeWait, so that their
// presence meanwhile is taken for what it most likely is: the server's
// answer from the presence it cached (presence.Update.Answer), which proves
// that the server holds the session but nothing about the client. A client
// that happens to change its presence within that window is taken for the
// server's answer too; it then gets one ping more than it needs, nothing
// worse.
//
// Alternative considered: telling answers by their <delay/> stamp.
// ejabberd and MongooseIM stamp their answers, but a client may stamp its
// own presence, and not every server stamps.
type probeLog struct {
	mu  sync.Mutex
	due map[string]int64 // user → until when a presence counts as an answer (Unix ns)
	// order holds the users in the order probed; as every probe waits the
	// same ProbeWait, it is also the order their windows close, so pruning
	// pops from the front (and compacts once half is popped). O(1)
	// amortized per probe.
	order []probeEntry
}

type probeEntry struct {
	user  string
	until int64
}

func newProbeLog() *probeLog { return &probeLog{due: make(map[string]int64)} }

// sent records a probe of user whose answer counts until until.
func (l *probeLog) sent(user string, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.due[user] = until.UnixNano()
	l.order = append(l.order, probeEntry{user, until.UnixNano()})
}

// answers reports whether presence from user at now answers a probe.
func (l *probeLog) answers(user string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.due[user]
	return ok && now.UnixNano() <= until
}

// prune forgets the probes whose window closed before now.
func (l *probeLog) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := now.UnixNano()
	i := 0
	for ; i < len(l.order) && l.order[i].until < n; i++ {
		e := l.order[i]
		if l.due[e.user] == e.until { // not probed again since
			delete(l.due, e.user)
		}
	}
	l.order = l.order[i:]
	if len(l.order) < cap(l.order)/2 {
		l.order = append([]probeEntry(nil), l.order...)
	}
}

// probe sends a presence probe from the component to the bare JID user on
// s, and records it so that the answer is known as one. The answer's window
// is twice ProbeWait: an answer a little late still is the server's.
func (c *Component) probe(ctx context.Context, s *xmpp.Session, user string) error {
	c.probes.sent(user, time.Now().Add(2*c.cfg.ProbeWait))
	return s.Encode(ctx, outPresence{From: c.addr, To: user, Type: "probe"})
}
