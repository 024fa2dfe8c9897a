package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presenced/presenced/bridge/dashboard"

	"github.com/presenced/presenced/presence"
)

// Config configures a Bridge.
type Config struct {
	// Tracker is the source of presence. Required.
	Tracker *presence.Tracker
	// Logger receives connection errors; nil means slog.Default().
	Logger *slog.Logger
	// PingInterval is how often the server pings a WebSocket client; a client
	// silent for two intervals is dropped. Zero means 30s.
	PingInterval time.Duration
	// WriteTimeout bounds each WebSocket write. Zero means 10s.
	WriteTimeout time.Duration
	// Authenticate, if set, is asked for every request except the
	// dashboard's assets and /v1/health: it returns what the request may
	// see, or an error (answered 401). Nil means no authentication: every
	// client sees everything (for loopback and demos only).
	Authenticate func(r *http.Request) (Access, error)
	// AllowedOrigins lists the Origin values accepted on WebSocket
	// upgrades, such as "https://dash.example.org"; "*" accepts any. Empty
	// means same origin only (or no Origin header, as non-browser clients
	// send).
	AllowedOrigins []string
	// StreamQueue bounds the changes waiting for one WebSocket client; when
	// full the client is closed with code 4008. Zero means 2048: two
	// seconds at 1,000 changes a second, so that a short stall of the
	// machine does not close every client (the queue holds pointers to
	// changes shared by all clients, and is freed when empty).
	StreamQueue int
	// StreamWriters is how many goroutines write changes to WebSocket
	// clients, without ever waiting for one (pool.go). Zero means half
	// the CPUs (GOMAXPROCS), at least one: on 2 cores shared with the
	// clients, one writer gave the lower latency (docs/benchmarks.md).
	StreamWriters int
	// StreamFlushInterval is the least time between two flushes of changes
	// to the WebSocket clients: what comes meanwhile goes out as one batch
	// ("changes" messages). It bounds writes, the main cost of a delivery,
	// to one per interval per client, at the price of up to that much
	// latency; a change after a quiet spell goes out at once. Under a heavy
	// fan-out (over 250,000 changes × clients a second) the interval
	// stretches in proportion, up to four times this (hub.go). Zero means
	// 25ms; negative means none (a flush per read from the tracker).
	StreamFlushInterval time.Duration
	// ResumeWindow is how many recent changes the bridge keeps so that a
	// reconnecting client can resume without a snapshot. Zero means 16384.
	ResumeWindow int
	// RatePerSecond and RateBurst limit REST requests and WebSocket
	// connects per token subject, or per client IP without a token; zero
	// means 20 per second with bursts of 40. Over the limit: 429 with
	// Retry-After.
	RatePerSecond float64
	RateBurst     int
	// History, if set, serves GET /v1/presence/{jid}/history (the
	// PostgreSQL store provides it); nil answers 501.
	History func(ctx context.Context, jid string, since, until time.Time, limit int) ([]HistoryEntry, error)
	// Registerer receives the bridge's metrics (requests, latency,
	// WebSocket connections); nil means none.
	Registerer prometheus.Registerer
	// Checks are reported by GET /v1/health: each returns nil when its
	// subsystem is fine, or what is wrong. Nil means no checks.
	Checks map[string]func() error
}

// Bridge is the HTTP handler of the REST and WebSocket API.
type Bridge struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
	hub *hub
	// snapshots shares the full feed's snapshot among the connects of a
	// moment (snapshot.go).
	snapshots *snapshotCache
	hubOnce   sync.Once
	limits    *limiter
	metrics   *metrics
	started   time.Time
	routes    []string
	upgrader  websocket.Upgrader
}

// New returns a Bridge. It panics if cfg.Tracker is nil, a programming
// error.
func New(cfg Config) *Bridge {
	if cfg.Tracker == nil {
		panic("bridge: Config.Tracker is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 30 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.StreamFlushInterval == 0 {
		cfg.StreamFlushInterval = 25 * time.Millisecond
	} else if cfg.StreamFlushInterval < 0 {
		cfg.StreamFlushInterval = 0
	}
	if cfg.StreamWriters <= 0 {
		cfg.StreamWriters = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if cfg.StreamQueue <= 0 {
		cfg.StreamQueue = 2048
	}
	if cfg.ResumeWindow <= 0 {
		cfg.ResumeWindow = 16384
	}
	if cfg.RatePerSecond <= 0 {
		cfg.RatePerSecond = 20
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 40
	}
	b := &Bridge{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), limits: newLimiter(cfg.RatePerSecond, cfg.RateBurst),
		hub: newHub(cfg.Tracker, cfg.Logger, cfg.ResumeWindow, cfg.StreamWriters, cfg.StreamFlushInterval)}
	b.snapshots = newSnapshotCache(cfg.Tracker)
	b.started = time.Now()
	b.metrics = newMetrics(cfg.Registerer, b)
	b.upgrader = websocket.Upgrader{ReadBufferSize: 512, WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{},
		CheckOrigin: b.checkOrigin, Error: upgradeError}
	b.handle("/v1/presence", get(b.guard(b.list)))
	b.handle("/v1/presence/{jid}", get(b.guard(b.user)))
	b.handle("/v1/presence/{jid}/history", get(b.guard(b.history)))
	b.handle("/v1/counts", get(b.guard(b.counts)))
	b.handle("/v1/webpresence", methods(b.guard(b.webPresence), http.MethodPost))
	b.handle("/v1/webpresence/{resource}", methods(b.guard(b.webPresence), http.MethodDelete))
	b.handle("/v1/stream", get(b.stream))
	b.handle("/v1/health", get(b.health))
	b.handle("/healthz", get(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	}))
	b.handle("/readyz", get(b.ready))
	b.handle("/admin/v1/stats", get(b.guard(b.stats)))
	b.handle("/v1/openapi.yaml", get(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openAPI)
	}))
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no route for "+r.URL.Path)
	}
	b.mux.HandleFunc("/v1/", notFound)
	b.mux.HandleFunc("/admin/", notFound)
	// The live dashboard: static assets, open like /v1/health (the page
	// asks for a token and sends it with every API call).
	b.mux.Handle("/", dashboard.Handler())
	return b
}

// handle registers an API route and remembers its pattern (the test that
// checks each is in openapi.yaml reads them).
func (b *Bridge) handle(pattern string, h http.Handler) {
	b.mux.Handle(pattern, b.metrics.instrument(pattern, h))
	b.routes = append(b.routes, pattern)
}

// ServeHTTP implements http.Handler.
func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.mux.ServeHTTP(w, r) }

// Serve serves HTTP on ln until ctx ends, then shuts down: it stops
// accepting, closes WebSocket streams and waits up to 5s for requests in
// flight. It returns nil after a shutdown caused by ctx, and the listener's
// error otherwise; ln is closed in both cases.
func (b *Bridge) Serve(ctx context.Context, ln net.Listener) error {
	// Requests and WebSocket streams live in a context that shutdown ends:
	// http.Server.Shutdown does not touch hijacked connections.
	base, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	srv := &http.Server{
		Handler:           b,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	// The hub outlives this Serve: a supervisor that restarts Serve after a
	// listener failure finds it running, with its resume window intact.
	b.startHub(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	endRequests()
	b.closeAll()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

// startHub starts the hub once; it runs until ctx ends. A stream request
// on a Bridge used as a plain http.Handler, without Serve or Start, starts
// it for the life of the process.
func (b *Bridge) startHub(ctx context.Context) {
	b.hubOnce.Do(func() {
		b.hub.start(ctx)
		go b.pingAll(ctx)
	})
}

// Start starts the bridge's background work (the hub that fans changes out
// to WebSocket clients) until ctx ends. Serve calls it; call it yourself
// when mounting the Bridge as a plain http.Handler.
func (b *Bridge) Start(ctx context.Context) { b.startHub(ctx) }

// checkOrigin accepts WebSocket upgrades without an Origin (non-browser
// clients), from the same host, or from a configured origin.
func (b *Bridge) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range b.cfg.AllowedOrigins {
		if o == "*" || o == origin {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// upgradeError answers a refused WebSocket upgrade in JSON, like every
// other error: 403 forbidden for an Origin not allowed, bad_upgrade for a
// request that is not a WebSocket handshake (gorilla's status: 400, 405
// or 426).
func upgradeError(w http.ResponseWriter, _ *http.Request, status int, reason error) {
	if status == http.StatusForbidden {
		writeError(w, status, "forbidden", "the Origin is not allowed (-allowed-origins): "+reason.Error())
		return
	}
	writeError(w, status, "bad_upgrade", reason.Error())
}

// authenticate runs Config.Authenticate; on failure it answers 401 and
// returns false.
func (b *Bridge) authenticate(w http.ResponseWriter, r *http.Request) (Access, bool) {
	if b.cfg.Authenticate == nil {
		return nil, true
	}
	a, err := b.cfg.Authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="presenced"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", err.Error())
		return nil, false
	}
	return a, true
}

// get allows GET (and HEAD) only, and answers anything else with a JSON 405.
func get(h http.HandlerFunc) http.Handler { return methods(h, http.MethodGet, http.MethodHead) }

// methods allows the given methods only, and answers anything else with a
// JSON 405 and an Allow header.
func methods(h http.HandlerFunc, allowed ...string) http.Handler {
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(allowed, r.Method) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		h(w, r)
	})
}

// health serves GET /v1/health: "ok" when every check passes, "degraded"
// otherwise, with each check's result. It answers 200 either way: a
// degraded presenced still serves presence (from memory).
func (b *Bridge) health(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}{Status: "ok", Checks: map[string]string{}}
	for name, check := range b.cfg.Checks {
		if err := check(); err != nil {
			out.Status, out.Checks[name] = "degraded", err.Error()
		} else {
			out.Checks[name] = "ok"
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// ready serves GET /readyz: 200 when every check passes (the XMPP link is
// up, the store is writable), else 503 with the reasons.
func (b *Bridge) ready(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Ready   bool              `json:"ready"`
		Reasons map[string]string `json:"reasons,omitempty"`
	}{Ready: true}
	for name, check := range b.cfg.Checks {
		if err := check(); err != nil {
			if out.Reasons == nil {
				out.Reasons = map[string]string{}
			}
			out.Ready, out.Reasons[name] = false, err.Error()
		}
	}
	code := http.StatusOK
	if !out.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, out)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, errorJSON{Error: errorBody{Code: kind, Message: msg}})
}

// isClosed reports errors that only say the peer or the server went away.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
