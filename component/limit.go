package component

import (
	"context"
	"encoding/xml"
	"errors"
	"sync"
	"time"

	"github.com/presenced/presenced/presence"
)

// errStanzaTooBig: a presence stanza passed Config.MaxStanza.
var errStanzaTooBig = errors.New("component: presence stanza over the size limit")

// sizeLimit passes a stanza's tokens on until their text (names, attribute
// values, character data), plus one byte per token, passes a bound. The XMPP server bounds stanzas
// too (max_stanza_size); this keeps what one stanza may cost the tracker
// bounded whatever the server's setting.
type sizeLimit struct {
	r    xml.TokenReader
	left int
}

func newSizeLimit(r xml.TokenReader, start *xml.StartElement, max int) *sizeLimit {
	return &sizeLimit{r: r, left: max - startSize(start)}
}

func startSize(t *xml.StartElement) int {
	n := len(t.Name.Local) + len(t.Name.Space)
	for _, a := range t.Attr {
		n += len(a.Name.Local) + len(a.Name.Space) + len(a.Value)
	}
	return n
}

func (l *sizeLimit) Token() (xml.Token, error) {
	if l.left < 0 {
		return nil, errStanzaTooBig
	}
	tok, err := l.r.Token()
	if tok != nil {
		l.left-- // every token costs something, even an empty comment
	}
	switch t := tok.(type) {
	case xml.StartElement:
		l.left -= startSize(&t)
	case xml.CharData:
		l.left -= len(t)
	case xml.Comment:
		l.left -= len(t)
	case xml.ProcInst:
		l.left -= len(t.Inst)
	case xml.Directive:
		l.left -= len(t)
	}
	if l.left < 0 {
		return nil, errStanzaTooBig
	}
	return tok, err
}

// flapLimiter bounds how many presence updates of one user reach the
// tracker per window (Config.UserRate per second). Past the bound, the
// user's updates are held, the newest per resource replacing older ones,
// and applied together when the window ends: a user flapping a thousand
// times a second costs the tracker, the feed and every dashboard a few
// changes a second, and the last word still counts.
//
// Counting per fixed window in a map that is cleared every window keeps
// memory bounded by the users active in one window; a token bucket per user
// (x/time/rate) would need a bucket per user ever seen, or an eviction.
type flapLimiter struct {
	limit  int
	window time.Duration

	mu     sync.Mutex
	counts map[string]int      // updates admitted this window, per user
	held   map[heldKey]int     // index in order
	order  []presence.Update   // held updates, in arrival order
	users  map[string]struct{} // users with held updates
	nheld  uint64              // updates held so far (tests read it)
}

type heldKey struct{ user, resource string }

func newFlapLimiter(perSecond int, window time.Duration) *flapLimiter {
	return &flapLimiter{
		limit:  max(1, int(float64(perSecond)*window.Seconds())),
		window: window,
		counts: map[string]int{},
		held:   map[heldKey]int{},
		users:  map[string]struct{}{},
	}
}

// admit reports whether u may be applied now. If not, it is held until
// the window ends, replacing an older held update of the same resource;
// now stamps it, so that the tracker dates the change when it happened.
// O(1).
func (f *flapLimiter) admit(u presence.Update, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.counts[u.User]; n < f.limit {
		f.counts[u.User] = n + 1
		return true
	}
	if u.Time.IsZero() {
		u.Time = now
	}
	k := heldKey{u.User, u.Resource}
	if i, ok := f.held[k]; ok {
		f.order[i] = u
	} else {
		f.held[k] = len(f.order)
		f.order = append(f.order, u)
	}
	f.users[u.User] = struct{}{}
	f.nheld++
	return false
}

// forget drops the held updates of a user, whose presence was just
// settled otherwise (an unavailable to the bare JID, an unsubscription):
// they must not bring it back. O(held updates).
func (f *flapLimiter) forget(user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[user]; !ok {
		return
	}
	delete(f.users, user)
	kept := f.order[:0]
	clear(f.held)
	for _, u := range f.order {
		if u.User != user {
			f.held[heldKey{u.User, u.Resource}] = len(kept)
			kept = append(kept, u)
		}
	}
	clear(f.order[len(kept):])
	f.order = kept
}

// flush ends the window: it returns the held updates, in arrival order,
// and starts counting afresh.
func (f *flapLimiter) flush() []presence.Update {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.order
	f.order = nil
	clear(f.held)
	clear(f.users)
	clear(f.counts)
	return out
}

// run applies the held updates at the end of every window until ctx ends.
func (f *flapLimiter) run(ctx context.Context, tr *presence.Tracker) {
	t := time.NewTicker(f.window)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, u := range f.flush() {
				tr.Apply(u)
			}
		}
	}
}
