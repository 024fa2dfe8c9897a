package presence

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced Clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func on(user, res string, show Show, status string, prio int) Update {
	return Update{User: user, Resource: res, Available: true, Show: show, Status: status, Priority: prio}
}

func off(user, res string) Update { return Update{User: user, Resource: res} }

func TestAggregate(t *testing.T) {
	const a = "alice@example.org"
	tests := []struct {
		name    string
		updates []Update
		want    Aggregate
		wantRes []string // resource order in Get
	}{
		{"unknown user stays unknown", []Update{off(a, "r")}, Aggregate{}, nil},
		{"one resource", []Update{on(a, "phone", ShowAway, "out", 0)},
			Aggregate{Online: true, Show: ShowAway, Status: "out", Resource: "phone"}, []string{"phone"}},
		{"highest priority wins", []Update{on(a, "pc", ShowNone, "", 5), on(a, "phone", ShowAway, "", 1)},
			Aggregate{Online: true, Priority: 5, Resource: "pc"}, []string{"pc", "phone"}},
		{"tie goes to the most recent", []Update{on(a, "pc", ShowDND, "", 1), on(a, "phone", ShowChat, "", 1)},
			Aggregate{Online: true, Show: ShowChat, Priority: 1, Resource: "phone"}, []string{"phone", "pc"}},
		{"negative priority is online", []Update{on(a, "bot", ShowXA, "", -5)},
			Aggregate{Online: true, Show: ShowXA, Priority: -5, Resource: "bot"}, []string{"bot"}},
		{"winner leaves", []Update{on(a, "pc", ShowNone, "", 5), on(a, "phone", ShowAway, "", 1), off(a, "pc")},
			Aggregate{Online: true, Show: ShowAway, Priority: 1, Resource: "phone"}, []string{"phone"}},
		{"last leaves", []Update{on(a, "pc", ShowNone, "", 5), off(a, "pc")}, Aggregate{}, nil},
		{"change in place", []Update{on(a, "pc", ShowNone, "", 5), on(a, "pc", ShowDND, "meeting", 5)},
			Aggregate{Online: true, Show: ShowDND, Status: "meeting", Priority: 5, Resource: "pc"}, []string{"pc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			tr := New(Options{Clock: clk})
			var last Event
			for _, u := range tt.updates {
				clk.Advance(time.Second)
				if ev, ok := tr.Apply(u); ok {
					last = ev
				}
			}
			if last.Aggregate != tt.want {
				t.Errorf("last event aggregate = %+v, want %+v", last.Aggregate, tt.want)
			}
			u, ok := tr.Get(a)
			if !ok {
				if tt.wantRes != nil {
					t.Fatal("user unknown")
				}
				return
			}
			if u.Online != tt.want.Online || u.Show != tt.want.Show || u.Status != tt.want.Status {
				t.Errorf("Get = %+v, want aggregate %+v", u, tt.want)
			}
			var names []string
			for _, r := range u.Resources {
				names = append(names, r.Name)
			}
			if len(names) != len(tt.wantRes) {
				t.Fatalf("resources = %v, want %v", names, tt.wantRes)
			}
			for i := range names {
				if names[i] != tt.wantRes[i] {
					t.Fatalf("resources = %v, want %v", names, tt.wantRes)
				}
			}
		})
	}
}

func TestApplyEvents(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	const a = "a@x"
	steps := []struct {
		u       Update
		changed bool
		kind    EventKind
	}{
		{on(a, "r", ShowNone, "", 0), true, EventOnline},
		{on(a, "r", ShowNone, "", 0), false, ""},
		{on(a, "r", ShowAway, "", 0), true, EventChanged},
		{off(a, "other"), false, ""},
		{off(a, "r"), true, EventOffline},
		{off(a, "r"), false, ""},
		{Update{Available: true}, false, ""},
	}
	var seq uint64
	for i, s := range steps {
		ev, changed := tr.Apply(s.u)
		if changed != s.changed || ev.Kind != s.kind {
			t.Fatalf("step %d: got (%v, %q), want (%v, %q)", i, changed, ev.Kind, s.changed, s.kind)
		}
		if changed {
			seq++
			if ev.Seq != seq {
				t.Fatalf("step %d: seq %d, want %d", i, ev.Seq, seq)
			}
		}
	}
	u, _ := tr.Get(a)
	if u.Online || u.Show != ShowAway || u.LastSeen.IsZero() {
		t.Fatalf("offline user = %+v: want last show kept and LastSeen set", u)
	}
}

func TestOfflineReason(t *testing.T) {
	tr := New(Options{Clock: newFakeClock()})
	tr.Apply(on("a@x", "r", ShowNone, "", 0))
	ev, _ := tr.Apply(Update{User: "a@x", Resource: "r"})
	if ev.Reason != ReasonClient {
		t.Fatalf("default reason = %q, want client", ev.Reason)
	}
}

func TestTimeFromDelayStamp(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	past := clk.Now().Add(-time.Hour)
	ev, _ := tr.Apply(Update{User: "a@x", Resource: "r", Available: true, Time: past})
	if !ev.Time.Equal(past) || !ev.Resource.Since.Equal(past) {
		t.Fatalf("event time %v, since %v, want %v", ev.Time, ev.Resource.Since, past)
	}
	future := clk.Now().Add(time.Hour)
	ev, _ = tr.Apply(Update{User: "b@x", Resource: "r", Available: true, Time: future})
	if !ev.Time.Equal(clk.Now()) {
		t.Fatalf("a future stamp must be clamped to now, got %v", ev.Time)
	}
}

func TestExpire(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	tr.Apply(on("a@x", "1", ShowNone, "", 0))
	tr.Apply(on("b@x", "1", ShowNone, "", 0))
	clk.Advance(time.Second)
	mark := clk.Now()
	clk.Advance(time.Second)
	// a repeats itself: no event, but it is confirmed.
	if _, changed := tr.Apply(on("a@x", "1", ShowNone, "", 0)); changed {
		t.Fatal("a repeated presence must not publish")
	}
	if n := tr.Expire(mark, ReasonReconcile); n != 1 {
		t.Fatalf("Expire = %d, want 1", n)
	}
	if u, _ := tr.Get("a@x"); !u.Online {
		t.Error("confirmed user a went offline")
	}
	if u, _ := tr.Get("b@x"); u.Online {
		t.Error("unconfirmed user b is still online")
	}
}

func TestDrop(t *testing.T) {
	tr := New(Options{Clock: newFakeClock()})
	tr.Apply(on("a@x", "1", ShowNone, "", 0))
	tr.Apply(on("a@x", "2", ShowNone, "", 0))
	_, _, sub := tr.Subscribe(Filter{}, 0)
	if n := tr.Drop("a@x", ReasonServer); n != 2 {
		t.Fatalf("Drop = %d, want 2", n)
	}
	buf := make([]Event, 4)
	n, err := sub.TryRead(buf)
	if err != nil || n != 2 {
		t.Fatalf("TryRead = %d, %v", n, err)
	}
	for _, ev := range buf[:n] {
		if ev.Kind != EventOffline || ev.Reason != ReasonServer {
			t.Fatalf("event %+v, want offline/server", ev)
		}
	}
	if tr.Drop("nobody@x", ReasonServer) != 0 {
		t.Fatal("Drop of an unknown user")
	}
}

func TestRestore(t *testing.T) {
	clk := newFakeClock()
	tr := New(Options{Clock: clk})
	tr.Restore([]User{
		{JID: "a@x", Online: true, Resources: []Resource{{Name: "r", Show: ShowDND, Priority: 3}}},
		{JID: "b@x", Show: ShowAway, Status: "gone", LastSeen: clk.Now()},
		{JID: ""},
	})
	users, seq := tr.Snapshot()
	if len(users) != 2 || seq != 0 {
		t.Fatalf("Snapshot = %d users, seq %d", len(users), seq)
	}
	if !users[0].Online || users[0].Show != ShowDND || users[1].Status != "gone" {
		t.Fatalf("restored %+v", users)
	}
	// Restored resources are unconfirmed: a resync drops them.
	if n := tr.Expire(clk.Now(), ReasonRestart); n != 1 {
		t.Fatalf("Expire after Restore = %d, want 1", n)
	}
}

func TestFeedOrderAndLag(t *testing.T) {
	tr := New(Options{Clock: newFakeClock(), FeedSize: 4})
	users, seq, sub := tr.Subscribe(Filter{}, 0)
	if len(users) != 0 || seq != 0 {
		t.Fatalf("Subscribe on an empty tracker: %v, %d", users, seq)
	}
	for i := range 3 {
		tr.Apply(on("a@x", "r", ShowNone, string(rune('a'+i)), 0))
	}
	buf := make([]Event, 2)
	n, err := sub.Read(context.Background(), buf)
	if err != nil || n != 2 || buf[0].Seq != 1 || buf[1].Seq != 2 {
		t.Fatalf("Read = %d %v %+v", n, err, buf)
	}
	for i := range 5 {
		tr.Apply(on("a@x", "r", ShowNone, string(rune('k'+i)), 0))
	}
	if _, err := sub.Read(context.Background(), buf); !errors.Is(err, ErrLagged) {
		t.Fatalf("Read after overflow: %v, want ErrLagged", err)
	}
	users, seq, sub = tr.Subscribe(Filter{}, 0)
	if len(users) != 1 || seq != 8 || users[0].Status != "o" {
		t.Fatalf("resubscribe: %+v at %d", users, seq)
	}
	if n, err := sub.TryRead(buf); n != 0 || err != nil {
		t.Fatalf("TryRead at head = %d, %v", n, err)
	}
	sub.Close()
	if _, err := sub.Read(context.Background(), buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if len(tr.subs) != 0 {
		t.Fatalf("%d subscriptions still registered", len(tr.subs))
	}
}

func TestFeedFilter(t *testing.T) {
	tr := New(Options{Clock: newFakeClock()})
	tr.Apply(on("a@one", "r", ShowNone, "", 0))
	tr.Apply(on("b@two", "r", ShowNone, "", 0))
	tr.Apply(on("c@three", "r", ShowNone, "", 0))
	users, seq, sub := tr.Subscribe(Filter{Domains: []string{"one"}, Users: []string{"c@three"}}, 0)
	if len(users) != 2 || users[0].JID != "a@one" || users[1].JID != "c@three" || seq != 3 {
		t.Fatalf("filtered snapshot %+v at %d", users, seq)
	}
	tr.Apply(on("b@two", "r", ShowAway, "", 0))
	tr.Apply(on("a@one", "r", ShowAway, "", 0))
	tr.Apply(on("c@three", "r", ShowAway, "", 0))
	tr.Apply(on("x@one", "r", ShowAway, "", 0))
	buf := make([]Event, 10)
	n, _ := sub.TryRead(buf)
	var got []string
	for _, ev := range buf[:n] {
		got = append(got, ev.User)
	}
	if want := []string{"a@one", "c@three", "x@one"}; !slices.Equal(got, want) {
		t.Fatalf("filtered events %v, want %v", got, want)
	}
	if buf[0].Seq != 5 || buf[1].Seq != 6 || buf[2].Seq != 7 {
		t.Fatalf("filtered events keep the global seq: %d %d %d", buf[0].Seq, buf[1].Seq, buf[2].Seq)
	}
}

func TestSlowSubscriberDoesNotBlockOthers(t *testing.T) {
	tr := New(Options{Clock: newFakeClock()})
	_, _, slow := tr.Subscribe(Filter{}, 2)
	_, _, fast := tr.Subscribe(Filter{}, 100)
	for i := range 10 {
		tr.Apply(on("a@x", "r", ShowNone, "", i))
	}
	buf := make([]Event, 100)
	if n, err := fast.TryRead(buf); n != 10 || err != nil {
		t.Fatalf("fast subscriber got %d, %v", n, err)
	}
	if _, err := slow.TryRead(buf); !errors.Is(err, ErrLagged) {
		t.Fatalf("slow subscriber: %v, want ErrLagged", err)
	}
}

func TestReadWaitsAndCancels(t *testing.T) {
	tr := New(Options{Clock: newFakeClock()})
	_, _, sub := tr.Subscribe(Filter{}, 0)
	got := make(chan Event)
	go func() {
		buf := make([]Event, 1)
		if _, err := sub.Read(context.Background(), buf); err == nil {
			got <- buf[0]
		}
	}()
	tr.Apply(on("a@x", "r", ShowNone, "", 0))
	if ev := <-got; ev.Seq != 1 || ev.Kind != EventOnline {
		t.Fatalf("woken with %+v", ev)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sub.Read(ctx, make([]Event, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read on cancelled ctx: %v", err)
	}
	// Close wakes a waiting reader.
	done := make(chan error)
	go func() { _, err := sub.Read(context.Background(), make([]Event, 1)); done <- err }()
	sub.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Read woken by Close: %v", err)
	}
}

// TestConcurrent checks, under -race, that many writers and readers see one
// gap-free ordered feed.
func TestConcurrent(t *testing.T) {
	tr := New(Options{})
	const writers, perWriter = 4, 500
	_, _, sub := tr.Subscribe(Filter{}, writers*perWriter)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := string(rune('a'+w)) + "@x"
			for i := range perWriter {
				tr.Apply(on(user, "r", ShowNone, "", i))
			}
		}()
	}
	done := make(chan error)
	go func() {
		buf := make([]Event, 64)
		var want uint64 = 1
		for want <= writers*perWriter {
			n, err := sub.Read(context.Background(), buf)
			if err != nil {
				done <- err
				return
			}
			for _, ev := range buf[:n] {
				if ev.Seq != want {
					done <- errors.New("gap in feed")
					return
				}
				want++
			}
		}
		done <- nil
	}()
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	users, seq := tr.Snapshot()
	if len(users) != writers || seq != writers*perWriter {
		t.Fatalf("snapshot %d users, seq %d", len(users), seq)
	}
}

func TestParseShow(t *testing.T) {
	for _, s := range []string{"", "chat", "away", "xa", "dnd"} {
		if _, ok := ParseShow(s); !ok {
			t.Errorf("ParseShow(%q) refused", s)
		}
	}
	if sh, ok := ParseShow("busy"); ok || sh != ShowNone {
		t.Errorf("ParseShow(busy) = %q, %v", sh, ok)
	}
}

// Two resources with equal priority and equal Since (delay stamps have
// second precision): the event's aggregate and Get disagree on the winner.
func TestTieSameWinnerEverywhere(t *testing.T) {
	tr := New(Options{Clock: newFakeClock()})
	stamp := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	u1 := on("a@x", "phone", ShowDND, "busy", 0)
	u1.Time = stamp
	u2 := on("a@x", "desk", ShowAway, "lunch", 0)
	u2.Time = stamp
	tr.Apply(u1)
	ev, _ := tr.Apply(u2)
	got, _ := tr.Get("a@x")
	if ev.Aggregate.Resource != got.Resources[0].Name || ev.Aggregate.Show != got.Show {
		t.Fatalf("feed says winner %s (%s), Get says %s (%s)", ev.Aggregate.Resource, ev.Aggregate.Show, got.Resources[0].Name, got.Show)
	}
}

func TestUserState(t *testing.T) {
	for _, tt := range []struct {
		u    User
		want string
	}{
		{User{}, "offline"},
		{User{Online: true}, "available"},
		{User{Online: true, Show: ShowDND}, "dnd"},
		{User{Show: ShowAway}, "offline"},
	} {
		if got := tt.u.State(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.u, got, tt.want)
		}
	}
}
