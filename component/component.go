package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"mellium.im/xmpp"
	mcomp "mellium.im/xmpp/component"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stream"

	"github.com/presenced/presenced/internal/backoff"
	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/xmppext/adhoc"
	"github.com/presenced/presenced/xmppext/last"
	"github.com/presenced/presenced/xmppext/privilege"
)

// Config configures a Component.
type Config struct {
	// JID is the component's address, for example presence.example.org.
	// Required; only its domainpart is used.
	JID jid.JID
	// Secret is the shared secret of the server's component listener.
	// Required.
	Secret string
	// Addr is the server's component listener, host:port. Required.
	Addr string
	// Tracker receives the presence. Required.
	Tracker *presence.Tracker
	// Logger receives link and input errors; nil means slog.Default().
	Logger *slog.Logger

	// MinBackoff and MaxBackoff bound the delay between reconnect attempts;
	// zero means 500ms and 30s. A refused handshake (wrong secret or JID)
	// always waits MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds dialing and the handshake; zero means 10s.
	Timeout time.Duration
	// ProbeWait is how long after the probes of a (re)connect the resources
	// that no answer confirmed are marked offline; zero means 5s.
	ProbeWait time.Duration

	// LinkGrace is how long the link may stay down before every resource
	// not confirmed since it dropped is marked offline (reason server): a
	// short outage keeps the state, which the resync after the reconnect
	// corrects, while a server that stays away leaves no ghosts. Zero means
	// 30s.
	LinkGrace time.Duration

	// PingInterval is how long a resource may stay silent (no presence, no
	// answer) before the component pings it (XEP-0199) to its full JID;
	// zero means 5m. It is raised to PingTimeout+ProbeWait if shorter.
	PingInterval time.Duration
	// PingTimeout is how long a ping may go unanswered before the resource
	// goes offline (reason timeout); it also bounds the keepalive. Zero
	// means 30s.
	PingTimeout time.Duration
	// PingRate caps the pings sent per second; zero means 100.
	PingRate int
	// SweepInterval is how often every online user is probed, to catch what
	// pings cannot (a user whose server forgot it); zero means 15m.
	SweepInterval time.Duration
	// SweepRate caps the probes of the sweep per second; zero means 50.
	SweepRate int
	// KeepAlive is how often the component pings itself through the server
	// to check the link; a ping unanswered within PingTimeout drops the link
	// (which then reconnects). Zero means 60s.
	KeepAlive time.Duration
	// Tick is the period of the heartbeat loop that schedules the above;
	// zero means 1s. Tests make it small.
	Tick time.Duration

	// MaxStanza bounds a presence stanza, counted as the text of its
	// element names, attributes and character data; a larger one is
	// dropped with a warning. Zero means 64 KiB.
	MaxStanza int
	// UserRate bounds the presence updates of one user applied per second;
	// past it, the user's updates are held and the newest of each resource
	// applied when the second ends (limit.go). Zero means 10.
	UserRate int
	// flapWindow is the limiter's window; zero means 1s. Tests shorten it.
	flapWindow time.Duration

	// Admins may list and run the administration commands (XEP-0050) from
	// their XMPP client: bare JIDs, or whole domains. Empty means nobody.
	Admins []string

	// Registerer receives the component's metrics (stanzas in, connects,
	// link state, pings); nil means none.
	Registerer prometheus.Registerer

	// Extra adds handlers (for example XEPs from xmppext) to the IQ mux.
	Extra []mux.Option
}

// Component is the XEP-0114 link to one XMPP server.
type Component struct {
	cfg  Config
	log  *slog.Logger
	addr string // cfg.JID's domain, as sent in from attributes
	mux  *mux.ServeMux
	subs *subscriptions
	jids jidCache // the handler's only: see jidCache
	// flaps holds back users who change presence too often.
	flaps *flapLimiter
	// probes tells the server's answers to probes from the clients' own
	// presence.
	probes *probeLog
	// lnk is the current link, for Probe and Linked (probe.go).
	lnk link
	// privileged is what the server granted on this link (XEP-0356), nil
	// if nothing.
	privileged atomic.Pointer[privilege.Perms]
	// lastRecv is when a stanza last arrived on the link (Unix
	// nanoseconds): evidence that the link works, without which a missing
	// answer says nothing about the user.
	lastRecv atomic.Int64
	// checkLink asks the heartbeat loop for a keepalive now; sweepNow for a
	// probe sweep now (the reconcile-now command).
	checkLink, sweepNow chan struct{}
	// recheck carries the server's word for resources the tracker holds
	// stale (recheck.go): the heartbeat loop pings each once more.
	recheck   chan presence.Update
	commands  *adhoc.Responder
	connected atomic.Bool
	connects  atomic.Int64
	conflicts conflicts // links in a row another connection replaced (conflict.go)
	metrics   *metrics
}

// New checks cfg and returns a Component; it does not connect (see Serve).
func New(cfg Config) (*Component, error) {
	switch {
	case cfg.JID.Domainpart() == "":
		return nil, errors.New("component: Config.JID is empty")
	case cfg.Secret == "":
		return nil, errors.New("component: Config.Secret is empty")
	case cfg.Addr == "":
		return nil, errors.New("component: Config.Addr is empty")
	case cfg.Tracker == nil:
		return nil, errors.New("component: Config.Tracker is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ProbeWait <= 0 {
		cfg.ProbeWait = 5 * time.Second
	}
	if cfg.LinkGrace <= 0 {
		cfg.LinkGrace = 30 * time.Second
	}
	setDefault(&cfg.PingInterval, 5*time.Minute)
	setDefault(&cfg.PingTimeout, 30*time.Second)
	setDefault(&cfg.SweepInterval, 15*time.Minute)
	setDefault(&cfg.KeepAlive, time.Minute)
	setDefault(&cfg.Tick, time.Second)
	if cfg.PingRate <= 0 {
		cfg.PingRate = 100
	}
	if cfg.SweepRate <= 0 {
		cfg.SweepRate = 50
	}
	if cfg.MaxStanza <= 0 {
		cfg.MaxStanza = 64 << 10
	}
	if cfg.UserRate <= 0 {
		cfg.UserRate = 10
	}
	setDefault(&cfg.flapWindow, time.Second)
	cfg.JID = cfg.JID.Domain()
	opts := append([]mux.Option{
		disco.Handle(),
		ping.Handle(),
		last.Handle(time.Now(), nil), // XEP-0012: the component's uptime
		mux.Ident(identity{}),
	}, cfg.Extra...)
	if min := cfg.PingTimeout + cfg.ProbeWait; cfg.PingInterval < min {
		// A shorter interval would ping resources whose last ping is still
		// pending.
		cfg.PingInterval = min
	}
	c := &Component{
		checkLink: make(chan struct{}, 1),
		recheck:   make(chan presence.Update, maxRechecks),
		probes:    newProbeLog(),
		sweepNow:  make(chan struct{}, 1),
		cfg:       cfg,
		log:       cfg.Logger.With("component", cfg.JID.String()),
		addr:      cfg.JID.String(),
		mux:       nil, // below: the commands need c
		subs:      newSubscriptions(),
		flaps:     newFlapLimiter(cfg.UserRate, cfg.flapWindow),
	}
	c.commands = adhoc.New(c.isAdmin, c.adminCommands()...)
	c.mux = mux.New(mcomp.NSAccept, append(opts, c.commands.Handle())...)
	c.metrics = newMetrics(cfg.Registerer, c)
	return c, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Connected reports whether the link is up (handshake done, not dropped).
func (c *Component) Connected() bool { return c.connected.Load() }

// Health is nil while the link is up; else it says why not: another
// connection with the component's JID replaced this one (conflict.go), or
// the link is down.
func (c *Component) Health() error {
	if c.Connected() {
		return nil
	}
	if err := c.conflicts.err(c.cfg.JID.String()); err != nil {
		return err
	}
	return errors.New("not connected to the XMPP server")
}

// PresencePrivilege returns the presence permission the server granted on
// the current link (XEP-0356: "managed_entity" or "roster"), or "".
func (c *Component) PresencePrivilege() string {
	if p := c.privileged.Load(); p != nil {
		return p.Presence()
	}
	return ""
}

// Serve keeps the component connected until ctx ends, then closes the link
// and returns ctx.Err(). Failures to dial, a refused handshake and dropped
// links are logged and retried after a backoff; Serve never returns early.
//
// The grace period (Config.LinkGrace) starts when Serve starts (for a
// restored state) and when a link whose resync completed drops; when it
// ends without a new verified link, every resource not confirmed since the
// last drop goes offline. Links that drop before their resync completes do
// not restart the period, so a flapping link cannot keep ghosts alive.
func (c *Component) Serve(ctx context.Context) error {
	go c.flaps.run(ctx, c.cfg.Tracker)
	attempt := 0
	lost := c.cfg.Tracker.Now()
	grace := time.After(c.cfg.LinkGrace) // nil once fired
	for {
		began := time.Now()
		before := c.connects.Load()
		resynced, err := c.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.connects.Load() != before {
			// A link dropped: what it reported is uncertain from now on.
			lost = c.cfg.Tracker.Now()
			if resynced || grace == nil {
				grace = time.After(c.cfg.LinkGrace)
			}
		}
		if time.Since(began) > c.cfg.MaxBackoff {
			attempt = 0 // the link was healthy for a while: start over
		}
		delay := backoff.Policy{Min: c.cfg.MinBackoff, Max: c.cfg.MaxBackoff}.Delay(attempt)
		attempt++
		switch {
		case errors.Is(err, stream.Conflict):
			n := c.conflicts.record(time.Now())
			delay = backoff.Policy{Min: c.cfg.MaxBackoff, Max: conflictFactor * c.cfg.MaxBackoff}.Delay(n - 1)
			c.conflicts.retryAt(time.Now().Add(delay))
			c.metrics.conflict()
			c.log.Error("component: another connection with this JID replaced the link (stream error conflict): is a second presenced running as "+c.cfg.JID.String()+"? backing off",
				"addr", c.cfg.Addr, "conflicts_in_a_row", n, "retry_in", delay)
		case errors.Is(err, stream.NotAuthorized) || errors.Is(err, stream.HostUnknown):
			delay = c.cfg.MaxBackoff
			c.log.Error("component: the server refused the handshake: check the component JID and secret",
				"addr", c.cfg.Addr, "err", err, "retry_in", delay)
		default:
			if c.connects.Load() != before {
				c.conflicts.reset() // a link that ended for another reason
			}
			c.log.Warn("component: link down", "addr", c.cfg.Addr, "err", err, "retry_in", delay)
		}
		retry := time.After(delay)
	wait:
		for {
			select {
			case <-retry:
				break wait
			case <-grace:
				grace = nil
				n := c.cfg.Tracker.Expire(lost, presence.ReasonServer)
				c.log.Warn("component: no verified link for longer than the grace period: resources marked offline",
					"grace", c.cfg.LinkGrace, "offline", n)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// session runs one connection: dial, handshake, resync, serve until it
// ends. resynced reports whether the resync after the handshake completed.
func (c *Component) session(ctx context.Context) (resynced bool, err error) {
	dialer := net.Dialer{Timeout: c.cfg.Timeout}
	conn, err := dialer.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return false, fmt.Errorf("component: dial: %w", err)
	}
	defer conn.Close() // Session.Close only ends the stream
	began := time.Now()
	hctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	s, err := mcomp.NewSession(hctx, c.cfg.JID, []byte(c.cfg.Secret), conn)
	cancel()
	if err != nil {
		return false, fmt.Errorf("component: handshake: %w", err)
	}
	c.log.Info("component: connected", "addr", c.cfg.Addr, "handshake", time.Since(began))
	c.connects.Add(1)
	c.metrics.connected()
	c.privileged.Store(nil) // each link says afresh what it grants
	c.connected.Store(true)
	defer c.connected.Store(false)
	defer c.attachLink(s)() // Probe sends on this link; Linked's watchers learn of it

	// The resync runs beside Serve and stops with the link. Its mark is
	// taken before Serve reads anything, so every report of this link
	// counts as an answer.
	mark := c.cfg.Tracker.Now()
	linkCtx, linkDone := context.WithCancel(ctx)
	var done atomic.Bool
	resyncEnded := make(chan struct{})
	go func() {
		defer close(resyncEnded)
		defer c.recoverPanic("resync")
		done.Store(c.resync(linkCtx, s, mark))
	}()

	heartbeatEnded := make(chan struct{})
	go func() {
		defer close(heartbeatEnded)
		defer c.recoverPanic("heartbeat")
		c.heartbeat(linkCtx, s, func() { conn.Close() })
	}()

	served := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("component: panic while serving the stream", "panic", r)
				served <- fmt.Errorf("component: panic: %v", r)
			}
		}()
		served <- s.Serve(xmpp.HandlerFunc(c.handle))
	}()
	select {
	case err = <-served:
	case <-ctx.Done():
		// A handler blocked on a server that stopped reading holds the
		// session's output lock; a deadline frees it so Close can run.
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		_ = s.Close()
		_ = conn.Close()
		err = <-served
	}
	linkDone()
	<-resyncEnded
	<-heartbeatEnded
	if err == nil {
		err = errors.New("component: the server closed the stream")
	}
	return done.Load(), err
}

// recoverPanic logs a panic of a goroutine the supervisor does not watch,
// instead of letting it end the process.
func (c *Component) recoverPanic(what string) {
	if r := recover(); r != nil {
		c.log.Error("component: panic in "+what, "panic", r)
	}
}

// resync probes every known user, waits ProbeWait for the answers, then
// settles what nothing confirmed since mark (offline, or pinged for users
// whose server answers no probe), and reports true. It gives up,
// reporting false, if the link drops meanwhile: the next connect resyncs.
func (c *Component) resync(ctx context.Context, s *xmpp.Session, mark time.Time) bool {
	seen := make(map[string]bool)
	probes := 0
	for _, users := range [][]string{c.cfg.Tracker.Users(), c.subs.users()} {
		for _, u := range users {
			if seen[u] {
				continue
			}
			seen[u] = true
			if err := c.probe(ctx, s, u); err != nil {
				return false
			}
			probes++
		}
	}
	select {
	case <-time.After(c.cfg.ProbeWait):
	case <-ctx.Done():
		return false
	}
	// The server answers for every live session of a user who has the
	// component on the roster; a user known by directed presence gets no
	// answer, and is pinged instead (Tracker.SettleAll).
	n, ping := c.cfg.Tracker.SettleAll(mark, presence.ReasonReconcile)
	c.log.Info("component: resynced", "probed", probes, "offline", n, "to_ping", ping)
	return true
}
