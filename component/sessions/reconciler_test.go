package sessions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/presenced/presenced/internal/poll"
	"github.com/presenced/presenced/presence"
)

// The server side of these tests is a list in memory: what a Source
// returns is the input here, the server packages test their own against
// real servers.

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// list is a Source answering with its sessions of the asked domain.
type list struct {
	mu       sync.Mutex
	sessions []presence.Session
	err      error
	calls    int
	during   func() // runs while "the request" is in flight
}

func (l *list) ListSessions(_ context.Context, domain string) ([]presence.Session, error) {
	l.mu.Lock()
	l.calls++
	during := l.during
	l.mu.Unlock()
	if during != nil {
		during()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	var out []presence.Session
	for _, s := range l.sessions {
		if domain == "" || strings.HasSuffix(s.User, "@"+domain) {
			out = append(out, s)
		}
	}
	return out, nil
}

// prober records what it was asked to probe.
type prober struct {
	mu    sync.Mutex
	asked [][]string
	err   error
}

func (p *prober) probe(_ context.Context, users []string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, slices.Clone(users))
	if p.err != nil {
		return 0, p.err
	}
	return len(users), nil
}

func online(tr *presence.Tracker, user, resource string) {
	tr.Apply(presence.Update{User: user, Resource: resource, Available: true, Show: presence.ShowAway, Status: "own"})
}

// state returns the online resources of every user, sorted, as
// "user/resource show status".
func state(tr *presence.Tracker) []string {
	us, _ := tr.Snapshot()
	var out []string
	for _, u := range us {
		for _, r := range u.Resources {
			out = append(out, u.JID+"/"+r.Name+" "+string(r.Show)+" "+r.Status)
		}
	}
	slices.Sort(out)
	return out
}

func TestReconcilerPolicies(t *testing.T) {
	snapshot := []presence.Session{
		{User: "alice@example.com", Resource: "laptop", Show: presence.ShowDND, Status: "listed"}, // known
		{User: "alice@example.com", Resource: "phone"},                                            // unknown resource of a known user
		{User: "bob@example.com", Resource: "desk", Show: presence.ShowXA, Status: "listed"},      // unknown user
		{User: "bob@example.com", Resource: "tablet"},                                             // same user again
		{User: "carol@other.org", Resource: "x"},                                                  // out of Domains
	}
	for _, tc := range []struct {
		name      string
		probe     bool
		want      []string
		wantRes   Result
		wantProbe [][]string
	}{
		{
			name: "bring online from the list",
			want: []string{
				"alice@example.com/laptop away own", "alice@example.com/phone  ",
				"bob@example.com/desk xa listed", "bob@example.com/tablet  ", "dave@other.org/kept away own",
			},
			wantRes: Result{Sessions: 4, Online: 3, Offline: 1},
		},
		{
			name:      "probe, then confirm",
			probe:     true,
			want:      []string{"alice@example.com/laptop away own", "dave@other.org/kept away own"},
			wantRes:   Result{Sessions: 4, Offline: 1, Probed: 2},
			wantProbe: [][]string{{"alice@example.com", "bob@example.com"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
			tr := presence.New(presence.Options{Clock: clock})
			online(tr, "alice@example.com", "laptop")
			online(tr, "erin@example.com", "ghost") // not listed: goes offline
			online(tr, "dave@other.org", "kept")    // not reconciled
			clock.advance(time.Minute)
			p := &prober{}
			reg := prometheus.NewRegistry()
			var logs bytes.Buffer
			r := &Reconciler{Name: "test", Source: &list{sessions: snapshot}, Tracker: tr, Domains: []string{"Example.COM"},
				Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			if tc.probe {
				r.Probe = p.probe
			}
			res, err := r.Once(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res != tc.wantRes {
				t.Errorf("result %+v, want %+v", res, tc.wantRes)
			}
			if got := state(tr); !slices.Equal(got, tc.want) {
				t.Errorf("state\n%q\nwant\n%q", got, tc.want)
			}
			if !slices.EqualFunc(p.asked, tc.wantProbe, slices.Equal) {
				t.Errorf("probed %q, want %q", p.asked, tc.wantProbe)
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "presence_test_reconcile_total")); got != 1 {
				t.Errorf("passes %v", got)
			}
			if !strings.Contains(logs.String(), `msg="test: reconciled" domain=example.com`) {
				t.Errorf("log:\n%s", logs.String())
			}
		})
	}
}

// mustCounter returns the summed value of a counter family as a collector.
func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() == name {
			found = true
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	if !found {
		t.Fatalf("no metric %s", name)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sum"})
	c.Add(sum)
	return c
}

// TestReconcilerProbeFails: a probe that cannot go out (no link) is logged
// and leaves the pass a success; nothing comes online from the list.
func TestReconcilerProbeFails(t *testing.T) {
	tr := presence.New(presence.Options{})
	p := &prober{err: errors.New("component: not connected")}
	var logs bytes.Buffer
	r := &Reconciler{Name: "ejabberd", Source: &list{sessions: []presence.Session{{User: "bob@example.com", Resource: "desk"}}},
		Tracker: tr, Probe: p.probe, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	res, err := r.Once(context.Background())
	if err != nil || res != (Result{Sessions: 1}) {
		t.Fatalf("%+v, %v", res, err)
	}
	if len(state(tr)) != 0 || !strings.Contains(logs.String(), "not connected") {
		t.Errorf("state %q, log:\n%s", state(tr), logs.String())
	}
}

// TestReconcilerGoneDuringSnapshot: a known resource that goes offline
// while the list is requested is not brought back by the probe policy's
// Reconcile of known sessions.
func TestReconcilerGoneDuringSnapshot(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	tr := presence.New(presence.Options{Clock: clock})
	online(tr, "alice@example.com", "laptop")
	clock.advance(time.Minute)
	l := &list{sessions: []presence.Session{{User: "alice@example.com", Resource: "laptop"}}}
	p := &prober{}
	r := &Reconciler{Source: l, Tracker: tr, Probe: p.probe, Logger: slog.New(slog.DiscardHandler)}
	l.during = func() {
		clock.advance(time.Second)
		tr.Apply(presence.Update{User: "alice@example.com", Resource: "laptop"}) // unavailable
	}
	res, err := r.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The resource was gone before the split: it is probed, not revived.
	if len(state(tr)) != 0 || res.Online != 0 || len(p.asked) != 1 {
		t.Errorf("state %q, result %+v, probed %q", state(tr), res, p.asked)
	}
}

func TestReconcilerErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		domains []string
		err     error
		want    string
	}{
		{"server error", []string{"example.com"}, errors.New("ejabberd: connected_users_info: HTTP 403"), "HTTP 403"},
		{"bad domain", []string{"bad@domain"}, nil, `test: invalid domain "bad@domain"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := presence.New(presence.Options{})
			online(tr, "alice@example.com", "kept")
			reg := prometheus.NewRegistry()
			r := &Reconciler{Name: "test", Source: &list{err: tc.err}, Tracker: tr, Domains: tc.domains,
				Registerer: reg, Logger: slog.New(slog.DiscardHandler)}
			_, err := r.Once(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if len(state(tr)) != 1 {
				t.Error("a failed pass changed the state")
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "presence_test_reconcile_total")); got != 1 {
				t.Errorf("passes %v", got)
			}
		})
	}
}

// TestReconcilerTrigger: a trigger starts a pass long before the interval.
func TestReconcilerTrigger(t *testing.T) {
	l := &list{}
	trigger := make(chan struct{}, 1)
	r := &Reconciler{Source: l, Tracker: presence.New(presence.Options{}), Interval: time.Hour, Trigger: trigger,
		Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	calls := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.calls
	}
	wait := func(n int) {
		t.Helper()
		poll.True(t, fmt.Sprintf("%d passes", n), 5*time.Second, func() bool { return calls() >= n })
	}
	wait(1) // the first pass, at once
	trigger <- struct{}{}
	wait(2)
	trigger <- struct{}{}
	wait(3)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}

func TestReconcilerMisconfigured(t *testing.T) {
	for _, r := range []*Reconciler{nil, {}, {Source: &list{}}, {Tracker: presence.New(presence.Options{})}} {
		if err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "needs a Source and a Tracker") {
			t.Errorf("Run(%+v): %v", r, err)
		}
		if _, err := r.Once(context.Background()); err == nil {
			t.Errorf("Once(%+v): no error", r)
		}
	}
}

func TestNormalizeDomain(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"Example.COM", "example.com", ""},
		{"", "", "invalid domain"},
		{"a@b", "", "invalid domain"},
		{"b/c", "", "invalid domain"},
	} {
		got, err := NormalizeDomain(tc.in)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("NormalizeDomain(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestSplitJID(t *testing.T) {
	for _, tc := range []struct {
		in, bare, res string
		ok            bool
	}{
		{"Alice@Example.com/Laptop", "alice@example.com", "Laptop", true},
		{"alice@example.com", "", "", false},
		{"example.com/x", "", "", false},
		{"@@", "", "", false},
	} {
		b, r, ok := SplitJID(tc.in)
		if b != tc.bare || r != tc.res || ok != tc.ok {
			t.Errorf("SplitJID(%q) = %q, %q, %v", tc.in, b, r, ok)
		}
	}
}
