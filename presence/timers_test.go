package presence

import (
	"testing"
	"time"
)

func TestHeartbeat(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	tr.Apply(on("a@x", "pc", ShowNone, "", 0))
	tr.Apply(on("b@x", "pc", ShowNone, "", 0))
	tr.Apply(Update{User: "w@x", Resource: "web", Available: true, TTL: time.Hour})
	const interval = time.Minute

	if got := tr.Silent(clk.Now().Add(-interval), 10); len(got) != 0 {
		t.Fatalf("fresh resources handed out: %v", got)
	}
	clk.Advance(2 * interval)
	// b sends presence (confirmed); a stays silent.
	tr.Apply(on("b@x", "pc", ShowAway, "", 0))
	due := tr.Silent(clk.Now().Add(-interval), 10)
	if len(due) != 1 || due[0] != (Ref{"a@x", "pc"}) {
		t.Fatalf("Silent = %v, want only a@x/pc (b spoke, w has a TTL)", due)
	}
	pingedAt := clk.Now()
	if again := tr.Silent(clk.Now().Add(-interval), 10); len(again) != 0 {
		t.Fatalf("a pinged resource handed out again at once: %v", again)
	}

	// a answers: confirmed, not handed out until silent again.
	clk.Advance(time.Second)
	if !tr.Confirm("a@x", "pc") {
		t.Fatal("Confirm of an online resource")
	}
	if tr.ExpireResource("a@x", "pc", pingedAt, ReasonTimeout) {
		t.Fatal("a resource that answered expired")
	}

	// Silent again; this time no answer: offline with reason timeout.
	clk.Advance(2 * interval)
	due = tr.Silent(clk.Now().Add(-interval), 10)
	if len(due) != 2 {
		t.Fatalf("Silent = %v, want a and b", due)
	}
	pingedAt = clk.Now()
	clk.Advance(10 * time.Second)
	sub := subscribe(tr)
	if !tr.ExpireResource("a@x", "pc", pingedAt, ReasonTimeout) {
		t.Fatal("an unanswered ping must take the resource offline")
	}
	if ev := next(t, sub); ev.Kind != EventOffline || ev.Reason != ReasonTimeout || ev.User != "a@x" {
		t.Fatalf("event %+v", ev)
	}
	// A ping whose answer got lost is handed out again one interval later.
	clk.Advance(2 * interval)
	if due = tr.Silent(clk.Now().Add(-interval), 10); len(due) != 1 || due[0].User != "b@x" {
		t.Fatalf("Silent after a lost ping = %v", due)
	}
	if tr.Confirm("nobody@x", "r") || tr.Confirm("b@x", "nothing") {
		t.Fatal("Confirm of unknown resources")
	}
}

func TestSilentMax(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	for _, u := range []string{"a@x", "b@x", "c@x"} {
		tr.Apply(on(u, "r", ShowNone, "", 0))
	}
	clk.Advance(time.Hour)
	first := tr.Silent(clk.Now(), 2)
	second := tr.Silent(clk.Now(), 2)
	if len(first) != 2 || len(second) != 1 || first[0] == second[0] || first[1] == second[0] {
		t.Fatalf("Silent with max: %v then %v", first, second)
	}
}

func TestTTL(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	tr.Apply(on("a@x", "xmpp", ShowAway, "", 0))
	web := Update{User: "a@x", Resource: "web", Available: true, Show: ShowChat, Priority: 1, TTL: 30 * time.Second}
	ev, _ := tr.Apply(web)
	if ev.Aggregate.Resource != "web" || ev.Resource.Expires != clk.Now().Add(30*time.Second) {
		t.Fatalf("web resource: %+v", ev)
	}
	// Refreshed before the TTL: a refreshed event (for stores), later expiry.
	clk.Advance(20 * time.Second)
	if ev, changed := tr.Apply(web); !changed || ev.Kind != EventRefreshed || !ev.Resource.Expires.Equal(clk.Now().Add(30*time.Second)) {
		t.Fatalf("refresh: %+v, %v", ev, changed)
	}
	clk.Advance(20 * time.Second)
	if n := tr.ExpireDue(); n != 0 {
		t.Fatalf("a refreshed resource expired")
	}
	sub := subscribe(tr)
	clk.Advance(11 * time.Second)
	if n := tr.ExpireDue(); n != 1 {
		t.Fatalf("ExpireDue = %d, want 1", n)
	}
	ev = next(t, sub)
	if ev.Kind != EventOffline || ev.Reason != ReasonTimeout || ev.Resource.Name != "web" || ev.Aggregate.Resource != "xmpp" {
		t.Fatalf("expiry event %+v: the XMPP resource must win again", ev)
	}
	if len(tr.ttl) != 0 {
		t.Fatalf("user still in the TTL set: %v", tr.ttl)
	}
	if n := tr.ExpireDue(); n != 0 {
		t.Fatal("expired twice")
	}
}

func TestReconcile(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	tr.Apply(on("a@one", "pc", ShowDND, "busy", 5)) // confirmed by the snapshot
	tr.Apply(on("b@one", "pc", ShowNone, "", 0))    // gone from the server
	tr.Apply(on("z@two", "pc", ShowNone, "", 0))    // another domain: untouched
	clk.Advance(time.Second)
	at := clk.Now()
	clk.Advance(time.Second)
	tr.Apply(on("d@one", "new", ShowNone, "", 0)) // came online after the snapshot
	sessions := []Session{
		{User: "a@one", Resource: "pc"},                                 // known: keeps dnd
		{User: "c@one", Resource: "phone", Show: ShowAway, Priority: 1}, // unknown here
		{User: "y@two", Resource: "r"},                                  // out of scope
	}
	on, off := tr.Reconcile(at, []string{"one"}, sessions)
	if on != 1 || off != 1 {
		t.Fatalf("Reconcile = %d online, %d offline; want 1, 1", on, off)
	}
	check := func(jid string, online bool, show Show) {
		t.Helper()
		u, _ := tr.Get(jid)
		if u.Online != online || u.Show != show {
			t.Fatalf("%s: %+v, want online=%v show=%q", jid, u, online, show)
		}
	}
	check("a@one", true, ShowDND)
	check("b@one", false, ShowNone)
	check("c@one", true, ShowAway)
	check("d@one", true, ShowNone)
	check("z@two", true, ShowNone)
	if _, ok := tr.Get("y@two"); ok {
		t.Fatal("an out-of-scope session was added")
	}
}

// TestReconcileMarksListedResources: a session that comes online from the
// list alone is marked Listed (nobody said its presence); the first
// presence for it, even a probe answer with the same show and status,
// clears the mark and publishes the change; a known resource never gets it.
func TestReconcileMarksListedResources(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	tr.Apply(on("a@one", "pc", ShowNone, "", 0))
	clk.Advance(time.Second)
	tr.Reconcile(clk.Now(), nil, []Session{{User: "a@one", Resource: "pc"}, {User: "b@one", Resource: "phone"}})
	listed := func(jid string) bool {
		t.Helper()
		u, _ := tr.Get(jid)
		if len(u.Resources) != 1 {
			t.Fatalf("%s: %+v", jid, u)
		}
		return u.Resources[0].Listed
	}
	if listed("a@one") || !listed("b@one") {
		t.Fatalf("Listed: a %v (known), b %v (from the list)", listed("a@one"), listed("b@one"))
	}
	before, _ := tr.Get("b@one")
	sub := subscribe(tr)
	clk.Advance(time.Second)
	answer := on("b@one", "phone", ShowNone, "", 0)
	answer.Answer = true
	answer.Time = clk.Now().Add(-time.Minute) // a delay stamp older than the listing
	if _, changed := tr.Apply(answer); !changed {
		t.Fatal("a probe answer for a listed resource must publish: the resource's presence is now known")
	}
	// The same presence: only the mark goes; Since, which decides between
	// resources of equal priority, stays (found by TestModel).
	if ev := next(t, sub); ev.Kind != EventChanged || ev.Resource.Listed || !ev.Resource.Since.Equal(before.Resources[0].Since) {
		t.Fatalf("event %+v, want changed, no longer listed, since %v as before", ev, before.Resources[0].Since)
	}
	if listed("b@one") {
		t.Fatal("still listed after its presence came")
	}
}

func TestRestoredResourcesExpireWithReasonRestart(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	tr.Restore([]User{
		{JID: "a@x", Online: true, Resources: []Resource{{Name: "r1"}, {Name: "r2"}}},
	})
	tr.Confirm("a@x", "r2")
	sub := subscribe(tr)
	if n := tr.Expire(clk.Now(), ReasonReconcile); n != 1 {
		t.Fatalf("Expire = %d", n)
	}
	if ev := next(t, sub); ev.Resource.Name != "r1" || ev.Reason != ReasonRestart {
		t.Fatalf("event %+v, want r1 offline with reason restart", ev)
	}
}

func TestStatusesAndIdle(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	idle := clk.Now().Add(-time.Hour)
	u := Update{User: "a@x", Resource: "r", Available: true, Status: "away",
		Statuses: []LangStatus{{"de", "weg"}, {"fr", "absent"}}, Idle: idle}
	tr.Apply(u)
	if _, changed := tr.Apply(u); changed {
		t.Fatal("the same statuses and idle must not publish")
	}
	u2 := u
	u2.Statuses = []LangStatus{{"de", "fort"}, {"fr", "absent"}}
	if _, changed := tr.Apply(u2); !changed {
		t.Fatal("a changed translation must publish")
	}
	u3 := u2
	u3.Idle = time.Time{}
	ev, changed := tr.Apply(u3)
	if !changed || !ev.Resource.Idle.IsZero() {
		t.Fatal("leaving idle must publish")
	}
	got, _ := tr.Get("a@x")
	if got.Resources[0].Statuses[0].Text != "fort" {
		t.Fatalf("statuses %+v", got.Resources[0].Statuses)
	}
}

func subscribe(tr *Tracker) *Subscription {
	_, _, s := tr.Subscribe(Filter{}, 0)
	return s
}

func next(t *testing.T, s *Subscription) Event {
	t.Helper()
	buf := make([]Event, 1)
	n, err := s.TryRead(buf)
	if n != 1 || err != nil {
		t.Fatalf("no event: %d, %v", n, err)
	}
	return buf[0]
}

func TestTTLResourcesAreNotTheServers(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	tr.Apply(Update{User: "a@x", Resource: "web", Available: true, TTL: time.Hour})
	tr.Apply(on("a@x", "pc", ShowNone, "", 0))
	clk.Advance(time.Minute)
	if n := tr.Expire(clk.Now(), ReasonReconcile); n != 1 {
		t.Fatalf("Expire = %d, want only the XMPP resource", n)
	}
	if tr.ExpireResource("a@x", "web", clk.Now(), ReasonTimeout) || tr.Expire(clk.Now(), ReasonReconcile) != 0 {
		t.Fatal("a TTL resource was expired by an XMPP-side check")
	}
	if n := tr.Drop("a@x", ReasonServer); n != 0 {
		t.Fatal("Drop for a server error removed a TTL resource")
	}
	if p := tr.Probeable(); len(p) != 0 {
		t.Fatalf("Probeable = %v: a user with only TTL resources is not the server's", p)
	}
	if on, off := tr.Reconcile(clk.Now(), nil, nil); on != 0 || off != 0 {
		t.Fatal("Reconcile touched a TTL resource")
	}
	if n := tr.Drop("a@x", ReasonAdmin); n != 1 {
		t.Fatal("an admin Drop must remove everything")
	}
}

func TestReconcileDoesNotResurrect(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	tr.Apply(on("a@x", "r", ShowNone, "", 0))
	at := clk.Now() // the server lists a@x/r now...
	clk.Advance(time.Second)
	tr.Apply(off("a@x", "r")) // ...then the client logs off, then Reconcile runs
	clk.Advance(time.Second)
	if on, _ := tr.Reconcile(at, nil, []Session{{User: "a@x", Resource: "r"}}); on != 0 {
		t.Fatal("Reconcile brought back a resource that left after the snapshot")
	}
}

func TestSubscriptionBufferGrows(t *testing.T) {
	tr := New(Options{Clock: newFakeClock()})
	_, _, sub := tr.Subscribe(Filter{}, 100)
	if len(sub.ring) > 16 {
		t.Fatalf("an idle subscription holds %d events", len(sub.ring))
	}
	for i := range 100 {
		tr.Apply(on("a@x", "r", ShowNone, "", i))
	}
	buf := make([]Event, 200)
	n, err := sub.TryRead(buf)
	if n != 100 || err != nil {
		t.Fatalf("TryRead = %d, %v", n, err)
	}
	for i := range n {
		if buf[i].Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: growth broke the order", i, buf[i].Seq)
		}
	}
	if tr.Silent(clk0(tr), 0) != nil {
		t.Fatal("Silent with max 0 must hand out nothing")
	}
}

func clk0(tr *Tracker) time.Time { return tr.Now().Add(time.Hour) }
