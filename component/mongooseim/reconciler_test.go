package mongooseim

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presenced/presenced/component/sessions"
	"github.com/presenced/presenced/internal/poll"
	"github.com/presenced/presenced/presence"
)

// fakeClock is a presence.Clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func online(tr *presence.Tracker, user, resource string, show presence.Show, status string) {
	tr.Apply(presence.Update{User: user, Resource: resource, Available: true, Show: show, Status: status})
}

// resources returns a user's online resources as "name/show/status/priority".
func resources(tr *presence.Tracker, user string) []string {
	u, _ := tr.Get(user)
	var out []string
	for _, r := range u.Resources {
		out = append(out, r.Name+"/"+string(r.Show)+"/"+r.Status+"/"+strconv.Itoa(r.Priority))
	}
	return out
}

func quietLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestReconcilerOnce(t *testing.T) {
	f := newFake(t)
	clock := newClock()
	tr := presence.New(presence.Options{Clock: clock})
	online(tr, "alice@example.com", "ghost", "", "")                   // gone from the server
	online(tr, "dave@example.com", "desk", presence.ShowAway, "lunch") // still there
	online(tr, "carol@elsewhere.net", "x", "", "")                     // a domain not reconciled
	clock.Advance(time.Minute)
	f.setSessions(
		fakeSession{"bob@example.com/phone", prio(3)}, // missed by presenced
		fakeSession{"dave@example.com/desk", prio(0)}, // known: keeps away/lunch
		fakeSession{"erin@example.com/new", nil},      // connected, not available
		fakeSession{"frank@other.org/tab", prio(1)},   // second domain
		fakeSession{"carol@elsewhere.net/y", prio(1)}, // not in Domains: ignored
	)
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	r := &sessions.Reconciler{Name: "mongooseim", Source: f.client(), Tracker: tr, Domains: []string{"Example.COM", "other.org"},
		Logger: quietLogger(&logs), Registerer: reg}
	res, err := r.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (sessions.Result{Sessions: 3, Online: 2, Offline: 1}); res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	checks := map[string][]string{
		"alice@example.com":   nil,
		"bob@example.com":     {"phone///3"},
		"dave@example.com":    {"desk/away/lunch/0"},
		"erin@example.com":    nil,
		"frank@other.org":     {"tab///1"},
		"carol@elsewhere.net": {"x///0"},
	}
	for u, want := range checks {
		if got := resources(tr, u); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: resources %v, want %v", u, got, want)
		}
	}
	if u, _ := tr.Get("bob@example.com"); !u.Since.Equal(clock.Now()) {
		t.Errorf("bob since %v, want the snapshot's instant %v", u.Since, clock.Now())
	}
	if !strings.Contains(logs.String(), `msg="mongooseim: reconciled" domain=example.com sessions=2 online=1 offline=1`) {
		t.Errorf("log:\n%s", logs.String())
	}
	if got := counter(t, reg, "presence_mongooseim_reconcile_total", "outcome", "ok"); got != 1 {
		t.Errorf("ok passes %v", got)
	}
	if got := counter(t, reg, "presence_mongooseim_reconcile_changes_total", "change", "offline"); got != 1 {
		t.Errorf("offline changes %v", got)
	}
	if got := histogramCount(t, reg, "presence_mongooseim_reconcile_seconds"); got != 1 {
		t.Errorf("histogram count %v", got)
	}

	// A second pass changes nothing.
	res, err = r.Once(context.Background())
	if err != nil || res != (sessions.Result{Sessions: 3}) {
		t.Errorf("second pass: %+v, %v", res, err)
	}
}

// TestReconcilerSnapshotInstant: a report that arrives while the snapshot is
// being taken is newer than the snapshot, so Reconcile must keep it; that
// holds only if the instant is read before the request.
func TestReconcilerSnapshotInstant(t *testing.T) {
	f := newFake(t)
	clock := newClock()
	tr := presence.New(presence.Options{Clock: clock})
	f.setSessions(fakeSession{"bob@example.com/phone", prio(0)})
	f.onListSessions = func(string) {
		clock.Advance(time.Second)
		online(tr, "alice@example.com", "just-now", "", "") // not in the snapshot
	}
	r := &sessions.Reconciler{Name: "mongooseim", Source: f.client(), Tracker: tr, Domains: []string{"example.com"}, Logger: quietLogger(new(bytes.Buffer))}
	res, err := r.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Offline != 0 || len(resources(tr, "alice@example.com")) != 1 {
		t.Errorf("a resource confirmed during the snapshot went offline: %+v", res)
	}
	f.onListSessions = nil
	clock.Advance(time.Second)
	if res, _ := r.Once(context.Background()); res.Offline != 1 {
		t.Errorf("next pass: %+v, want the resource offline", res)
	}
}

func TestReconcilerErrors(t *testing.T) {
	f := newFake(t)
	clock := newClock()
	tr := presence.New(presence.Options{Clock: clock})
	online(tr, "alice@other.org", "ghost", "", "")
	online(tr, "bob@example.com", "kept", "", "")
	f.domains = map[string]bool{"other.org": true} // example.com: domain_not_found
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	r := &sessions.Reconciler{Name: "mongooseim", Source: f.client(), Tracker: tr, Domains: []string{"example.com", "other.org", "bad@domain"},
		Logger: quietLogger(&logs), Registerer: reg}
	res, err := r.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "domain_not_found") || !strings.Contains(err.Error(), `invalid domain "bad@domain"`) {
		t.Fatalf("error %v", err)
	}
	if res.Offline != 1 || len(resources(tr, "bob@example.com")) != 1 {
		t.Errorf("result %+v: other.org must be reconciled, example.com left alone", res)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "domain_not_found") {
		t.Errorf("log:\n%s", logs.String())
	}
	if got := counter(t, reg, "presence_mongooseim_reconcile_total", "outcome", "error"); got != 1 {
		t.Errorf("error passes %v", got)
	}
}

func TestReconcilerAllDomains(t *testing.T) {
	f := newFake(t)
	tr := presence.New(presence.Options{Clock: newClock()})
	online(tr, "carol@elsewhere.net", "ghost", "", "")
	f.setSessions(fakeSession{"a@example.com/x", prio(0)}, fakeSession{"b@other.org/y", prio(0)})
	r := &sessions.Reconciler{Name: "mongooseim", Source: f.client(), Tracker: tr, Logger: quietLogger(new(bytes.Buffer))}
	res, err := r.Once(context.Background())
	if err != nil || res != (sessions.Result{Sessions: 2, Online: 2, Offline: 1}) {
		t.Fatalf("%+v, %v", res, err)
	}
	_, queries := f.stats()
	if len(queries) != 1 || !strings.Contains(queries[0], "ListAllSessions") {
		t.Errorf("queries %q", queries)
	}
}

func TestReconcilerRun(t *testing.T) {
	f := newFake(t)
	clock := newClock()
	tr := presence.New(presence.Options{Clock: clock})
	online(tr, "alice@example.com", "ghost", "", "")
	clock.Advance(time.Second)
	f.setSessions(fakeSession{"bob@example.com/phone", prio(0)})
	reg := prometheus.NewRegistry()
	r := &sessions.Reconciler{Name: "mongooseim", Source: f.client(), Tracker: tr, Domains: []string{"example.com"},
		Interval: 10 * time.Millisecond, Logger: quietLogger(new(bytes.Buffer)), Registerer: reg}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	poll.True(t, "3 passes", 5*time.Second, func() bool {
		return counter(t, reg, "presence_mongooseim_reconcile_total", "outcome", "ok") >= 3
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	if len(resources(tr, "alice@example.com")) != 0 || len(resources(tr, "bob@example.com")) != 1 {
		t.Error("ghost kept or session missing")
	}
	// A restarted Run registers its metrics again without panicking.
	r2 := &sessions.Reconciler{Name: "mongooseim", Source: f.client(), Tracker: tr, Domains: []string{"example.com"},
		Logger: quietLogger(new(bytes.Buffer)), Registerer: reg}
	if _, err := r2.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, reg, "presence_mongooseim_reconcile_total", "outcome", "ok"); got < 4 {
		t.Errorf("ok passes %v after a second reconciler", got)
	}
}

// TestReconcilerRunFailing: a server that always fails costs one request
// per domain per Interval, never a tight loop.
func TestReconcilerRunFailing(t *testing.T) {
	f := newFake(t)
	f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
		writeJSON(w, 500, errBody("internal_server_error", "GraphQL Internal Server Error"))
		return true
	}
	tr := presence.New(presence.Options{})
	const interval = 20 * time.Millisecond
	r := &sessions.Reconciler{Name: "mongooseim", Source: f.client(), Tracker: tr, Domains: []string{"example.com"},
		Interval: interval, Logger: quietLogger(new(bytes.Buffer))}
	ctx, cancel := context.WithTimeout(context.Background(), 10*interval)
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run returned %v", err)
	}
	requests, _ := f.stats()
	if requests < 1 || requests > 12 {
		t.Errorf("%d requests in 10 intervals", requests)
	}
}

// counter returns the value of the counter name{label=value} in reg, 0 if
// absent.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// histogramCount returns the sample count of the histogram name in reg.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}
