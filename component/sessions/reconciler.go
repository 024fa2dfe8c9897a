package sessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presenced/presenced/presence"
)

// DefaultInterval is the pause between two passes of a Reconciler whose
// Interval is zero.
const DefaultInterval = 5 * time.Minute

// Reconciler makes a tracker agree with a server's sessions, periodically:
// each pass takes a snapshot of each domain's sessions (Source) and
// corrects the tracker with presence.Tracker.Reconcile, which takes ghosts
// offline (reason reconcile, or restart for restored resources nobody
// confirmed). What happens to sessions the tracker does not know depends
// on Probe (see the package documentation). Set the fields, then call Run
// once; do not change them afterwards.
type Reconciler struct {
	// Name names the server's API in logs, errors and metrics, for example
	// "mongooseim" or "ejabberd": messages start with "Name: ", metrics are
	// presence_<Name>_reconcile_*. Empty means "sessions".
	Name string
	// Source lists the sessions. Required.
	Source Source
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
	// Trigger, if set, starts a pass (at once, or right after the running
	// one) each time it receives; the Interval then counts from that pass.
	// cmd/presenced sends on it after each handshake of the component. Nil
	// means passes come from Interval alone.
	Trigger <-chan struct{}
	// Probe, if set, is the policy for sessions the tracker does not know:
	// their users (bare JIDs, each once, sorted) are handed to Probe
	// instead of coming online from the list, and only a probe's answer
	// brings them online. It returns how many probes went out; an error
	// (such as the component's "not connected") is logged, not counted as
	// a failed pass: the next pass or Trigger probes again. Nil means
	// unknown sessions come online from the list, with the list's show,
	// status and priority. *component.Component's Probe method fits.
	Probe func(ctx context.Context, users []string) (int, error)
	// Logger receives what each pass changed and its errors; nil means
	// slog.Default().
	Logger *slog.Logger
	// Registerer, if set, receives the metrics:
	// presence_<Name>_reconcile_total{outcome="ok"|"error"} (passes; a
	// pass with any failed domain is an error),
	// presence_<Name>_reconcile_seconds (duration of a pass),
	// presence_<Name>_reconcile_changes_total{change="online"|"offline"}
	// and, with Probe, presence_<Name>_reconcile_probes_total (users
	// probed). Registering twice (a restarted Run) reuses the collectors
	// already there. Nil means no metrics; the global registry is never
	// used.
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
	// Probed counts the probes sent (with Probe) to users of sessions the
	// tracker did not know.
	Probed int
}

func (r *Reconciler) name() string {
	if r.Name == "" {
		return "sessions"
	}
	return r.Name
}

func (r *Reconciler) usable() error {
	if r == nil || r.Source == nil || r.Tracker == nil {
		name := "sessions"
		if r != nil {
			name = r.name()
		}
		return fmt.Errorf("%s: Reconciler needs a Source and a Tracker", name)
	}
	return nil
}

// Run reconciles at once, then every Interval and at every Trigger, until
// ctx ends; then it returns ctx.Err(). A failed pass is logged and the next
// one comes as usual: an unreachable server costs one request per domain
// per Interval (or Trigger), never a tight loop. Run has the signature of
// a suture service's Serve; see also Serve.
func (r *Reconciler) Run(ctx context.Context) error {
	if err := r.usable(); err != nil {
		return err
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
		case <-r.Trigger: // a nil channel never receives
			if !t.Stop() {
				select { // drain a fire that raced the trigger
				case <-t.C:
				default:
				}
			}
		}
		// Errors are logged by Once; the loop goes on.
		_, _ = r.Once(ctx)
		t.Reset(interval)
	}
}

// Serve is Run, for supervisors that call services by that name.
func (r *Reconciler) Serve(ctx context.Context) error { return r.Run(ctx) }

// String names the service for the supervisor's logs.
func (r *Reconciler) String() string { return r.name() + " reconciler" }

// Once runs one pass: for each domain, it reads the tracker's clock, then
// lists the domain's sessions, then corrects the tracker as of that
// instant (the snapshot is at least as recent as it) and, with Probe,
// probes the users of the sessions the tracker did not know. It logs what
// changed and any error, counts the metrics, and returns the totals and
// the errors of the domains that failed (the others were reconciled all
// the same). O(tracked users of the domains + sessions).
func (r *Reconciler) Once(ctx context.Context) (Result, error) {
	if err := r.usable(); err != nil {
		return Result{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.once.Do(func() { r.metrics = newReconcileMetrics(r.Registerer, r.name(), r.Probe != nil) })
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	name := r.name()

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
			if nd, err = NormalizeDomain(d); err == nil {
				d = nd
			} else {
				err = fmt.Errorf("%s: invalid domain %q", name, d)
			}
		}
		if err == nil {
			res, err = r.domain(ctx, log, d)
		}
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break // shutting down: not a failure of the server
			}
			log.Warn(name+": reconcile failed, retrying at the next interval", "domain", d, "err", err)
			continue
		}
		total.Sessions += res.Sessions
		total.Online += res.Online
		total.Offline += res.Offline
		total.Probed += res.Probed
		level := slog.LevelDebug
		if res.Online+res.Offline+res.Probed > 0 {
			level = slog.LevelInfo
		}
		attrs := []any{"domain", d, "sessions", res.Sessions, "online", res.Online, "offline", res.Offline}
		if r.Probe != nil {
			attrs = append(attrs, "probed", res.Probed)
		}
		log.Log(ctx, level, name+": reconciled", attrs...)
	}
	err := errors.Join(errs...)
	if ctx.Err() == nil {
		r.metrics.observe(time.Since(began), total, err == nil)
	}
	return total, err
}

// domain reconciles one normalized domain ("" for all of them).
func (r *Reconciler) domain(ctx context.Context, log *slog.Logger, domain string) (Result, error) {
	var scope []string
	if domain != "" {
		scope = []string{domain}
	}
	at := r.Tracker.Now() // before the request: the snapshot is no older
	list, err := r.Source.ListSessions(ctx, domain)
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		// Cancelled after the answer: do not act on it half-way through a
		// shutdown.
		return Result{}, fmt.Errorf("%s: reconcile: %w", r.name(), err)
	}
	res := Result{Sessions: len(list)}
	if r.Probe == nil {
		res.Online, res.Offline = r.Tracker.Reconcile(at, scope, list)
		return res, nil
	}
	known, unknown := r.split(list)
	res.Online, res.Offline = r.Tracker.Reconcile(at, scope, known)
	if len(unknown) == 0 {
		return res, nil
	}
	sent, err := r.Probe(ctx, unknown)
	res.Probed = sent
	if err != nil && ctx.Err() == nil {
		log.Info(r.name()+": sessions not known here could not all be probed; the next pass or link probes them",
			"domain", domain, "users", len(unknown), "probed", sent, "err", err)
	}
	return res, nil
}

// split divides a snapshot into the sessions the tracker knows (an online
// resource of that name) and the users, sorted and each once, of the
// others.
func (r *Reconciler) split(list []presence.Session) (known []presence.Session, unknown []string) {
	users := make(map[string]presence.User)
	probe := make(map[string]bool)
	for _, s := range list {
		u, seen := users[s.User]
		if !seen {
			u, _ = r.Tracker.Get(s.User)
			users[s.User] = u
		}
		if slices.ContainsFunc(u.Resources, func(res presence.Resource) bool { return res.Name == s.Resource }) {
			known = append(known, s)
		} else if !probe[s.User] {
			probe[s.User] = true
			unknown = append(unknown, s.User)
		}
	}
	slices.Sort(unknown)
	return known, unknown
}

type reconcileMetrics struct {
	passes  *prometheus.CounterVec
	seconds prometheus.Histogram
	changes *prometheus.CounterVec
	probes  prometheus.Counter // nil without Probe
}

func newReconcileMetrics(reg prometheus.Registerer, name string, probing bool) *reconcileMetrics {
	if reg == nil {
		return nil
	}
	prefix := "presence_" + name + "_reconcile"
	m := &reconcileMetrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_total",
			Help: "Reconciliation passes against " + name + "'s sessions, by outcome (ok, error: some domain failed).",
		}, []string{"outcome"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    prefix + "_seconds",
			Help:    "Duration of a reconciliation pass against " + name + ": the session list requests and the corrections.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 9), // 5 ms .. 5.5 min
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_changes_total",
			Help: "Resources reconciliation against " + name + " brought online (sessions presenced missed) or took offline (ghosts).",
		}, []string{"change"}),
	}
	m.passes = register(reg, m.passes)
	m.seconds = register(reg, m.seconds)
	m.changes = register(reg, m.changes)
	if probing {
		m.probes = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: prefix + "_probes_total",
			Help: "Users of sessions " + name + " listed and presenced did not know, probed by reconciliation.",
		}))
	}
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
	if m.probes != nil {
		m.probes.Add(float64(res.Probed))
	}
}
