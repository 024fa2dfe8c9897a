package component

import (
	"context"

	"mellium.im/xmpp"

	"github.com/presenced/presenced/internal/jidnorm"
	"github.com/presenced/presenced/presence"
)

// maxRechecks bounds the stale resources waiting for a second ping; more
// are dropped, and the server's next word about them (the next probe
// answer) asks again.
const maxRechecks = 64

// A resource whose client left a ping unanswered goes offline and is held
// stale by the tracker, so that the server's word about it (its answer to a
// probe, its session list) does not bring it back: the server answers for a
// session it holds, and MongooseIM holds a stream-management (XEP-0198)
// session for resume_timeout (600 s) after its TCP connection is cut. But a
// client may resume such a session, and a resumed client sends no presence
// (the session's is the server's): only asking it again tells. So when the
// server's word comes for a stale resource, the component pings the full
// JID once more; an answer proves the client is back, and the server's
// presence for it is applied as the client's own (Update.Answer false),
// which clears the stale mark. The server's word comes with each probe of
// the user: the reconciler's passes (-reconcile-interval) for a user whose
// every resource went offline, the probe sweep for one with others online.
// Alternatives considered: believing the server's list (the ghost of issue
// 15.3: a cut session stayed online for the whole resumption window) and
// pinging every stale resource on a timer of its own (pings for sessions
// the server no longer holds, which only error).

// askRecheck hands u, the server's word for a stale resource, to the
// heartbeat loop; without a free slot it is dropped (see maxRechecks).
func (c *Component) askRecheck(u presence.Update) {
	select {
	case c.recheck <- u:
	default:
	}
}

// recheckStale pings the stale resource of u and, if its client answers,
// applies u as the client's word. Silence or an error leaves it stale.
func (c *Component) recheckStale(ctx context.Context, s *xmpp.Session, u presence.Update) {
	to, err := jidnorm.Parse(u.User + "/" + u.Resource)
	if err != nil {
		return
	}
	if c.ask(ctx, to, func(ctx context.Context) error { return c.sendPing(ctx, s, to) }) != answered {
		return
	}
	c.metrics.ping("rechecked")
	u.Answer = false
	if _, changed, err := c.cfg.Tracker.Try(u); err == nil && changed {
		c.log.Info("component: a held session answered again: back online (a resumed stream-management session?)",
			"user", u.User, "resource", u.Resource)
	}
}
