package presence

import (
	"testing"
	"time"
)

// answer is the server's answer to a probe for one resource.
func answer(user, res string, show Show) Update {
	u := on(user, res, show, "", 0)
	u.Answer = true
	return u
}

// TestLiveness covers the two kinds of confirmation: the client's own word
// keeps a resource through a ping, the server's (Update.Answer, Reconcile)
// only through a probe round.
func TestLiveness(t *testing.T) {
	const a = "alice@example.org"
	const interval = time.Minute
	tests := []struct {
		name string
		// run gets a tracker where a/frozen and a/live came online a minute
		// ago, and the time their ping was sent; it returns whether a/frozen
		// should still be online.
		run  func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool
		want bool
	}{
		{"no answer: offline", func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool {
			return !tr.ExpireResource(a, "frozen", pinged, ReasonTimeout)
		}, false},
		{"a pong keeps it", func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool {
			tr.Confirm(a, "frozen")
			return !tr.ExpireResource(a, "frozen", pinged, ReasonTimeout)
		}, true},
		{"its own presence keeps it", func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool {
			tr.Apply(on(a, "frozen", ShowNone, "", 0))
			return !tr.ExpireResource(a, "frozen", pinged, ReasonTimeout)
		}, true},
		{"the server's answer to a probe does not", func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool {
			tr.Apply(answer(a, "frozen", ShowNone))
			tr.Apply(answer(a, "live", ShowNone))
			tr.Confirm(a, "live")
			return !tr.ExpireResource(a, "frozen", pinged, ReasonTimeout)
		}, false},
		{"the server's session list does not", func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool {
			tr.Reconcile(clk.Now(), nil, []Session{{User: a, Resource: "frozen"}, {User: a, Resource: "live"}})
			return !tr.ExpireResource(a, "frozen", pinged, ReasonTimeout)
		}, false},
		{"the server's answer does not bring it back", func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool {
			tr.ExpireResource(a, "frozen", pinged, ReasonTimeout)
			clk.Advance(time.Second)
			tr.Apply(answer(a, "frozen", ShowNone))
			u, _ := tr.Get(a)
			return len(u.Resources) == 2
		}, false},
		{"nor its session list", func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool {
			tr.ExpireResource(a, "frozen", pinged, ReasonTimeout)
			clk.Advance(time.Second)
			tr.Reconcile(clk.Now(), nil, []Session{{User: a, Resource: "frozen"}, {User: a, Resource: "live"}})
			u, _ := tr.Get(a)
			return len(u.Resources) == 2
		}, false},
		{"an answer stamped after the timeout brings it back", func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool {
			tr.ExpireResource(a, "frozen", pinged, ReasonTimeout)
			clk.Advance(time.Second)
			u := answer(a, "frozen", ShowAway)
			u.Time = clk.Now()
			clk.Advance(time.Second)
			tr.Apply(u)
			got, _ := tr.Get(a)
			return len(got.Resources) == 2
		}, true},
		{"Stale says so while the server's word is ignored", func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool {
			if tr.Stale(a, "frozen") {
				t.Error("Stale before any ping was missed")
			}
			tr.ExpireResource(a, "frozen", pinged, ReasonTimeout)
			tr.Apply(answer(a, "frozen", ShowNone))
			if !tr.Stale(a, "frozen") || tr.Stale(a, "live") {
				t.Errorf("Stale: frozen %v, live %v; want true, false", tr.Stale(a, "frozen"), tr.Stale(a, "live"))
			}
			// The client answered again (a resumed session): the server's
			// presence for it, applied as the client's, brings it back.
			tr.Apply(on(a, "frozen", ShowNone, "", 0))
			if tr.Stale(a, "frozen") {
				t.Error("still stale after the client's word")
			}
			got, _ := tr.Get(a)
			return len(got.Resources) == 2
		}, true},
		{"the client's own presence brings it back", func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool {
			tr.ExpireResource(a, "frozen", pinged, ReasonTimeout)
			tr.Apply(on(a, "frozen", ShowNone, "", 0))
			got, _ := tr.Get(a)
			return len(got.Resources) == 2
		}, true},
		{"after the server's unavailable, its answer counts again", func(t *testing.T, tr *Tracker, clk *fakeClock, pinged time.Time) bool {
			tr.ExpireResource(a, "frozen", pinged, ReasonTimeout)
			tr.Apply(off(a, "frozen"))
			tr.Apply(answer(a, "frozen", ShowNone))
			got, _ := tr.Get(a)
			return len(got.Resources) == 2
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			tr := New(Options{Clock: clk})
			tr.Apply(on(a, "frozen", ShowNone, "", 0))
			tr.Apply(on(a, "live", ShowNone, "", 0))
			clk.Advance(interval)
			if got := len(tr.Silent(clk.Now().Add(-interval+time.Second), 10)); got != 2 {
				t.Fatalf("Silent handed out %d resources, want 2", got)
			}
			pinged := clk.Now()
			clk.Advance(time.Second)
			if got := tt.run(t, tr, clk, pinged); got != tt.want {
				t.Errorf("frozen online: %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSilentIgnoresAnswers: the server's answer to a probe does not
// postpone the client's ping.
func TestSilentIgnoresAnswers(t *testing.T) {
	const a = "alice@example.org"
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	tr.Apply(on(a, "r", ShowNone, "", 0))
	clk.Advance(time.Minute)
	tr.Apply(answer(a, "r", ShowNone))
	if got := tr.Silent(clk.Now().Add(-30*time.Second), 10); len(got) != 1 {
		t.Fatalf("Silent = %v, want the resource the server answered for", got)
	}
}

// TestSettle: an unanswered probe takes offline the resources of a user
// whose server answers probes, and only has the others pinged.
func TestSettle(t *testing.T) {
	const roster, directed = "r@example.org", "d@example.org"
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	tr.Apply(answer(roster, "a", ShowNone)) // the server answered a probe for it once
	tr.Apply(on(directed, "b", ShowNone, "", 0))
	clk.Advance(time.Minute)
	probed := clk.Now()
	clk.Advance(5 * time.Second)
	if off, ping := tr.Settle(roster, probed, ReasonReconcile); off != 1 || ping != 0 {
		t.Errorf("Settle(roster) = %d offline, %d to ping; want 1, 0", off, ping)
	}
	if off, ping := tr.Settle(directed, probed, ReasonReconcile); off != 0 || ping != 1 {
		t.Errorf("Settle(directed) = %d offline, %d to ping; want 0, 1", off, ping)
	}
	// The directed user's resource is pinged at once, whatever the interval.
	if got := tr.Silent(clk.Now().Add(-time.Hour), 10); len(got) != 1 || got[0] != (Ref{directed, "b"}) {
		t.Errorf("Silent = %v, want the directed user's resource", got)
	}
	tr.Apply(on(directed, "c", ShowNone, "", 0))
	if off, ping := tr.SettleAll(clk.Now(), ReasonReconcile); off != 0 || ping != 1 {
		t.Errorf("SettleAll = %d offline, %d to ping; want 0, 1 (c came after)", off, ping)
	}
}

// TestUnavailableStatus: the status of unavailable presence is the user's
// last word while offline (RFC 6121 §4.5.1).
func TestUnavailableStatus(t *testing.T) {
	const a = "alice@example.org"
	tr := New(Options{Clock: newFakeClock()})
	tr.Apply(on(a, "r", ShowAway, "lunch", 0))
	u := off(a, "r")
	u.Status = "gone home"
	ev, _ := tr.Apply(u)
	if ev.Resource.Status != "gone home" || ev.Aggregate.Status != "gone home" {
		t.Errorf("offline event status %q, aggregate %q; want the unavailable's", ev.Resource.Status, ev.Aggregate.Status)
	}
	if got, _ := tr.Get(a); got.Online || got.Status != "gone home" {
		t.Errorf("Get = online %v, status %q; want offline with the unavailable's status", got.Online, got.Status)
	}
	// Without a status, the last available one stays.
	tr.Apply(on(a, "r", ShowAway, "back", 0))
	tr.Apply(off(a, "r"))
	if got, _ := tr.Get(a); got.Status != "back" {
		t.Errorf("status %q, want the last available one", got.Status)
	}
}
