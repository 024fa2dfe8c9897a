package component

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/presenced/presenced/internal/jidnorm"
	"mellium.im/xmpp"
)

// Probe's pace: at most probeBurst probes, then a pause of probePause
// (500 a second). Bounded so that a server's list of a million sessions
// does not flood the link at once; fast enough that a restarted presenced
// asks 10,000 users in 20 s. The resync after a reconnect sends without
// pause, but only to users presenced already knows.
const (
	probeBurst = 50
	probePause = 100 * time.Millisecond
)

// ErrNotConnected is returned (wrapped) by Probe when there is no link to
// send on: before the first handshake, or between a drop and the next.
var ErrNotConnected = errors.New("component: not connected")

// link is what Probe and Linked need of the current connection
// (Component.lnk); the session code (Component.session) touches it only
// through attachLink.
type link struct {
	mu       sync.Mutex
	s        *xmpp.Session // nil while no link is up
	watchers []chan struct{}
}

func (c *Component) link() *link { return &c.lnk }

// attachLink makes s the link Probe sends on, from the handshake until the
// returned detach is called, and tells Linked's watchers that a link is
// up. session() calls it right after the handshake, as
// defer c.attachLink(s)().
func (c *Component) attachLink(s *xmpp.Session) (detach func()) {
	l := c.link()
	l.mu.Lock()
	l.s = s
	for _, w := range l.watchers {
		select {
		case w <- struct{}{}:
		default: // a notice is pending already: one is enough
		}
	}
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		if l.s == s {
			l.s = nil
		}
		l.mu.Unlock()
	}
}

// Linked returns a channel that receives after every handshake, once
// probes can go out on the new link; notices that the receiver has not
// taken yet are merged into one. Each call returns a new channel, for one
// receiver. cmd/presenced uses it to let the session reconciler probe the
// users a server lists on each new link (sessions.Reconciler.Trigger).
func (c *Component) Linked() <-chan struct{} {
	ch := make(chan struct{}, 1)
	l := c.link()
	l.mu.Lock()
	l.watchers = append(l.watchers, ch)
	if l.s != nil {
		ch <- struct{}{} // a link is up already
	}
	l.mu.Unlock()
	return ch
}

func (c *Component) current() *xmpp.Session {
	l := c.link()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s
}

// Probe sends a presence probe (<presence type='probe'/>) from the
// component's address to each user, a bare JID such as alice@example.org,
// on the current link. The server answers with the presence of each of
// the user's available resources, and only when the user has the
// component on the roster with a from or both subscription; the answers
// arrive as any presence does and bring the user online through the
// normal path. Probe does not wait for them, and marks nobody offline.
//
// Users are probed in the order given, each once (and not at all while
// an earlier probe of theirs still awaits its answer), at most probeBurst
// before each pause of probePause (500 a second); O(len(users)).
// Invalid entries (not a JID, or not bare, or without a localpart) are
// skipped, and reported by an error after the others were sent. sent
// counts the probes that went out. err wraps ErrNotConnected when no link
// is up (or it dropped half-way: the next link's resync probes every
// user presenced knows, and the caller may probe the rest again), the
// error of the link when writing fails, or ctx's error.
func (c *Component) Probe(ctx context.Context, users []string) (sent int, err error) {
	seen := make(map[string]bool, len(users))
	var (
		invalid int
		first   string
	)
	for _, u := range users {
		j, perr := jidnorm.Parse(u)
		if perr != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			if invalid == 0 {
				first = u
			}
			invalid++
			continue
		}
		bare := j.String()
		if seen[bare] || c.probes.answers(bare, time.Now()) {
			continue // probed already, or awaiting an earlier probe's answer
		}
		seen[bare] = true
		if sent > 0 && sent%probeBurst == 0 {
			t := time.NewTimer(probePause)
			select {
			case <-ctx.Done():
				t.Stop()
				return sent, fmt.Errorf("component: probe: %w", context.Cause(ctx))
			case <-t.C:
			}
		}
		s := c.current()
		if s == nil {
			return sent, fmt.Errorf("component: probe: %w", ErrNotConnected)
		}
		// c.probe records the probe, so that the answer counts as the
		// server's (presence.Update.Answer), as the resync's do.
		if err := c.probe(ctx, s, bare); err != nil {
			if ctx.Err() != nil {
				return sent, fmt.Errorf("component: probe: %w", context.Cause(ctx))
			}
			return sent, fmt.Errorf("component: probe: sending to %s: %w", bare, err)
		}
		sent++
	}
	if invalid > 0 {
		return sent, fmt.Errorf("component: probe: skipped %d entries that are not bare user JIDs, the first %q", invalid, first)
	}
	return sent, nil
}
