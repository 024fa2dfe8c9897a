package presence_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/store/memstore"
)

// The property test drives a Tracker and a deliberately simple reference
// model with the same random sequence of operations: presence, unavailable,
// clock steps, TTL expiry, pings answered or lost, probe expiry,
// reconciliation, drops and restarts. After every step it checks that
//
//   - every user's aggregate and resources equal the model's;
//   - after the timers ran, no resource is online past its TTL;
//   - a store fed only by the event feed (with a snapshot after a restart,
//     as the store writer does) holds exactly the tracker's state.
//
// Run with more cases: go test ./presence -run Model -rapid.checks=20000

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

type mres struct {
	show      presence.Show
	status    string
	prio      int
	since     time.Time
	expires   time.Time
	confirmed int64
	alive     int64 // the client's own word, not the server's
}

type model struct {
	clk     *clock
	users   map[string]map[string]*mres
	lastOff map[string]time.Time // when a resource of the user last left
	// answers: the server answered a probe for the user; stale: resources
	// that left a ping unanswered, and when.
	answers map[string]bool
	stale   map[presence.Ref]int64
}

var (
	userGen   = rapid.SampledFrom([]string{"a@x", "b@x", "c@y"})
	resGen    = rapid.SampledFrom([]string{"r1", "r2", "r3"})
	showGen   = rapid.SampledFrom([]presence.Show{"", "away", "chat", "dnd", "xa"})
	statusGen = rapid.SampledFrom([]string{"", "lunch", "busy"})
)

func (m *model) online(u, r string) *mres {
	if rs := m.users[u]; rs != nil {
		return rs[r]
	}
	return nil
}

func (m *model) remove(u, r string) {
	if _, ok := m.users[u][r]; ok {
		delete(m.users[u], r)
		m.lastOff[u] = m.clk.now
	}
}

func (m *model) apply(up presence.Update) {
	now := m.clk.now
	at := up.Time
	if at.IsZero() || at.After(now) {
		at = now
	}
	ref := presence.Ref{User: up.User, Resource: up.Resource}
	if up.Answer {
		defer func() {
			if m.users[up.User] != nil {
				m.answers[up.User] = true
			}
		}()
	}
	if !up.Available || !up.Answer {
		delete(m.stale, ref)
	} else if st, ok := m.stale[ref]; ok && m.online(up.User, up.Resource) == nil && (up.Time.IsZero() || up.Time.UnixNano() <= st) {
		return
	}
	if !up.Available {
		m.remove(up.User, up.Resource)
		return
	}
	var exp time.Time
	if up.TTL > 0 {
		exp = now.Add(up.TTL)
	}
	if m.users[up.User] == nil {
		m.users[up.User] = map[string]*mres{}
	}
	r := m.users[up.User][up.Resource]
	if r != nil && r.show == up.Show && r.status == up.Status && r.prio == up.Priority {
		r.confirmed, r.expires = now.UnixNano(), exp
		if !up.Answer {
			r.alive = now.UnixNano()
		}
		return
	}
	alive := now.UnixNano()
	if up.Answer {
		alive = 0
		if r != nil {
			alive = r.alive
		}
	}
	m.users[up.User][up.Resource] = &mres{show: up.Show, status: up.Status, prio: up.Priority,
		since: at, expires: exp, confirmed: now.UnixNano(), alive: alive}
}

// winner mirrors RFC 6121 with the tracker's documented tie-breaks.
func (m *model) winner(u string) (string, *mres) {
	var wn string
	var w *mres
	for name, r := range m.users[u] {
		if w == nil || r.prio > w.prio ||
			r.prio == w.prio && (r.since.After(w.since) || r.since.Equal(w.since) && name < wn) {
			wn, w = name, r
		}
	}
	return wn, w
}

func (m *model) check(t *rapid.T, tr *presence.Tracker) {
	all, _ := tr.Snapshot()
	checkIndex(t, tr, all)
	for _, u := range all {
		if u.Online && len(m.users[u.JID]) == 0 {
			t.Fatalf("%s is online in the tracker, offline in the model", u.JID)
		}
	}
	for u := range m.users {
		got, _ := tr.Get(u)
		wn, w := m.winner(u)
		if (w != nil) != got.Online {
			t.Fatalf("%s: online %v, model says %v", u, got.Online, w != nil)
		}
		if w != nil && (got.Show != w.show || got.Status != w.status || got.Priority != w.prio || got.Resources[0].Name != wn) {
			t.Fatalf("%s: aggregate %s %q %q %d, model %s %q %q %d", u, got.Resources[0].Name, got.Show, got.Status, got.Priority, wn, w.show, w.status, w.prio)
		}
		if len(got.Resources) != len(m.users[u]) {
			t.Fatalf("%s: %d resources, model %d", u, len(got.Resources), len(m.users[u]))
		}
		for _, r := range got.Resources {
			mr := m.users[u][r.Name]
			if mr == nil || mr.show != r.Show || mr.status != r.Status || mr.prio != r.Priority || !mr.expires.Equal(r.Expires) {
				t.Fatalf("%s/%s: %+v, model %+v", u, r.Name, r, mr)
			}
		}
	}
}

// replica is what a store sees: only events, and a snapshot on restart.
type replica struct {
	st  *memstore.Store
	sub *presence.Subscription
}

func (r *replica) follow(t *rapid.T, tr *presence.Tracker) {
	users, _, sub := tr.Subscribe(presence.Filter{}, 1<<16)
	if err := r.st.Replace(context.Background(), users); err != nil {
		t.Fatal(err)
	}
	r.sub = sub
}

func (r *replica) check(t *rapid.T, tr *presence.Tracker) {
	buf := make([]presence.Event, 256)
	for {
		n, err := r.sub.TryRead(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if err := r.st.Apply(context.Background(), buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := r.st.Load(context.Background())
	want, _ := tr.Snapshot()
	if d := diffUsers(got, want); d != "" {
		t.Fatalf("replaying the feed does not reproduce the state: %s", d)
	}
}

func diffUsers(got, want []presence.User) string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("15:04:05.000")
	}
	key := func(u presence.User) string {
		names := make([]string, 0, len(u.Resources))
		for _, r := range u.Resources {
			names = append(names, fmt.Sprintf("%s:%s:%s:%d:since=%s:exp=%s:idle=%s:%v", r.Name, r.Show, r.Status, r.Priority,
				ts(r.Since), ts(r.Expires), ts(r.Idle), r.Statuses))
		}
		slices.Sort(names)
		return fmt.Sprintf("%s online=%v show=%q status=%q prio=%d since=%s seen=%s res=%s", u.JID, u.Online, u.Show, u.Status,
			u.Priority, ts(u.Since), ts(u.LastSeen), strings.Join(names, ","))
	}
	var g, w []string
	for _, u := range got {
		g = append(g, key(u))
	}
	for _, u := range want {
		w = append(w, key(u))
	}
	if !slices.Equal(g, w) {
		return fmt.Sprintf("\n got %v\nwant %v", g, w)
	}
	return ""
}

func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		tr := presence.New(presence.Options{Clock: clk})
		m := &model{clk: clk, users: map[string]map[string]*mres{}, lastOff: map[string]time.Time{},
			answers: map[string]bool{}, stale: map[presence.Ref]int64{}}
		rep := &replica{st: memstore.New()}
		rep.follow(t, tr)
		const interval = 5 * time.Second

		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 11).Draw(t, "op"); op {
			case 0, 1, 2, 10: // available presence, sometimes with a TTL or a delay stamp, sometimes the server's answer to a probe
				up := presence.Update{User: userGen.Draw(t, "user"), Resource: resGen.Draw(t, "res"), Available: true,
					Show: showGen.Draw(t, "show"), Status: statusGen.Draw(t, "status"), Priority: rapid.IntRange(-2, 2).Draw(t, "prio")}
				if rapid.Bool().Draw(t, "ttl") {
					up.TTL = time.Duration(rapid.IntRange(1, 10).Draw(t, "ttlsec")) * time.Second
				}
				if rapid.Bool().Draw(t, "stamped") {
					up.Time = clk.now.Add(-time.Duration(rapid.IntRange(0, 3).Draw(t, "ago")) * time.Second)
				}
				up.Answer = op == 10
				tr.Apply(up)
				m.apply(up)
			case 3: // unavailable
				up := presence.Update{User: userGen.Draw(t, "user"), Resource: resGen.Draw(t, "res")}
				tr.Apply(up)
				m.apply(up)
			case 4: // time passes, then the timers run
				clk.now = clk.now.Add(time.Duration(rapid.IntRange(0, 4000).Draw(t, "ms")) * time.Millisecond)
				tr.ExpireDue()
				for u, rs := range m.users {
					for name, r := range rs {
						if !r.expires.IsZero() && !r.expires.After(clk.now) {
							m.remove(u, name)
						}
					}
				}
				for _, u := range tr.Users() {
					got, _ := tr.Get(u)
					for _, r := range got.Resources {
						if !r.Expires.IsZero() && !r.Expires.After(clk.now) {
							t.Fatalf("%s/%s online past its TTL (%v, now %v)", u, r.Name, r.Expires, clk.now)
						}
					}
				}
			case 5: // heartbeat: silent resources are pinged; answers or silence
				before := clk.now.Add(-interval)
				pinged := clk.now
				for _, ref := range tr.Silent(before, 100) {
					mr := m.online(ref.User, ref.Resource)
					if mr == nil || mr.alive >= before.UnixNano() || !mr.expires.IsZero() {
						t.Fatalf("Silent handed out %v, model %+v", ref, mr)
					}
					if rapid.Bool().Draw(t, "answers") {
						tr.Confirm(ref.User, ref.Resource)
						mr.confirmed, mr.alive = clk.now.UnixNano(), clk.now.UnixNano()
					} else {
						tr.ExpireResource(ref.User, ref.Resource, pinged, presence.ReasonTimeout)
						if mr.alive < pinged.UnixNano() {
							m.remove(ref.User, ref.Resource)
							m.stale[ref] = clk.now.UnixNano()
						}
					}
				}
			case 6: // a probe round: what nothing confirmed since before goes
				before := clk.now.Add(-time.Duration(rapid.IntRange(0, 3000).Draw(t, "back")) * time.Millisecond)
				tr.Expire(before, presence.ReasonReconcile)
				for u, rs := range m.users {
					for name, r := range rs {
						if r.confirmed < before.UnixNano() && r.expires.IsZero() {
							m.remove(u, name)
						}
					}
				}
			case 7: // reconciliation with an authoritative list for domain x
				at := clk.now.Add(-time.Duration(rapid.IntRange(0, 2000).Draw(t, "lag")) * time.Millisecond)
				var sessions []presence.Session
				for range rapid.IntRange(0, 4).Draw(t, "n") {
					sessions = append(sessions, presence.Session{User: userGen.Draw(t, "user"), Resource: resGen.Draw(t, "res"),
						Show: showGen.Draw(t, "show"), Priority: rapid.IntRange(-2, 2).Draw(t, "prio")})
				}
				tr.Reconcile(at, []string{"x"}, sessions)
				live := map[presence.Ref]presence.Session{}
				for _, s := range sessions {
					if strings.HasSuffix(s.User, "@x") {
						live[presence.Ref{User: s.User, Resource: s.Resource}] = s
					}
				}
				for u, rs := range m.users {
					if !strings.HasSuffix(u, "@x") {
						continue
					}
					for name, r := range rs {
						ref := presence.Ref{User: u, Resource: name}
						if !r.expires.IsZero() {
							continue // TTL resources are not the server's
						}
						if _, ok := live[ref]; ok {
							r.confirmed = clk.now.UnixNano()
							delete(live, ref)
						} else if r.confirmed <= at.UnixNano() {
							m.remove(u, name)
						}
					}
				}
				for _, s := range sessions {
					if _, ok := live[presence.Ref{User: s.User, Resource: s.Resource}]; ok {
						delete(live, presence.Ref{User: s.User, Resource: s.Resource})
						if m.lastOff[s.User].After(at) {
							continue // left after the snapshot: not brought back
						}
						if r := m.online(s.User, s.Resource); r != nil && !r.expires.IsZero() {
							continue // a TTL resource of that name: known, left alone
						}
						if _, ok := m.stale[presence.Ref{User: s.User, Resource: s.Resource}]; ok {
							continue // stopped answering pings: the server's list does not bring it back
						}
						answers := m.answers[s.User]
						m.apply(presence.Update{User: s.User, Resource: s.Resource, Available: true, Show: s.Show, Status: s.Status, Priority: s.Priority, Time: at, Answer: true})
						m.answers[s.User] = answers // a session list is no answer to a probe
					}
				}
			case 8: // the server reports an error for a user, or an admin removes it
				u := userGen.Draw(t, "user")
				reason := rapid.SampledFrom([]presence.Reason{presence.ReasonServer, presence.ReasonAdmin}).Draw(t, "reason")
				tr.Drop(u, reason)
				for name, r := range m.users[u] {
					if r.expires.IsZero() || reason == presence.ReasonAdmin {
						m.remove(u, name)
					}
				}
			case 9: // presenced restarts from its store: restored, unconfirmed
				users, _ := tr.Snapshot()
				rep.sub.Close()
				tr = presence.New(presence.Options{Clock: clk})
				tr.Restore(users)
				rep.follow(t, tr)
				clear(m.answers)
				clear(m.stale)
				for u, rs := range m.users {
					for _, r := range rs {
						r.confirmed, r.alive = 0, 0
					}
					if len(rs) > 0 {
						delete(m.lastOff, u) // a store keeps LastSeen only for offline users
					}
				}
			case 11: // a probe of one user went unanswered: settled by the probe or by pings
				u := userGen.Draw(t, "user")
				before := clk.now.Add(-time.Duration(rapid.IntRange(0, 3000).Draw(t, "back")) * time.Millisecond)
				tr.Settle(u, before, presence.ReasonReconcile)
				for name, r := range m.users[u] {
					if r.confirmed < before.UnixNano() && r.expires.IsZero() {
						if m.answers[u] {
							m.remove(u, name)
						} else {
							r.alive = 0
						}
					}
				}
			}
			m.check(t, tr)
			rep.check(t, tr)
		}
	})
}
