package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/store"
)

// Run runs the suite. newStore returns an empty store for each subtest; the
// suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("EmptyLoad", func(t *testing.T) {
		s := newStore(t)
		defer s.Close()
		users, err := s.Load(context.Background())
		if err != nil || len(users) != 0 {
			t.Fatalf("Load on empty store = %v, %v", users, err)
		}
	})
	t.Run("ApplyMirrorsTracker", func(t *testing.T) {
		s := newStore(t)
		defer s.Close()
		tr := presence.New(presence.Options{Clock: stepClock()})
		_, _, sub := tr.Subscribe(presence.Filter{}, 0)
		scenario(tr)
		buf := make([]presence.Event, 100)
		n, err := sub.TryRead(buf)
		if err != nil {
			t.Fatal(err)
		}
		// Apply in two batches to check batches compose.
		if err := s.Apply(context.Background(), buf[:n/2]); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(context.Background(), buf[n/2:n]); err != nil {
			t.Fatal(err)
		}
		want, _ := tr.Snapshot()
		check(t, s, want)
	})
	t.Run("ReplaceThenLoadRestores", func(t *testing.T) {
		s := newStore(t)
		defer s.Close()
		tr := presence.New(presence.Options{Clock: stepClock()})
		scenario(tr)
		want, _ := tr.Snapshot()
		if err := s.Replace(context.Background(), []presence.User{{JID: "stale@x", Online: true,
			Resources: []presence.Resource{{Name: "old"}}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Replace(context.Background(), want); err != nil {
			t.Fatal(err)
		}
		check(t, s, want)

		// A tracker restored from the store shows the same users.
		loaded, err := s.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		tr2 := presence.New(presence.Options{})
		tr2.Restore(loaded)
		got, _ := tr2.Snapshot()
		if d := diff(got, want); d != "" {
			t.Fatalf("restored tracker differs: %s", d)
		}
	})
}

// stepClock returns a clock that advances one second per reading, so every
// change has its own time.
func stepClock() presence.Clock {
	return &stepper{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
}

type stepper struct{ t time.Time }

func (s *stepper) Now() time.Time { s.t = s.t.Add(time.Second); return s.t }

// scenario drives the tracker through the cases a mirror must get right.
func scenario(tr *presence.Tracker) {
	up := func(user, res string, show presence.Show, status string, prio int) {
		tr.Apply(presence.Update{User: user, Resource: res, Available: true, Show: show, Status: status, Priority: prio})
	}
	up("alice@x", "pc", presence.ShowNone, "at desk", 5)
	up("alice@x", "phone", presence.ShowAway, "commuting", 1)
	up("bob@x", "laptop", presence.ShowDND, "focus", 0)
	up("bob@x", "laptop", presence.ShowChat, "free", 0)
	up("carol@x", "web", presence.ShowNone, "", -1)
	tr.Apply(presence.Update{User: "carol@x", Resource: "web"})
	tr.Apply(presence.Update{User: "alice@x", Resource: "pc"})
	up("dave@x", "a", presence.ShowXA, "gone", 0)
	tr.Drop("dave@x", presence.ReasonServer)
	tr.Apply(presence.Update{User: "erin@x", Resource: "web", Available: true, Show: presence.ShowAway, Status: "away",
		Statuses: []presence.LangStatus{{Lang: "de", Text: "weg"}}, Idle: time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC), TTL: time.Minute})
	tr.Apply(presence.Update{User: "erin@x", Resource: "web", Available: true, Show: presence.ShowAway, Status: "away",
		Statuses: []presence.LangStatus{{Lang: "de", Text: "weg"}}, Idle: time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC), TTL: time.Minute})
}

// Flusher is implemented by write-behind stores: the suite calls Flush
// before reading back what it wrote.
type Flusher interface {
	Flush(ctx context.Context) error
}

func check(t *testing.T, s store.Store, want []presence.User) {
	t.Helper()
	if f, ok := s.(Flusher); ok {
		if err := f.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(got, want); d != "" {
		t.Fatal(d)
	}
}

// diff compares the exported, persistent fields of two user lists; the
// order of resources does not matter.
func diff(got, want []presence.User) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d users, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.JID != w.JID || g.Online != w.Online || g.Show != w.Show || g.Status != w.Status ||
			g.Priority != w.Priority || !g.Since.Equal(w.Since) || !g.LastSeen.Equal(w.LastSeen) {
			return fmt.Sprintf("user %d:\n got %+v\nwant %+v", i, g, w)
		}
		byName := func(a, b presence.Resource) int { return strings.Compare(a.Name, b.Name) }
		g.Resources, w.Resources = slices.Clone(g.Resources), slices.Clone(w.Resources)
		slices.SortFunc(g.Resources, byName)
		slices.SortFunc(w.Resources, byName)
		if !slices.EqualFunc(g.Resources, w.Resources, func(a, b presence.Resource) bool {
			return a.Name == b.Name && a.Show == b.Show && a.Status == b.Status && a.Priority == b.Priority && a.Since.Equal(b.Since) &&
				a.Idle.Equal(b.Idle) && a.Expires.Equal(b.Expires) && slices.Equal(a.Statuses, b.Statuses)
		}) {
			return fmt.Sprintf("user %s resources:\n got %+v\nwant %+v", g.JID, g.Resources, w.Resources)
		}
	}
	return ""
}
