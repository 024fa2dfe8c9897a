package component

import (
	"context"
	"encoding/xml"
	"errors"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/presenced/presenced/presence"
)

// maxPendingPings bounds the pings waiting for an answer at once; the
// tracker hands the others out again at the next interval.
const maxPendingPings = 256

// heartbeat runs the link's periodic work until ctx ends: pings to silent
// resources, the slow probe sweep of online users, and the keepalive ping
// that proves the link itself still carries stanzas (a link that stalls
// without closing is otherwise only noticed when TCP gives up). It closes
// the link, through drop, when the keepalive goes unanswered.
func (c *Component) heartbeat(ctx context.Context, s *xmpp.Session, drop func()) {
	tick := time.NewTicker(c.cfg.Tick)
	defer tick.Stop()
	pending := make(chan struct{}, maxPendingPings)
	// The stale resources being pinged again (recheck.go), one ping each.
	rechecking := map[presence.Ref]struct{}{}
	rechecked := make(chan presence.Ref, maxPendingPings)
	var sweep sweeper
	nextSweep := time.Now().Add(c.cfg.SweepInterval)
	nextKeepalive := time.Now().Add(c.cfg.KeepAlive)
	keepalive := make(chan error, 1)
	awaiting := false
	pingBudget := max(1, int(float64(c.cfg.PingRate)*c.cfg.Tick.Seconds()))
	probeBudget := max(1, int(float64(c.cfg.SweepRate)*c.cfg.Tick.Seconds()))

	startKeepalive := func(now time.Time) {
		awaiting = true
		nextKeepalive = now.Add(c.cfg.KeepAlive)
		go func() {
			defer c.recoverPanic("keepalive")
			kctx, cancel := context.WithTimeout(ctx, c.cfg.PingTimeout)
			defer cancel()
			err := c.sendPing(kctx, s, c.cfg.JID)
			if ctx.Err() != nil {
				return
			}
			var se stanza.Error
			if err == nil || errors.As(err, &se) {
				// An answer, even an error, crossed the server: the link works.
				c.lastRecv.Store(time.Now().UnixNano())
				err = nil
			}
			keepalive <- err
		}()
	}

	for {
		select {
		case <-ctx.Done():
			return
		case <-c.checkLink:
			if !awaiting {
				startKeepalive(time.Now())
			}
		case <-c.sweepNow:
			nextSweep = time.Now() // the next tick starts it
		case u := <-c.recheck:
			ref := presence.Ref{User: u.User, Resource: u.Resource}
			if _, busy := rechecking[ref]; busy {
				break
			}
			if len(pending) == cap(pending) {
				break // every slot is taken: the server's next word asks again
			}
			pending <- struct{}{} // cannot block: only this loop fills it
			rechecking[ref] = struct{}{}
			go func() {
				defer func() { <-pending; rechecked <- ref }()
				defer c.recoverPanic("recheck")
				c.recheckStale(ctx, s, u)
			}()
		case ref := <-rechecked:
			delete(rechecking, ref)
		case err := <-keepalive:
			awaiting = false
			if err != nil {
				c.log.Warn("component: keepalive ping unanswered: dropping the link", "err", err)
				drop()
				return
			}
		case now := <-tick.C:
			c.probes.prune(now)
			// Pings to resources silent for PingInterval, as many as the rate
			// and the free slots allow; the rest wait for the next tick.
			if free := cap(pending) - len(pending); free > 0 {
				for _, ref := range c.cfg.Tracker.Silent(c.cfg.Tracker.Now().Add(-c.cfg.PingInterval), min(pingBudget, free)) {
					pending <- struct{}{} // cannot block: only this loop fills it
					go func() {
						defer func() { <-pending }()
						defer c.recoverPanic("ping")
						c.pingResource(ctx, s, ref)
					}()
				}
			}
			// The probe sweep: every SweepInterval, each online user once.
			if !now.Before(nextSweep) && sweep.idle() {
				sweep.start(c.cfg.Tracker.Probeable())
				nextSweep = now.Add(c.cfg.SweepInterval)
			}
			if err := sweep.step(ctx, c, s, probeBudget); err != nil {
				return
			}
			// Keepalive: the component pings itself through the server.
			if !awaiting && !now.Before(nextKeepalive) {
				startKeepalive(now)
			}
		}
	}
}

// linkWorks reports whether a stanza arrived on the link after since. If
// none has, it asks for a keepalive and waits, up to twice PingTimeout, for
// its answer (or any stanza); it returns false when the link dropped or the
// wait ran out: a missing answer then says nothing about the user.
func (c *Component) linkWorks(ctx context.Context, since time.Time) bool {
	for deadline := time.Now().Add(2 * c.cfg.PingTimeout); ; {
		if c.lastRecv.Load() > since.UnixNano() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case c.checkLink <- struct{}{}:
		default: // one is already asked for
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(c.cfg.Tick):
		}
	}
}

// sendPing sends an XEP-0199 ping from the component and waits for the
// answer; an error reply comes back as a stanza.Error.
func (c *Component) sendPing(ctx context.Context, s *xmpp.Session, to jid.JID) error {
	iq := ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: to, From: c.cfg.JID}}
	return s.UnmarshalIQ(ctx, iq.TokenReader(), nil)
}

// discoInfoQuery is the payload of a disco#info request (XEP-0030).
var discoInfoQuery = xml.StartElement{Name: xml.Name{Space: "http://jabber.org/protocol/disco#info", Local: "query"}}

// sendDiscoInfo asks a full JID for its disco#info and waits for the
// answer. Only a client answers it with a result: for a session that is
// gone the server answers an error. Nearly every client implements it
// (XEP-0115 capabilities rest on it), also those without XEP-0199.
func (c *Component) sendDiscoInfo(ctx context.Context, s *xmpp.Session, to jid.JID) error {
	iq := stanza.IQ{Type: stanza.GetIQ, To: to, From: c.cfg.JID}
	return s.UnmarshalIQElement(ctx, xmlstream.Wrap(nil, discoInfoQuery), iq, nil)
}

// pingResource pings one silent resource and reports the outcome to the
// tracker. A result confirms it. No answer within PingTimeout takes it
// offline (reason timeout), whatever its siblings do: only the client's own
// word keeps it (presence.Tracker.ExpireResource). An error reply is
// ambiguous (the server answers service-unavailable for a session that is
// gone, and so does a live client without XEP-0199), so the resource is
// asked for its disco#info, which only a live client answers with a result;
// if that fails too, a probe of the user settles it (probeThenExpire).
func (c *Component) pingResource(ctx context.Context, s *xmpp.Session, ref presence.Ref) {
	sent := c.cfg.Tracker.Now()
	wall := time.Now()
	to, err := jid.Parse(ref.User + "/" + ref.Resource)
	if ref.Resource == "" || err != nil {
		// Presence from a bare JID: there is no full JID to ping. A probe
		// answers for every real resource, never for this one.
		c.probeThenExpire(ctx, s, ref, sent, wall)
		return
	}
	switch c.ask(ctx, to, func(ctx context.Context) error { return c.sendPing(ctx, s, to) }) {
	case answered:
		c.metrics.ping("answered")
		c.cfg.Tracker.Confirm(ref.User, ref.Resource)
	case silent:
		c.metrics.ping("timeout")
		c.expireSilent(ctx, ref, sent, wall, "a ping")
	case refused:
		c.metrics.ping("error")
		switch c.ask(ctx, to, func(ctx context.Context) error { return c.sendDiscoInfo(ctx, s, to) }) {
		case answered:
			c.metrics.ping("disco")
			c.cfg.Tracker.Confirm(ref.User, ref.Resource)
		case silent:
			// An error, then silence: the error was the server's.
			c.expireSilent(ctx, ref, sent, wall, "disco#info")
		case refused:
			c.probeThenExpire(ctx, s, ref, sent, wall)
		}
	}
}

// outcome is how a resource met a query (ask).
type outcome int

const (
	answered  outcome = iota // a result
	refused                  // an error reply: ambiguous (see pingResource)
	silent                   // nothing within PingTimeout
	noVerdict                // the link dropped, or the query failed to go out
)

// ask sends one query to the full JID to (send, bounded by PingTimeout)
// and says how it was met. Any reply proves the link works.
func (c *Component) ask(ctx context.Context, to jid.JID, send func(context.Context) error) outcome {
	qctx, cancel := context.WithTimeout(ctx, c.cfg.PingTimeout)
	err := send(qctx)
	cancel()
	var se stanza.Error
	switch {
	case err == nil:
		c.lastRecv.Store(time.Now().UnixNano())
		return answered
	case errors.As(err, &se):
		c.lastRecv.Store(time.Now().UnixNano())
		return refused
	case ctx.Err() != nil:
		return noVerdict
	case errors.Is(err, context.DeadlineExceeded):
		return silent
	}
	c.log.Debug("component: query failed", "jid", to.String(), "err", err)
	return noVerdict
}

// expireSilent takes offline a resource that left a query (what) sent at
// sent unanswered; silence means the client is gone only if the link
// itself works (wall: the same instant on the wall clock).
func (c *Component) expireSilent(ctx context.Context, ref presence.Ref, sent, wall time.Time, what string) {
	if c.linkWorks(ctx, wall) && c.cfg.Tracker.ExpireResource(ref.User, ref.Resource, sent, presence.ReasonTimeout) {
		c.log.Info("component: resource did not answer "+what, "user", ref.User, "resource", ref.Resource, "timeout", c.cfg.PingTimeout)
	}
}

// probeThenExpire settles a resource whose client answered with errors
// only (or has no full JID to ask): it probes the user and, ProbeWait
// later, keeps the resource if the server's answer named it, and takes it
// offline otherwise, unless the client spoke for itself since sent
// (tracker time; wall is the same instant on the wall clock, for the link
// check). The server's answer stands for the client only here, for this
// one resource: the server routes a query to a live session and answers
// errors itself only for a session that is gone, so errors plus a session
// the server holds mean a live client without XEP-0199 and XEP-0030.
func (c *Component) probeThenExpire(ctx context.Context, s *xmpp.Session, ref presence.Ref, sent time.Time, wall time.Time) {
	if c.probe(ctx, s, ref.User) != nil {
		return
	}
	select {
	case <-time.After(c.cfg.ProbeWait):
	case <-ctx.Done():
		return
	}
	if !c.linkWorks(ctx, wall) {
		return
	}
	if ref.Resource != "" && c.cfg.Tracker.Vouched(ref.User, ref.Resource, sent) {
		c.cfg.Tracker.Confirm(ref.User, ref.Resource)
		return
	}
	if c.cfg.Tracker.ExpireResource(ref.User, ref.Resource, sent, presence.ReasonTimeout) {
		c.log.Info("component: resource gone", "user", ref.User, "resource", ref.Resource)
	}
}

// sweeper walks the online users at a bounded rate, probing each and
// expiring, ProbeWait later, what the answers did not confirm.
type sweeper struct {
	todo []string
	sent []probed // in send order, so in expiry order
}

type probed struct {
	user string
	at   time.Time // tracker time the probe was sent
	wall time.Time // wall time it was sent
	due  time.Time // wall time its answer is due
}

func (w *sweeper) idle() bool { return len(w.todo) == 0 && len(w.sent) == 0 }

func (w *sweeper) start(users []string) { w.todo = users }

// step sends up to budget probes and expires the users whose answer is
// overdue. It returns an error only when the link failed.
func (w *sweeper) step(ctx context.Context, c *Component, s *xmpp.Session, budget int) error {
	for i := 0; i < budget && len(w.todo) > 0; i++ {
		u := w.todo[0]
		w.todo = w.todo[1:]
		at := c.cfg.Tracker.Now()
		if err := c.probe(ctx, s, u); err != nil {
			return err
		}
		wall := time.Now()
		w.sent = append(w.sent, probed{user: u, at: at, wall: wall, due: wall.Add(c.cfg.ProbeWait)})
	}
	now := time.Now()
	for len(w.sent) > 0 && !now.Before(w.sent[0].due) {
		p := w.sent[0]
		if c.lastRecv.Load() <= p.wall.UnixNano() {
			// Nothing came back since the probe: the link may be stalled.
			// Ask for a keepalive and decide on a later tick.
			select {
			case c.checkLink <- struct{}{}:
			default:
			}
			break
		}
		w.sent = w.sent[1:]
		// Silence means gone only from a server that answers probes for
		// this user; a user known by directed presence is pinged instead.
		if n, ping := c.cfg.Tracker.Settle(p.user, p.at, presence.ReasonReconcile); n > 0 || ping > 0 {
			c.log.Info("component: probe sweep: resources unconfirmed", "user", p.user, "offline", n, "to_ping", ping)
		}
	}
	return nil
}
