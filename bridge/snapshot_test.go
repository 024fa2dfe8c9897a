package bridge

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presenced/presenced/bridge/auth"
	"github.com/presenced/presenced/internal/poll"
	"github.com/presenced/presenced/presence"
)

// userState is what a client keeps of one user, and what the tracker has.
type userState struct {
	online       bool
	show, status string
}

// trackerState is every user the tracker knows, as a client of the full
// feed should hold them, and the feed position.
func trackerState(tr *presence.Tracker) (map[string]userState, uint64) {
	v := tr.View()
	out := map[string]userState{}
	_ = v.Range(presence.Query{}, func(u *presence.User) bool { // no states: no error
		out[u.JID] = userState{u.Online, wireShow(u.Online, u.Show), u.Status}
		return true
	})
	return out, v.Seq()
}

// follow reads a full-feed stream from its snapshot until the change of
// seq last, applying every change, and checks that the changes follow the
// snapshot without a gap or a duplicate.
func follow(conn *websocket.Conn, last func() uint64) (map[string]userState, uint64, error) {
	var snap snapshotFrame
	if err := readInto(conn, &snap); err != nil {
		return nil, 0, err
	}
	if snap.Type != "snapshot" {
		return nil, 0, fmt.Errorf("first frame %q, want a snapshot", snap.Type)
	}
	state := map[string]userState{}
	for _, u := range snap.Users {
		state[u.JID] = userState{u.Online, u.Show, u.Status}
	}
	seq := snap.Seq
	for {
		if end := last(); end != 0 && seq >= end {
			return state, snap.Seq, nil
		}
		var f changeFrame
		if err := readInto(conn, &f); err != nil {
			return nil, 0, fmt.Errorf("after seq %d: %w", seq, err)
		}
		if f.Type != "change" || f.Seq != seq+1 {
			return nil, 0, fmt.Errorf("after seq %d (snapshot %d) came %s seq %d", seq, snap.Seq, f.Type, f.Seq)
		}
		seq = f.Seq
		state[f.JID] = userState{f.User.Online, f.User.Show, f.User.Status}
	}
}

// TestConnectStormSharesSnapshot: 50 clients of the full feed connect at
// once while changes stream in. Each ends with the tracker's state, its
// changes following its snapshot without a gap or duplicate, and the
// server encoded only a few snapshots for all of them.
func TestConnectStormSharesSnapshot(t *testing.T) {
	tr := presence.New(presence.Options{})
	for i := range 20 {
		up(tr, fmt.Sprintf("u%d@x", i), presence.ShowNone, "start")
	}
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(New(Config{Tracker: tr, Registerer: reg, RatePerSecond: 1e6, RateBurst: 1e6}))
	defer srv.Close()

	stop := make(chan struct{})
	updated := make(chan struct{})
	go func() {
		defer close(updated)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
			show := presence.ShowNone
			if i%3 == 0 {
				show = presence.ShowAway
			}
			up(tr, fmt.Sprintf("u%d@x", i%20), show, fmt.Sprint("s", i))
		}
	}()
	// The stream is steady before the storm.
	steady := tr.Counts().Seq + 20
	poll.True(t, "20 updates before the storm", 10*time.Second, func() bool { return tr.Counts().Seq >= steady })

	const clients = 50
	var last atomic.Uint64 // the final seq, once the updates stopped
	var connected sync.WaitGroup
	connected.Add(clients)
	results := make(chan error, clients)
	var snaps sync.Map
	for i := range clients {
		go func() {
			conn, _, err := dialQuery(t, srv, "", nil)
			connected.Done()
			if err != nil {
				results <- err
				return
			}
			state, seq, err := follow(conn, last.Load)
			if err == nil {
				snaps.Store(i, seq)
				want, _ := trackerState(tr)
				for jid, w := range want {
					if state[jid] != w {
						err = fmt.Errorf("client %d: %s is %+v, the tracker has %+v", i, jid, state[jid], w)
						break
					}
				}
				if err == nil && len(state) != len(want) {
					err = fmt.Errorf("client %d holds %d users, the tracker %d", i, len(state), len(want))
				}
			}
			results <- err
		}()
	}
	connected.Wait()
	// Changes after the last connect too.
	after := tr.Counts().Seq + 20
	poll.True(t, "20 updates after the last connect", 10*time.Second, func() bool { return tr.Counts().Seq >= after })
	close(stop)
	<-updated
	// A last change, whose seq the clients know before it comes: a client
	// that read the one before waits for it.
	_, final := trackerState(tr)
	last.Store(final + 1)
	up(tr, "u0@x", presence.ShowDND, "end")
	for range clients {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	encodes := counterValue(reg, "presence_bridge_snapshot_encodes_total")
	shared := counterValue(reg, "presence_bridge_snapshot_shared_total")
	if encodes < 1 || encodes > 5 {
		t.Errorf("%v snapshots encoded for %d connects, want a few", encodes, clients)
	}
	if encodes+shared != clients {
		t.Errorf("%v encoded and %v shared for %d connects", encodes, shared, clients)
	}
	seqs := map[uint64]bool{}
	snaps.Range(func(_, v any) bool { seqs[v.(uint64)] = true; return true })
	t.Logf("%d connects: %v encodes, %v shared, %d distinct snapshot seqs", clients, encodes, shared, len(seqs))
}

// TestSharedSnapshotBounds: a second connect shares the first one's
// snapshot only while it is recent and the hub's window still holds the
// changes after it; otherwise it gets a fresh snapshot at the feed's
// position, and the changes after that.
func TestSharedSnapshotBounds(t *testing.T) {
	tests := []struct {
		name string
		// between runs after the changes, before the second connect.
		between     func(clk *fixedClock)
		changes     int // applied between the two connects
		wantEncodes float64
		wantFresh   bool          // the second snapshot is at the feed's position
		slow        time.Duration // how long the first encoding takes, by the clock
	}{
		{name: "recent, in the window", changes: 5, wantEncodes: 1},
		{name: "out of the window", changes: 20, wantEncodes: 2, wantFresh: true},
		{name: "too old", changes: 2, wantEncodes: 2, wantFresh: true,
			between: func(clk *fixedClock) { clk.add(snapshotMaxAge) }},
		// An encoding that took 3 s serves for 3 s.
		{name: "older, but its encoding took longer", changes: 2, wantEncodes: 1, slow: 3 * time.Second,
			between: func(clk *fixedClock) { clk.add(2 * time.Second) }},
		{name: "older than its encoding took", changes: 2, wantEncodes: 2, wantFresh: true, slow: 3 * time.Second,
			between: func(clk *fixedClock) { clk.add(3 * time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := presence.New(presence.Options{})
			up(tr, "a@x", presence.ShowNone, "start")
			reg := prometheus.NewRegistry()
			b := New(Config{Tracker: tr, Registerer: reg, ResumeWindow: 8})
			clk := &fixedClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
			var calls atomic.Int32
			b.snapshots.now = func() time.Time {
				now := clk.Now()
				if calls.Add(1) == 1 { // the first encoding begins
					clk.add(tt.slow)
				}
				return now
			}
			srv := httptest.NewServer(b)
			defer srv.Close()
			first, snap := subscribe(t, srv, "")
			for i := range tt.changes {
				up(tr, "a@x", presence.ShowNone, fmt.Sprint("c", i))
			}
			var f changeFrame
			for f.Seq != snap.Seq+uint64(tt.changes) { // the hub has them all
				if err := readInto(first, &f); err != nil {
					t.Fatal(err)
				}
			}
			if tt.between != nil {
				tt.between(clk)
			}
			second, snap2 := subscribe(t, srv, "")
			want := snap.Seq
			if tt.wantFresh {
				want = f.Seq
			}
			if snap2.Seq != want {
				t.Fatalf("second snapshot at seq %d, want %d", snap2.Seq, want)
			}
			if got := counterValue(reg, "presence_bridge_snapshot_encodes_total"); got != tt.wantEncodes {
				t.Fatalf("%v snapshots encoded, want %v", got, tt.wantEncodes)
			}
			// Either way the changes follow, gap-free, to the last one
			// and beyond.
			up(tr, "a@x", presence.ShowAway, "end")
			for seq := snap2.Seq + 1; seq <= f.Seq+1; seq++ {
				var g changeFrame
				if err := readInto(second, &g); err != nil || g.Seq != seq {
					t.Fatalf("second client: %+v %v, want change seq %d", g, err, seq)
				}
				if seq == f.Seq+1 && g.User.Status != "end" {
					t.Fatalf("last change %+v", g)
				}
			}
		})
	}
}

// TestFilteredConnectsGetOwnSnapshots: clients with a filter or a limited
// token, connecting at the same moment as clients of the full feed, get
// snapshots of their own users; only the full feed's is shared.
func TestFilteredConnectsGetOwnSnapshots(t *testing.T) {
	tr := presence.New(presence.Options{})
	up(tr, "a@one", presence.ShowAway, "")
	up(tr, "b@one", presence.ShowNone, "")
	up(tr, "c@two", presence.ShowAway, "")
	up(tr, "d@two", presence.ShowDND, "")
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(New(Config{Tracker: tr, Registerer: reg, RatePerSecond: 1e6, RateBurst: 1e6,
		Authenticate: func(r *http.Request) (Access, error) {
			switch r.URL.Query().Get("access_token") {
			case "admin":
				return &auth.Claims{Admin: true}, nil
			case "ab":
				return &auth.Claims{Users: []string{"a@one", "b@one"}}, nil
			}
			return &auth.Claims{}, nil
		}}))
	defer srv.Close()
	tests := []struct {
		query string
		want  string // the snapshot's JIDs
	}{
		{"?access_token=admin", "a@one b@one c@two d@two"},
		{"?access_token=admin", "a@one b@one c@two d@two"},
		{"?access_token=admin", "a@one b@one c@two d@two"},
		{"?access_token=admin&domains=two", "c@two d@two"},
		{"?access_token=admin&show=away", "a@one c@two"},
		{"?access_token=ab", "a@one b@one"},
		{"?access_token=ab&show=away", "a@one"},
		{"?access_token=none", ""},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(tests))
	for i, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, _, err := dialQuery(t, srv, tt.query, nil)
			if err != nil {
				errs[i] = err
				return
			}
			var snap snapshotFrame
			if err := readInto(conn, &snap); err != nil {
				errs[i] = err
				return
			}
			var got []string
			for _, u := range snap.Users {
				got = append(got, u.JID)
			}
			slices.Sort(got)
			if strings.Join(got, " ") != tt.want {
				errs[i] = fmt.Errorf("%s: snapshot of %v, want %s", tt.query, got, tt.want)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// Five connects of their own, and the three of the full feed share
	// one (or, if they came far apart, a few).
	if got := counterValue(reg, "presence_bridge_snapshot_encodes_total"); got < 6 || got > 8 {
		t.Errorf("%v snapshots encoded, want 5 own and 1 to 3 shared", got)
	}
}

// TestFilteredConnectsShareRecentView: filtered clients connecting a
// moment apart encode their snapshots from one View (the same seq), and
// the changes after it come as for a resume, so that each ends with the
// users its filter selects as the tracker has them, one leaving the show
// filter included.
func TestFilteredConnectsShareRecentView(t *testing.T) {
	tr := presence.New(presence.Options{})
	up(tr, "a@one", presence.ShowAway, "")
	up(tr, "b@one", presence.ShowNone, "")
	up(tr, "c@two", presence.ShowAway, "")
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	const query = "?domains=one&show=away"
	first, snap1 := subscribe(t, srv, query)
	up(tr, "a@one", presence.ShowNone, "back")  // leaves the filter
	up(tr, "b@one", presence.ShowAway, "lunch") // enters it
	up(tr, "c@two", presence.ShowNone, "")      // another domain
	second, snap2 := subscribe(t, srv, query)
	if snap2.Seq != snap1.Seq || len(snap2.Users) != 1 || snap2.Users[0].JID != "a@one" {
		t.Fatalf("the second connect's snapshot is %+v at %d, want the first's View (a@one at %d)", snap2.Users, snap2.Seq, snap1.Seq)
	}
	up(tr, "z@one", presence.ShowAway, "last") // the end marker
	for i, conn := range []*websocket.Conn{first, second} {
		state := map[string]string{"a@one": "away"}
		for {
			var f changeFrame
			if err := readInto(conn, &f); err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			if f.Type != "change" || f.Seq <= snap1.Seq {
				t.Fatalf("client %d: %s at %d after a snapshot at %d", i, f.Type, f.Seq, snap1.Seq)
			}
			if state[f.JID] = f.User.Show; f.User.Show != "away" {
				delete(state, f.JID)
			}
			if f.JID == "z@one" {
				break
			}
		}
		if want := map[string]string{"b@one": "away", "z@one": "away"}; !reflect.DeepEqual(state, want) {
			t.Errorf("client %d holds %v, want %v", i, state, want)
		}
	}
}
