package mongooseim

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presenced/presenced/component/sessions"
	"github.com/presenced/presenced/presence"
)

// DefaultInterval is the pause between two passes of a Reconciler whose
// Interval is zero.
const DefaultInterval = sessions.DefaultInterval

// The Client is the MongooseIM Source of the generic reconciler.
var _ sessions.Source = (*Client)(nil)

// Reconciler makes a tracker agree with MongooseIM's sessions, periodically:
// each pass takes a snapshot of each domain's sessions (ListSessions) and
// hands it to presence.Tracker.Reconcile, which takes ghosts offline
// (reason reconcile, or restart for restored resources nobody confirmed)
// and brings missing sessions online. It is sessions.Reconciler with this
// package's Client as the Source, the name "mongooseim" and no Probe (see
// package sessions for the policies). Set the fields, then call Run once;
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

	once sync.Once
	r    *sessions.Reconciler
}

// Result tells what one pass did (Probed stays zero: MongooseIM's
// reconciler brings missed sessions online without probing).
type Result = sessions.Result

var errMisconfigured = errors.New("mongooseim: Reconciler needs a Client and a Tracker")

func (r *Reconciler) generic() (*sessions.Reconciler, error) {
	if r == nil || r.Client == nil || r.Tracker == nil {
		return nil, errMisconfigured
	}
	r.once.Do(func() {
		r.r = &sessions.Reconciler{Name: "mongooseim", Source: r.Client, Tracker: r.Tracker, Domains: r.Domains,
			Interval: r.Interval, Logger: r.Logger, Registerer: r.Registerer}
	})
	return r.r, nil
}

// Run reconciles at once, then every Interval, until ctx ends; then it
// returns ctx.Err(). A failed pass is logged and the next one comes after
// Interval as usual: an unreachable server costs one request per domain
// per Interval, never a tight loop. Run has the signature of a suture
// service's Serve; see also Serve.
func (r *Reconciler) Run(ctx context.Context) error {
	g, err := r.generic()
	if err != nil {
		return err
	}
	return g.Run(ctx)
}

// Serve is Run, for supervisors that call services by that name.
func (r *Reconciler) Serve(ctx context.Context) error { return r.Run(ctx) }

// Once runs one pass: for each domain, it reads the tracker's clock, then
// lists the domain's sessions, then calls Reconcile with that instant (the
// snapshot is at least as recent as it). It logs what changed and any
// error, counts the metrics, and returns the totals and the errors of the
// domains that failed (the others were reconciled all the same).
func (r *Reconciler) Once(ctx context.Context) (Result, error) {
	g, err := r.generic()
	if err != nil {
		return Result{}, err
	}
	return g.Once(ctx)
}
