package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/thejerf/suture/v4"
	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/bridge"
	"github.com/presenced/presenced/bridge/auth"
	"github.com/presenced/presenced/component"
	"github.com/presenced/presenced/component/ejabberd"
	"github.com/presenced/presenced/component/mongooseim"
	"github.com/presenced/presenced/component/sessions"
	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/store"
	"github.com/presenced/presenced/store/memstore"
	"github.com/presenced/presenced/store/pgstore"
)

// Config is one presenced's settings. The zero value of every optional
// field means its documented default, as in every config struct of the
// project (bridge.Config, component.Config, ...): for a limit, no bound;
// a pause that can be turned off is turned off by a negative value, and a
// subsystem by leaving out what it needs (an address, a URL). The command
// line's defaults are ParseSettings' (settings.go). Error messages name the settings as
// presenced's command line spells them (-jid, PRESENCED_JID), since that
// is where operators set them.
type Config struct {
	// JID is the component's address. Required.
	JID string
	// Secret is the component listener's shared secret. Required.
	Secret string
	// Server is the XMPP server's component listener, host:port. Required.
	Server string
	// HTTP is the listen address of the bridge. Required.
	HTTP string
	// Store names the store backend; "" or "memory" is the in-memory one.
	Store string
	// ProbeWait: see component.Config.ProbeWait; zero means 5s.
	ProbeWait time.Duration
	// LinkGrace, PingInterval, PingTimeout, SweepInterval, KeepAlive: see
	// component.Config; zero means its default.
	LinkGrace, PingInterval, PingTimeout, SweepInterval, KeepAlive time.Duration
	// Retention: see pgstore.Config.Retention; zero keeps history forever.
	Retention time.Duration
	// JWTKeys, JWKS, JWTIssuer, JWTAudience configure authentication (see
	// bridge/auth.Config); with no keys at all the API is open to everyone.
	JWTKeys                      []string
	JWKS, JWTIssuer, JWTAudience string
	// Admins: see component.Config.Admins.
	Admins []string
	// AllowedOrigins: see bridge.Config.AllowedOrigins.
	AllowedOrigins []string
	// RatePerSecond: see bridge.Config.RatePerSecond; zero means 20.
	RatePerSecond float64
	// MaxUsers, MaxResources: see presence.Options; zero means no bound.
	MaxUsers, MaxResources int
	// Domains are served besides the JID's parent domain and
	// ReconcileDomains (see servedDomains); nil adds none.
	Domains []string
	// MaxStanza, UserRate: see component.Config; zero means its default.
	MaxStanza, UserRate int
	// StreamWriters: see bridge.Config.StreamWriters; zero means its
	// default.
	StreamWriters int
	// StreamQueue: see bridge.Config.StreamQueue; zero means its default.
	StreamQueue int
	// StreamFlushInterval: see bridge.Config.StreamFlushInterval; zero
	// means 25ms, negative no pause.
	StreamFlushInterval time.Duration
	// MongooseIM is the admin GraphQL client; with an Endpoint, a
	// sessions.Reconciler runs at start, after every handshake of the
	// component and every ReconcileInterval over ReconcileDomains, with the
	// policy of ReconcileListed. The zero value (no Endpoint) runs none.
	MongooseIM mongooseim.Client
	// MongooseIMREST (MongooseIM's REST admin API) and MongooseIMDatabase
	// (the URL of its RDBMS, PostgreSQL) are what `presenced provision`
	// needs besides JID (Provisioner); the service itself uses neither.
	MongooseIMREST     mongooseim.REST
	MongooseIMDatabase string
	// Ejabberd is the mod_http_api client; with a URL, a
	// sessions.Reconciler runs likewise, with the policy of ReconcileListed
	// (at start, after every handshake, every ReconcileInterval over
	// ReconcileDomains). The zero value (no URL) runs none. At most one of
	// MongooseIM and Ejabberd may be set.
	Ejabberd ejabberd.Client
	// ReconcileInterval: see sessions.Reconciler.Interval; zero means 5m.
	// ReconcileDomains: see sessions.Reconciler.Domains; empty means every
	// domain of the server.
	ReconcileInterval time.Duration
	ReconcileDomains  []string
	// ReconcileListed says what the session reconciler does with a session
	// the server lists and presenced does not know: "" (the default) or
	// "probe" probes its user, and only the user's own answer brings it
	// online, so users who never let the component see their presence stay
	// out; "online" brings the listed session online from the list alone
	// (available, without show or status: the list has neither).
	ReconcileListed string
	// Logger receives all logs; nil means slog.Default().
	Logger *slog.Logger
	// Metrics is the listen address of the Prometheus endpoint (/metrics);
	// empty means no metrics endpoint.
	Metrics string
}

// Validate reports the first missing or invalid setting, naming its flag
// and environment variable; nil if cfg can start.
func (o Config) Validate() error {
	switch {
	case o.JID == "":
		return errors.New("-jid (PRESENCED_JID) is required")
	case o.Secret == "":
		return errors.New("-secret (PRESENCED_SECRET) is required")
	case o.Server == "":
		return errors.New("-server (PRESENCED_SERVER) is required")
	case o.HTTP == "":
		return errors.New("-http (PRESENCED_HTTP) is required")
	}
	if j, err := jid.Parse(o.JID); err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return fmt.Errorf("-jid (PRESENCED_JID): %q is not a domain JID such as presence.example.org", o.JID)
	}
	if o.MongooseIM.Endpoint != "" && o.Ejabberd.URL != "" {
		// One XMPP server, one list of its sessions.
		return errors.New("-mongooseim-graphql and -ejabberd-api: set one of them, for the server presenced is attached to")
	}
	if o.ReconcileListed != "" && o.ReconcileListed != "probe" && o.ReconcileListed != "online" {
		return fmt.Errorf("-reconcile-listed (PRESENCED_RECONCILE_LISTED): %q is neither probe nor online", o.ReconcileListed)
	}
	if u := o.MongooseIMREST.URL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return fmt.Errorf("-mongooseim-rest (PRESENCED_MONGOOSEIM_REST): %q is not an http:// or https:// URL", u)
	}
	if o.MongooseIMDatabase != "" && !IsPostgresURL(o.MongooseIMDatabase) {
		return errors.New("-mongooseim-database (PRESENCED_MONGOOSEIM_DATABASE): not a PostgreSQL URL postgres://... (MongooseIM's RDBMS)")
	}
	if o.Store != "" && o.Store != "memory" && !IsPostgresURL(o.Store) {
		return fmt.Errorf("-store (PRESENCED_STORE): unknown store %q (memory, or a PostgreSQL URL postgres://...)", o.Store)
	}
	return nil
}

// App is one presenced: the tracker, its store, the component, the session
// reconciler, the bridge, the timers and the metrics endpoint, each run as
// a service under one supervisor. Build it with New, then Start and Stop
// it once each; an App cannot be restarted (build a new one).
type App struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	state   state
	tracker *presence.Tracker
	store   store.Store
	ln, mln net.Listener
	stop    func()             // stops the supervised services, in order
	cancel  context.CancelFunc // ends the bridge's background work

	startDone chan struct{} // closed when Start has returned
	stopped   chan struct{} // closed when everything has stopped
}

// state is where an App is in its one life: new, starting, running,
// stopped (or stopping).
type state int

const (
	stateNew state = iota
	stateStarting
	stateRunning
	stateStopped
)

// New checks cfg (see Config.Validate) and returns an App that is not
// started yet. It opens nothing.
func New(cfg Config) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &App{cfg: cfg, log: cfg.Logger, startDone: make(chan struct{}), stopped: make(chan struct{})}, nil
}

// Run starts an App from cfg, serves until ctx ends, then stops it and
// returns nil. It returns an error only for what prevents starting (see
// Start); this is what cmd/presenced calls.
func Run(ctx context.Context, cfg Config) error {
	a, err := New(cfg)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return a.Stop(context.Background())
}

// Start loads the store into the tracker, binds the HTTP (and metrics)
// addresses and starts every service; it returns once they run, so that
// Addr answers at once. ctx bounds the start only (loading a PostgreSQL
// store); the services run until Stop. On an error (an address that
// cannot be bound, a store that cannot be opened or loaded) nothing is
// left running or open. Start may be called once, and not after Stop.
// It holds no lock while it works: Addr answers nil meanwhile, and a Stop
// waits for it to end.
func (a *App) Start(ctx context.Context) (err error) {
	a.mu.Lock()
	if a.state != stateNew {
		a.mu.Unlock()
		return errors.New("presenced: Start on an App that was started or stopped before")
	}
	a.state = stateStarting
	a.mu.Unlock()
	defer close(a.startDone)
	opts, log := a.cfg, a.log
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
			a.mu.Lock()
			a.state = stateStopped
			a.mu.Unlock()
			close(a.stopped)
		}
	}()

	tracker := presence.New(presence.Options{MaxUsers: opts.MaxUsers, MaxResources: opts.MaxResources, Domains: servedDomains(opts)})
	reg := newRegistry(tracker)
	var st store.Store = memstore.New()
	storeName := "memory"
	checks := map[string]func() error{}
	if IsPostgresURL(opts.Store) {
		// ctx bounds connecting and migrating (a signal ends a start that
		// waits for the database); the store's writer has a context of its
		// own and runs until Stop.
		pg, err := pgstore.Open(ctx, pgstore.Config{URL: opts.Store, Logger: log, Retention: opts.Retention, Registerer: reg})
		if err != nil {
			return fmt.Errorf("presenced: -store (PRESENCED_STORE): %w", err)
		}
		st, storeName, checks["store"] = pg, "postgres", pg.Health
	}
	closers = append(closers, func() { a.closeStore(st) })
	users, err := st.Load(ctx)
	if err != nil {
		return fmt.Errorf("presenced: loading the store: %w", err)
	}
	tracker.Restore(users)

	comp, err := component.New(component.Config{
		JID: jid.MustParse(opts.JID), Secret: opts.Secret, Addr: opts.Server,
		Tracker: tracker, Logger: log, ProbeWait: opts.ProbeWait, LinkGrace: opts.LinkGrace,
		PingInterval: opts.PingInterval, PingTimeout: opts.PingTimeout, SweepInterval: opts.SweepInterval, KeepAlive: opts.KeepAlive,
		Registerer: reg, Admins: opts.Admins, MaxStanza: opts.MaxStanza, UserRate: opts.UserRate,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", opts.HTTP)
	if err != nil {
		return fmt.Errorf("presenced: -http (PRESENCED_HTTP): %w", err)
	}
	closers = append(closers, func() { ln.Close() })
	checks["component"] = comp.Health
	bcfg := bridge.Config{Tracker: tracker, Logger: log, Checks: checks, AllowedOrigins: opts.AllowedOrigins, Registerer: reg,
		StreamWriters: opts.StreamWriters, StreamQueue: opts.StreamQueue, StreamFlushInterval: opts.StreamFlushInterval,
		RatePerSecond: opts.RatePerSecond, RateBurst: int(2 * opts.RatePerSecond)}
	if len(opts.JWTKeys) > 0 || opts.JWKS != "" {
		v, err := auth.NewVerifier(auth.Config{KeyFiles: opts.JWTKeys, JWKSFile: opts.JWKS, Issuer: opts.JWTIssuer, Audience: opts.JWTAudience})
		if err != nil {
			return fmt.Errorf("presenced: -jwt-keys/-jwks (PRESENCED_JWT_KEYS/PRESENCED_JWKS): %w", err)
		}
		bcfg.Authenticate = func(r *http.Request) (bridge.Access, error) {
			tok, ok := auth.TokenFromRequest(r)
			if !ok {
				return nil, errors.New("auth: no token: send Authorization: Bearer <JWT>")
			}
			return v.Verify(tok)
		}
	} else {
		log.Warn("presenced: no -jwt-keys or -jwks: the API is open to anyone who can reach " + opts.HTTP)
	}
	if pg, ok := st.(*pgstore.Store); ok {
		bcfg.History = func(ctx context.Context, jid string, since, until time.Time, limit int) ([]bridge.HistoryEntry, error) {
			rows, err := pg.History(ctx, jid, since, until, limit)
			out := make([]bridge.HistoryEntry, len(rows))
			for i, h := range rows {
				out[i] = bridge.HistoryEntry{Time: h.At, Resource: h.Resource, Event: h.Event, Show: h.Show,
					Status: h.Status, Priority: h.Priority, Reason: h.Reason}
			}
			return out, err
		}
	}
	web := &httpService{bridge: bridge.New(bcfg), ln: ln}
	writer := &store.Writer{Tracker: tracker, Store: st, Logger: log}

	services := []suture.Service{comp}
	var source sessions.Source
	var sourceName string
	if opts.MongooseIM.Endpoint != "" {
		mc := opts.MongooseIM
		source, sourceName = &mc, "mongooseim"
	}
	if opts.Ejabberd.URL != "" {
		ec := opts.Ejabberd
		source, sourceName = &ec, "ejabberd"
	}
	if source != nil {
		// Probed, then confirmed: MongooseIM and ejabberd list every
		// session, also of users who never gave the component their
		// presence (measured on both), so by default the list only says
		// whom to probe. Each new link triggers a pass, because the first
		// one at start usually comes before the handshake.
		r := &sessions.Reconciler{Name: sourceName, Source: source, Tracker: tracker, Domains: opts.ReconcileDomains,
			Interval: opts.ReconcileInterval, Trigger: comp.Linked(), Logger: log, Registerer: reg}
		if opts.ReconcileListed != "online" {
			r.Probe = comp.Probe
		}
		services = append(services, r)
	}
	services = append(services, web, timers{tracker}, writer)
	var mln net.Listener
	if opts.Metrics != "" {
		if mln, err = net.Listen("tcp", opts.Metrics); err != nil {
			return fmt.Errorf("presenced: -metrics (PRESENCED_METRICS): %w", err)
		}
		services = append(services, &metricsService{reg: reg, ln: mln})
	}
	log.Info("presenced: serving", "http", ln.Addr().String(), "component", opts.JID, "server", opts.Server, "store", storeName)
	// The bridge's hub and pings live until Stop, not until a Serve ends:
	// a supervisor that restarts the HTTP service finds them running.
	background, cancel := context.WithCancel(context.Background())
	web.bridge.Start(background)
	// Stopped in this order on shutdown: input first, the mirror, then the
	// metrics last.
	stop := supervise(log, services...)
	a.mu.Lock()
	a.tracker, a.store, a.ln, a.mln, a.stop, a.cancel = tracker, st, ln, mln, stop, cancel
	a.state = stateRunning
	a.mu.Unlock()
	return nil
}

// Stop stops the services in order (input first, the store writer after
// the bridge, the metrics last), each within 10s, then closes the store.
// It returns when all is stopped, or ctx's error if ctx ends first (the
// stop goes on in the background). A Stop during Start waits for Start to
// end first. Calling Stop again, or on an App that never started, waits
// for the same end and returns nil.
func (a *App) Stop(ctx context.Context) error {
	a.mu.Lock()
	if a.state == stateStarting {
		a.mu.Unlock()
		select {
		case <-a.startDone:
		case <-ctx.Done():
			return ctx.Err()
		}
		a.mu.Lock()
	}
	switch a.state {
	case stateNew:
		a.state = stateStopped
		close(a.stopped)
	case stateRunning:
		a.state = stateStopped
		stop, cancel, st := a.stop, a.cancel, a.store
		go func() {
			stop()
			cancel()
			a.closeStore(st)
			a.log.Info("presenced: stopped")
			close(a.stopped)
		}()
	}
	a.mu.Unlock()
	select {
	case <-a.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Addr returns the address the bridge listens on (with a port chosen by
// the system for ":0"), or nil before Start.
func (a *App) Addr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return nil
	}
	return a.ln.Addr()
}

// MetricsAddr returns the address of the metrics endpoint, or nil before
// Start or without Config.Metrics.
func (a *App) MetricsAddr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mln == nil {
		return nil
	}
	return a.mln.Addr()
}

// Tracker returns the tracking core, for tools and tests that run a whole
// presenced in-process and look at its state directly; nil before Start.
func (a *App) Tracker() *presence.Tracker {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tracker
}

func (a *App) closeStore(st store.Store) {
	if err := st.Close(); err != nil {
		a.log.Error("presenced: closing the store", "err", err)
	}
}

// supervise starts services under one supervisor, like an OTP one_for_one
// tree: a service that returns or panics is logged and restarted alone,
// with suture's backoff, while the others keep running. The function it
// returns stops the services one by one in the order given, each within
// 10s, and returns when the supervisor has ended.
func supervise(log *slog.Logger, services ...suture.Service) (stop func()) {
	sup := suture.New("presenced", suture.Spec{
		EventHook: func(e suture.Event) { log.Warn("presenced: supervisor: " + e.String()) },
	})
	tokens := make([]suture.ServiceToken, len(services))
	for i, s := range services {
		tokens[i] = sup.Add(s)
	}
	supCtx, stopSup := context.WithCancel(context.Background())
	supDone := sup.ServeBackground(supCtx)
	return func() {
		log.Info("presenced: stopping")
		for _, tok := range tokens {
			if err := sup.RemoveAndWait(tok, 10*time.Second); err != nil {
				log.Warn("presenced: a subsystem did not stop in time", "err", err)
			}
		}
		stopSup()
		<-supDone
	}
}

// httpService runs the bridge as a supervised service. The first run uses
// the listener bound at start-up (so a bad address fails Run at once);
// a restart binds the address again.
type httpService struct {
	bridge *bridge.Bridge
	ln     net.Listener
	addr   string
}

func (s *httpService) Serve(ctx context.Context) error {
	ln := s.ln
	s.ln = nil
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.addr); err != nil {
			return fmt.Errorf("presenced: http: %w", err)
		}
	}
	s.addr = ln.Addr().String()
	err := s.bridge.Serve(ctx, ln)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (s *httpService) String() string { return "http bridge" }

// timers runs the tracker's TTL expiry as a supervised service.
type timers struct{ t *presence.Tracker }

func (s timers) Serve(ctx context.Context) error { return s.t.RunTimers(ctx, time.Second) }

func (timers) String() string { return "timers" }

// IsPostgresURL reports whether a -store value names a PostgreSQL
// database (postgres:// or postgresql://).
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Claims are the bridge's Access, without an adapter.
var _ bridge.Access = (*auth.Claims)(nil)
