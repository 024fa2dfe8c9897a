package mongooseim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presenced/presenced/presence"
)

// DefaultInterval is the pause between two passes of a Reconciler whose
// Interval is zero.
const DefaultInterval = 5 * time.Minute

// Reconciler makes a tracker agree with MongooseIM's sessions, periodically:
// each pass takes a snapshot of each domain's sessions (ListSessions) and
// hands it to presence.Tracker.Reconcile, which takes ghosts offline
// (reason reconcile, or restart for restored resources nobody confirmed)
// and brings missing sessions online. Set the fields, then call Run once;
// do not change them afterwards.
type Reconciler struct {
	// Client reads the sessions. Required.
	Client *Client
	// Tracker is corrected. Required. Its clock dates the snapshots.
	Tracker *presence.Tracker
	// Domains are the XMPP domains to reconcile, each with its own
	// snapshot and Reconcile, so that one failing domain does not hold the
	// others back. Empty means one snapshot of every domain the server
	// hosts, reconciled against every domain of the tracker: only right
	// when the tracker follows this one server alone.
	Domains []string
	// Interval is the pause between the end of one pass and the start of
	// the next; zero means DefaultInterval. The first pass starts at once.
	Interval time.Duration
	// Logger receives what each pass changed and its errors; nil means
	// slog.Default().
	Logger *slog.Logger
	// Registerer, if set, receives the metrics:
	// presence_mongooseim_reconcile_total{outcome="ok"|"error"} (passes; a
	// pass with any failed domain is an error),
	// presence_mongooseim_reconcile_seconds (duration of a pass) and
	// presence_mongooseim_reconcile_changes_total{change="online"|"offline"}.
	// Registering twice (a restarted Run) reuses the collectors already
	// there. Nil means no metrics; the global registry is never used.
	Registerer prometheus.Registerer

	mu      sync.Mutex // one pass at a time
	once    sync.Once
	metrics *reconcileMetrics
}

// Result tells what one pass did.
type Result struct {
	// Sessions is the number of available sessions the snapshots listed.
	Sessions int
	// Online and Offline count the resources Reconcile brought online and
	// took offline.
	Online, Offline int
}

// Run reconciles at once, then every Interval, until ctx ends; then it
// returns ctx.Err(). A failed pass is logged and the next one comes after
// Interval as usual: an unreachable server costs one request per domain
// per Interval, never a tight loop. Run has the signature of a suture
// service's Serve; see also Serve.
func (r *Reconciler) Run(ctx context.Context) error {
	if r == nil || r.Client == nil || r.Tracker == nil {
		return errors.New("mongooseim: Reconciler needs a Client and a Tracker")
	}
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		// Errors are logged by Once; the loop goes on.
		_, _ = r.Once(ctx)
		t.Reset(interval)
	}
}

// Serve is Run, for supervisors that call services by that name.
func (r *Reconciler) Serve(ctx context.Context) error { return r.Run(ctx) }

// Once runs one pass: for each domain, it reads the tracker's clock, then
// lists the domain's sessions, then calls Reconcile with that instant (the
// snapshot is at least as recent as it). It logs what changed and any
// error, counts the metrics, and returns the totals and the errors of the
// domains that failed (the others were reconciled all the same).
func (r *Reconciler) Once(ctx context.Context) (Result, error) {
	if r == nil || r.Client == nil || r.Tracker == nil {
		return Result{}, errors.New("mongooseim: Reconciler needs a Client and a Tracker")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.once.Do(func() { r.metrics = newReconcileMetrics(r.Registerer) })
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}

	began := time.Now()
	var (
		total Result
		errs  []error
	)
	domains, all := r.Domains, len(r.Domains) == 0
	if all {
		domains = []string{""}
	}
	for _, d := range domains {
		var (
			res Result
			err error
		)
		if !all {
			var nd string
			if nd, err = normalizeDomain(d); err == nil {
				d = nd
			}
		}
		if err == nil {
			res, err = r.domain(ctx, d)
		}
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break // shutting down: not a failure of the server
			}
			log.Warn("mongooseim: reconcile failed, retrying at the next interval", "domain", d, "err", err)
			continue
		}
		total.Sessions += res.Sessions
		total.Online += res.Online
		total.Offline += res.Offline
		level := slog.LevelDebug
		if res.Online+res.Offline > 0 {
			level = slog.LevelInfo
		}
		log.Log(ctx, level, "mongooseim: reconciled", "domain", d,
			"sessions", res.Sessions, "online", res.Online, "offline", res.Offline)
	}
	err := errors.Join(errs...)
	if ctx.Err() == nil {
		r.metrics.observe(time.Since(began), total, err == nil)
	}
	return total, err
}

// domain reconciles one normalized domain ("" for all of them).
func (r *Reconciler) domain(ctx context.Context, domain string) (Result, error) {
	var scope []string
	if domain != "" {
		scope = []string{domain}
	}
	at := r.Tracker.Now() // before the request: the snapshot is no older
	sessions, err := r.Client.ListSessions(ctx, domain)
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		// Cancelled after the answer: do not act on it half-way through a
		// shutdown.
		return Result{}, fmt.Errorf("mongooseim: reconcile: %w", err)
	}
	online, offline := r.Tracker.Reconcile(at, scope, sessions)
	return Result{Sessions: len(sessions), Online: online, Offline: offline}, nil
}

type reconcileMetrics struct {
	passes  *prometheus.CounterVec
	seconds prometheus.Histogram
	changes *prometheus.CounterVec
}

func newReconcileMetrics(reg prometheus.Registerer) *reconcileMetrics {
	if reg == nil {
		return nil
	}
	m := &reconcileMetrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presence_mongooseim_reconcile_total",
			Help: "Reconciliation passes against MongooseIM's sessions, by outcome (ok, error: some domain failed).",
		}, []string{"outcome"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "presence_mongooseim_reconcile_seconds",
			Help:    "Duration of a reconciliation pass: the listSessions requests and the corrections.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 9), // 5 ms .. 5.5 min
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presence_mongooseim_reconcile_changes_total",
			Help: "Resources reconciliation brought online (sessions presenced missed) or took offline (ghosts).",
		}, []string{"change"}),
	}
	m.passes = register(reg, m.passes)
	m.seconds = register(reg, m.seconds)
	m.changes = register(reg, m.changes)
	// Export both outcomes from the start, so that rates work at once.
	m.passes.WithLabelValues("ok")
	m.passes.WithLabelValues("error")
	return m
}

// register registers c, or returns the collector already registered under
// its name; on any other failure it returns c unregistered (metrics are
// then lost, the reconciler still runs).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

func (m *reconcileMetrics) observe(d time.Duration, res Result, ok bool) {
	if m == nil {
		return
	}
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	m.passes.WithLabelValues(outcome).Inc()
	m.seconds.Observe(d.Seconds())
	m.changes.WithLabelValues("online").Add(float64(res.Online))
	m.changes.WithLabelValues("offline").Add(float64(res.Offline))
}
