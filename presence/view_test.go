package presence_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/presence"
)

// fatalf is what checkIndex needs of *testing.T and *rapid.T.
type fatalf interface {
	Helper()
	Fatalf(format string, args ...any)
}

// visible is u with only what a reader sees of its resources (the
// unexported liveness fields move without an event).
func visible(u presence.User) presence.User {
	rs := make([]presence.Resource, len(u.Resources))
	for i, r := range u.Resources {
		rs[i] = presence.Resource{Name: r.Name, Show: r.Show, Status: r.Status, Statuses: r.Statuses,
			Priority: r.Priority, Idle: r.Idle, Since: r.Since, Expires: r.Expires}
	}
	u.Resources = rs
	return u
}

// checkIndex checks that the index (Snapshot, View, Counts) agrees with
// the tracker's own state (Get) and with counts taken the slow way.
func checkIndex(t fatalf, tr *presence.Tracker, all []presence.User) {
	t.Helper()
	var want [presence.NumStates]int
	resources := 0
	v := tr.View()
	if v.Len() != len(all) {
		t.Fatalf("the view has %d users, the snapshot %d", v.Len(), len(all))
	}
	for _, u := range all {
		got, ok := tr.Get(u.JID)
		if !ok || !reflect.DeepEqual(visible(got), visible(u)) {
			t.Fatalf("index has %+v, the tracker %+v", u, got)
		}
		// The View finds a user in its label's buckets alone.
		if vg, ok := v.Get(u.JID); !ok || !reflect.DeepEqual(visible(vg), visible(u)) {
			t.Fatalf("View.Get has %+v, the snapshot %+v", vg, u)
		}
		i, _ := presence.StateIndex(u.State())
		want[i]++
		resources += len(u.Resources)
	}
	// The live index (Tracker.Range) holds what the View does.
	i := 0
	if _, err := tr.Range(presence.Query{}, func(u *presence.User) bool {
		if i >= len(all) || u.JID != all[i].JID || !reflect.DeepEqual(visible(*u), visible(all[i])) {
			t.Fatalf("Tracker.Range's user %d is %+v", i, *u)
		}
		i++
		return true
	}); err != nil || i != len(all) {
		t.Fatalf("Tracker.Range handed out %d users of %d: %v", i, len(all), err)
	}
	var got [presence.NumStates]int
	gotRes := 0
	for _, d := range tr.Counts().Domains {
		for i, n := range d.Users {
			got[i] += n
		}
		gotRes += d.Resources
	}
	if got != want || gotRes != resources {
		t.Fatalf("counts %v %d resources, snapshot %v %d", got, gotRes, want, resources)
	}
}

// slowRange is Range done the obvious way, over a Snapshot.
func slowRange(all []presence.User, q presence.Query) []string {
	var out []string
	for _, u := range all {
		dom := u.JID[strings.IndexByte(u.JID, '@')+1:]
		if u.JID <= q.After && q.After != "" ||
			(len(q.Domains)+len(q.Users) > 0 && !slices.Contains(q.Domains, dom) && !slices.Contains(q.Users, u.JID)) ||
			(len(q.States) > 0 && !slices.Contains(q.States, u.State())) ||
			(q.Match != nil && !q.Match(u.JID)) {
			continue
		}
		out = append(out, u.JID)
	}
	return out
}

// indexed is a tracker with users of served and other domains in every
// state.
func indexed(t *testing.T) *presence.Tracker {
	t.Helper()
	tr := presence.New(presence.Options{Domains: []string{"a.org", "b.org"}, MaxUsers: 1000})
	shows := []presence.Show{"", "chat", "away", "xa", "dnd"}
	for i := range 300 {
		dom := []string{"a.org", "b.org", "c.org", "d.org"}[i%4]
		j := fmt.Sprintf("u%03d@%s", i, dom)
		tr.Apply(presence.Update{User: j, Resource: "r", Available: true, Show: shows[i%5]})
		if i%3 == 0 {
			tr.Apply(presence.Update{User: j, Resource: "r2", Available: true, Priority: 1})
		}
		if i%7 == 0 {
			tr.Apply(presence.Update{User: j, Resource: "r"})
			tr.Apply(presence.Update{User: j, Resource: "r2"})
		}
	}
	return tr
}

func TestViewRange(t *testing.T) {
	tr := indexed(t)
	all, _ := tr.Snapshot()
	checkIndex(t, tr, all)
	v := tr.View()
	odd := func(j string) bool { return j[3]%2 == 1 }
	for _, tc := range []struct {
		name string
		q    presence.Query
	}{
		{"everyone", presence.Query{}},
		{"after a cursor", presence.Query{After: "u150@c.org"}},
		{"after an unknown cursor", presence.Query{After: "u15"}},
		{"a served domain", presence.Query{Domains: []string{"a.org"}}},
		{"two domains, one not served", presence.Query{Domains: []string{"b.org", "d.org"}, After: "u100"}},
		{"an unknown domain", presence.Query{Domains: []string{"zz.org"}}},
		{"users", presence.Query{Users: []string{"u005@b.org", "u002@c.org", "u002@c.org", "nobody@a.org"}}},
		{"users and their domain", presence.Query{Users: []string{"u001@b.org", "u002@c.org"}, Domains: []string{"b.org"}}},
		{"states", presence.Query{States: []string{"dnd", "offline"}}},
		{"domain and state after cursor", presence.Query{Domains: []string{"c.org"}, States: []string{"away"}, After: "u050@c.org"}},
		{"users and state", presence.Query{Users: []string{"u005@b.org", "u007@d.org"}, States: []string{"offline"}}},
		{"match", presence.Query{Match: odd, States: []string{"available"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			if err := v.Range(tc.q, func(u *presence.User) bool { got = append(got, u.JID); return true }); err != nil {
				t.Fatal(err)
			}
			if want := slowRange(all, tc.q); !slices.Equal(got, want) {
				t.Fatalf("got %d users %v\nwant %d %v", len(got), got, len(want), want)
			}
			// The tracker's own read: the live index, or a View of the
			// buckets it needs.
			var live []string
			seq, err := tr.Range(tc.q, func(u *presence.User) bool { live = append(live, u.JID); return true })
			if err != nil || seq != v.Seq() || !slices.Equal(live, got) {
				t.Fatalf("Tracker.Range: %v at %d (%v)\nView.Range: %v at %d", live, seq, err, got, v.Seq())
			}
			// A Limit stops it there.
			if len(got) > 3 {
				q := tc.q
				q.Limit = 3
				var first []string
				_, _ = tr.Range(q, func(u *presence.User) bool { first = append(first, u.JID); return true })
				if !slices.Equal(first, got[:3]) {
					t.Fatalf("Limit 3: %v", first)
				}
			}
			counts, err := v.Count(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, d := range counts {
				n += d.Total()
			}
			if tc.q.After == "" && n != len(got) {
				t.Fatalf("Count says %d users, Range %d", n, len(got))
			}
			tcounts, tseq, err := tr.Count(tc.q)
			sortCounts := func(c []presence.DomainCounts) {
				slices.SortFunc(c, func(a, b presence.DomainCounts) int { return strings.Compare(a.Domain, b.Domain) })
			}
			sortCounts(counts)
			sortCounts(tcounts)
			if err != nil || tseq != v.Seq() || !reflect.DeepEqual(tcounts, counts) {
				t.Fatalf("Tracker.Count: %+v at %d (%v)\nView.Count: %+v", tcounts, tseq, err, counts)
			}
		})
	}
	if _, err := tr.Range(presence.Query{States: []string{"busy"}}, func(*presence.User) bool { return true }); err == nil ||
		!strings.HasPrefix(err.Error(), "presence: ") {
		t.Fatalf("a bad state, Tracker.Range: %v", err)
	}
	if _, _, err := tr.Count(presence.Query{States: []string{"busy"}}); err == nil {
		t.Fatal("a bad state, Tracker.Count: no error")
	}
	if err := v.Range(presence.Query{States: []string{"busy"}}, func(*presence.User) bool { return true }); err == nil ||
		!strings.HasPrefix(err.Error(), "presence: ") {
		t.Fatalf("a bad state: %v", err)
	}
}

// TestViewIsolated: a View does not move with later updates, and pages
// stop where asked.
func TestViewIsolated(t *testing.T) {
	tr := indexed(t)
	v := tr.View()
	before, _ := tr.Snapshot()
	for i := range 300 {
		tr.Apply(presence.Update{User: fmt.Sprintf("new%03d@a.org", i), Available: true})
		tr.Apply(presence.Update{User: fmt.Sprintf("u%03d@a.org", i), Resource: "r"})
	}
	if v.Len() != len(before) {
		t.Fatalf("the view grew to %d users from %d", v.Len(), len(before))
	}
	var page []string
	_ = v.Range(presence.Query{}, func(u *presence.User) bool { page = append(page, u.JID); return len(page) < 10 })
	if len(page) != 10 || page[0] != before[0].JID {
		t.Fatalf("page %v", page)
	}
	for _, u := range before {
		got, ok := v.Get(u.JID)
		if !ok || !reflect.DeepEqual(visible(got), visible(u)) {
			t.Fatalf("the view changed: %+v, was %+v", got, u)
		}
	}
	if again, twice := tr.View(), tr.View(); again == v || again != twice {
		t.Fatal("a View is reused while nothing changed, and only then")
	}
}

// TestRangeSteps: a range longer than one step of the tracker's lock
// hands out every user once, in JID order, each as its step read it,
// while updates go on between the steps; the seq is where it began.
func TestRangeSteps(t *testing.T) {
	tr := presence.New(presence.Options{Domains: []string{"a.org"}})
	const n = 2000
	for i := range n {
		tr.Apply(presence.Update{User: fmt.Sprintf("u%04d@a.org", i), Resource: "r", Available: true})
	}
	start := tr.Counts().Seq
	var got []string
	seq, err := tr.Range(presence.Query{States: []string{"available"}}, func(u *presence.User) bool {
		got = append(got, u.JID)
		// Between calls the lock is free (else this would deadlock):
		// move a user behind the cursor and one ahead of it away, and
		// bring one ahead back.
		k := len(got) - 1
		if k%100 == 0 && k+500 < n {
			tr.Apply(presence.Update{User: got[k], Resource: "r", Available: true, Show: presence.ShowAway})
			tr.Apply(presence.Update{User: fmt.Sprintf("u%04d@a.org", k+500), Resource: "r", Available: true, Show: presence.ShowAway})
		}
		return true
	})
	if err != nil || seq != start {
		t.Fatalf("seq %d, began at %d: %v", seq, start, err)
	}
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatal("not in order, or a user twice")
	}
	// Those moved away ahead of the cursor were missed only if a later
	// step read them: the first step (512) saw them all still available.
	for k := 0; k < 512-500; k += 100 {
		if !slices.Contains(got, fmt.Sprintf("u%04d@a.org", k+500)) {
			t.Fatalf("u%04d, read by the first step, is missing", k+500)
		}
	}
	missing := 0
	for k := 0; k+500 < n; k += 100 {
		if !slices.Contains(got, fmt.Sprintf("u%04d@a.org", k+500)) {
			missing++
		}
	}
	if len(got)+missing != n || missing == 0 {
		t.Fatalf("%d users and %d moved away ahead of the cursor, of %d", len(got), missing, n)
	}
}

// TestRecentView: RecentView hands out the last View while it is young
// enough, a new one after.
func TestRecentView(t *testing.T) {
	clk := &clock{now: time.Unix(1e9, 0)}
	tr := presence.New(presence.Options{Clock: clk})
	tr.Apply(presence.Update{User: "a@example.org", Available: true})
	v := tr.View()
	tr.Apply(presence.Update{User: "b@example.org", Available: true})
	if tr.RecentView(time.Second) != v {
		t.Fatal("a View of now is not reused")
	}
	clk.now = clk.now.Add(2 * time.Second) // older than maxAge, and than a second
	if w := tr.RecentView(time.Minute); w == v || w.Len() != 2 {
		t.Fatalf("a View of 2 s ago was reused (%d users)", w.Len())
	}
	if a, b := tr.RecentView(0), tr.RecentView(0); a != b {
		t.Fatal("a View of an unchanged tracker is taken again")
	}
}

// TestCountsBounded: domains outside Options.Domains count as other, and
// the counts follow every change, forgotten users included.
func TestCountsBounded(t *testing.T) {
	clk := &clock{now: time.Unix(1e9, 0)}
	tr := presence.New(presence.Options{Clock: clk, Domains: []string{"example.org"}, MaxUsers: 40})
	for i := range 30 {
		tr.Apply(presence.Update{User: fmt.Sprintf("u@d%d.example", i), Resource: "web", Available: true, TTL: time.Minute})
	}
	tr.Apply(presence.Update{User: "a@example.org", Resource: "pc", Available: true, Show: presence.ShowAway})
	c := tr.Counts()
	if len(c.Domains) != 2 || c.Domains[0].Domain != presence.OtherDomain || c.Domains[1].Domain != "example.org" {
		t.Fatalf("labels %+v", c.Domains)
	}
	if c.Domains[1].Users[3] != 1 || c.Domains[0].Online() != 30 || c.Domains[0].Total() != 30 {
		t.Fatalf("counts %+v", c.Domains)
	}
	clk.now = clk.now.Add(2 * time.Minute)
	tr.ExpireDue()
	all, _ := tr.Snapshot()
	checkIndex(t, tr, all)
	if c := tr.Counts(); c.Domains[0].Users[0] != 30 || c.Domains[0].Resources != 0 {
		t.Fatalf("after expiry %+v", c.Domains)
	}
}
