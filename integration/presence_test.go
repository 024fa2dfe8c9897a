//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/xmppclient"
)

// latencies collects, per test, the time from a client's presence to the
// matching WebSocket frame.
type latencies []time.Duration

func (l latencies) report(t *testing.T) {
	s := slices.Clone(l)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) > 0 {
		t.Logf("presence -> WebSocket frame: n=%d min=%v median=%v max=%v", len(s), s[0], s[len(s)/2], s[len(s)-1])
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

// wantREST polls the REST API until the user matches (the frame can
// arrive a moment before a concurrent GET would see it: they are equal once
// settled).
func wantREST(t *testing.T, d *daemon, bare string, check func(restUser) error) {
	t.Helper()
	eventually(t, "REST state of "+bare, 10*time.Second, func() error {
		u, code := d.user(t, bare)
		if code != 200 {
			return fmt.Errorf("GET /v1/presence/%s: %d", bare, code)
		}
		return check(u)
	})
}

func TestPresenceLifecycle(t *testing.T) { forEachServer(t, testPresenceLifecycle) }

func testPresenceLifecycle(t *testing.T, srv *xmppServer) {
	d := startPresencedOn(t, srv)
	d.waitConnected(t, 1)
	ws := d.stream(t)
	var lat latencies
	defer func() { lat.report(t) }()

	// alice logs in on her desktop.
	sent := time.Now()
	desk := d.login(t, "alice", xmppclient.Presence{Priority: 5, Status: "hello"})
	deskRes := desk.JID.Resourcepart()
	f := ws.expect(t, "alice online", func(f frame) bool { return f.JID == "alice@localhost" && f.Event == "online" })
	t.Logf("login and initial presence -> WebSocket frame: %v", f.received.Sub(sent))
	if f.Resource.Resource != deskRes || f.Resource.Priority != 5 || f.User.Show != "available" || f.User.Status != "hello" {
		t.Fatalf("online frame %+v", f)
	}
	wantREST(t, d, "alice@localhost", func(u restUser) error {
		if !u.Online || u.Show != "available" || len(u.Resources) != 1 || u.Resources[0].Resource != deskRes {
			return fmt.Errorf("%+v", u)
		}
		return nil
	})

	// She sets show and status.
	sent = time.Now()
	if err := desk.Presence(ctx(t), xmppclient.Presence{Show: "away", Status: "lunch", Priority: 5}); err != nil {
		t.Fatal(err)
	}
	f = ws.expect(t, "alice away", func(f frame) bool { return f.JID == "alice@localhost" && f.Event == "changed" })
	lat = append(lat, f.received.Sub(sent))
	if f.User.Show != "away" || f.User.Status != "lunch" {
		t.Fatalf("changed frame %+v", f)
	}
	wantREST(t, d, "alice@localhost", func(u restUser) error {
		if u.Show != "away" || u.Status != "lunch" {
			return fmt.Errorf("%+v", u)
		}
		return nil
	})

	// A burst of status changes, each timed from send to frame.
	for i := range 20 {
		status := fmt.Sprintf("lunch %d", i)
		sent = time.Now()
		if err := desk.Presence(ctx(t), xmppclient.Presence{Show: "away", Status: status, Priority: 5}); err != nil {
			t.Fatal(err)
		}
		f = ws.expect(t, status, func(f frame) bool { return f.Event == "changed" && f.User.Status == status })
		lat = append(lat, f.received.Sub(sent))
	}
	if err := desk.Presence(ctx(t), xmppclient.Presence{Show: "away", Status: "lunch", Priority: 5}); err != nil {
		t.Fatal(err)
	}
	ws.expect(t, "lunch again", func(f frame) bool { return f.Event == "changed" && f.User.Status == "lunch" })

	// bob logs in, do not disturb.
	sent = time.Now()
	bob := d.login(t, "bob", xmppclient.Presence{Show: "dnd", Status: "focus"})
	f = ws.expect(t, "bob online", func(f frame) bool { return f.JID == "bob@localhost" && f.Event == "online" })
	t.Logf("login and initial presence -> WebSocket frame: %v", f.received.Sub(sent))
	if f.User.Show != "dnd" || f.User.Status != "focus" {
		t.Fatalf("bob's frame %+v", f)
	}
	wantREST(t, d, "bob@localhost", func(u restUser) error {
		if !u.Online || u.Show != "dnd" || u.Status != "focus" {
			return fmt.Errorf("%+v", u)
		}
		return nil
	})

	// alice opens a second resource with a higher priority: it wins.
	phone := d.login(t, "alice", xmppclient.Presence{Show: "chat", Status: "on the go", Priority: 10})
	phoneRes := phone.JID.Resourcepart()
	f = ws.expect(t, "alice's phone online", func(f frame) bool {
		return f.JID == "alice@localhost" && f.Event == "online" && f.Resource.Resource == phoneRes
	})
	if f.User.Show != "chat" || f.User.Resource != phoneRes {
		t.Fatalf("a priority-10 resource must win: %+v", f)
	}
	wantREST(t, d, "alice@localhost", func(u restUser) error {
		if u.Show != "chat" || len(u.Resources) != 2 || u.Resources[0].Resource != phoneRes || u.Resources[1].Show != "away" {
			return fmt.Errorf("%+v", u)
		}
		return nil
	})
	if users := d.list(t); len(users) != 2 || users[0].JID != "alice@localhost" || users[1].JID != "bob@localhost" {
		t.Fatalf("GET /v1/presence: %+v", users)
	}

	// The phone goes unavailable: the desktop wins again.
	sent = time.Now()
	if err := phone.Unavailable(ctx(t)); err != nil {
		t.Fatal(err)
	}
	f = ws.expect(t, "alice's phone offline", func(f frame) bool { return f.Event == "offline" && f.Resource.Resource == phoneRes })
	lat = append(lat, f.received.Sub(sent))
	if f.Reason != "client" || !f.User.Online || f.User.Show != "away" || f.User.Resource != deskRes {
		t.Fatalf("offline frame %+v", f)
	}
	wantREST(t, d, "alice@localhost", func(u restUser) error {
		if !u.Online || u.Show != "away" || len(u.Resources) != 1 || u.Resources[0].Resource != deskRes {
			return fmt.Errorf("%+v", u)
		}
		return nil
	})

	// alice logs out (the server sends the unavailable for her).
	sent = time.Now()
	if err := desk.Close(); err != nil {
		t.Logf("closing alice's desktop: %v", err)
	}
	f = ws.expect(t, "alice offline", func(f frame) bool { return f.Event == "offline" && f.Resource.Resource == deskRes })
	lat = append(lat, f.received.Sub(sent))
	if f.User.Online {
		t.Fatalf("alice has no resource left but is online: %+v", f)
	}
	wantREST(t, d, "alice@localhost", func(u restUser) error {
		if u.Online || u.Show != "offline" || len(u.Resources) != 0 || u.LastSeen == nil {
			return fmt.Errorf("%+v", u)
		}
		return nil
	})

	// bob's connection is cut without a goodbye.
	bob.Kill()
	ws.expect(t, "bob offline", func(f frame) bool { return f.JID == "bob@localhost" && f.Event == "offline" && !f.User.Online })
	wantREST(t, d, "bob@localhost", func(u restUser) error {
		if u.Online {
			return fmt.Errorf("%+v", u)
		}
		return nil
	})
	t.Logf("component handshakes: %v", d.handshakes())
}

// TestServerRestart restarts ejabberd under a running presenced: the
// component reconnects by itself, probes, and reports the right state
// again; the WebSocket client sees it all on the same stream.
func TestServerRestart(t *testing.T) { forEachServer(t, testServerRestart) }

func testServerRestart(t *testing.T, srv *xmppServer) {
	d := startPresencedOn(t, srv, "PRESENCED_LINK_GRACE=5m") // the probe, not the grace period, must fix the state
	d.waitConnected(t, 1)
	ws := d.stream(t)
	carol := d.login(t, "carol", xmppclient.Presence{Show: "away"})
	dave := d.login(t, "dave", xmppclient.Presence{})
	ws.expect(t, "carol online", func(f frame) bool { return f.JID == "carol@localhost" && f.Event == "online" })
	ws.expect(t, "dave online", func(f frame) bool { return f.JID == "dave@localhost" && f.Event == "online" })
	oldCarol := carol.JID.Resourcepart()

	if err := srv.run("stop"); err != nil {
		t.Fatal(err)
	}
	<-carol.Done()
	<-dave.Done()
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	// carol comes back at once; dave does not.
	carol2 := d.login(t, "carol", xmppclient.Presence{Show: "xa", Status: "back"})
	d.waitConnected(t, 2)

	ws.expect(t, "dave offline", func(f frame) bool { return f.JID == "dave@localhost" && f.Event == "offline" })
	wantREST(t, d, "carol@localhost", func(u restUser) error {
		if !u.Online || u.Show != "xa" || len(u.Resources) != 1 || u.Resources[0].Resource != carol2.JID.Resourcepart() {
			return fmt.Errorf("want carol online with only her new resource: %+v", u)
		}
		return nil
	})
	wantREST(t, d, "carol@localhost", func(u restUser) error {
		for _, r := range u.Resources {
			if r.Resource == oldCarol {
				return fmt.Errorf("carol's old resource is a ghost: %+v", u)
			}
		}
		return nil
	})
	wantREST(t, d, "dave@localhost", func(u restUser) error {
		if u.Online {
			return fmt.Errorf("dave did not come back but is online: %+v", u)
		}
		return nil
	})
	// ejabberd may send the unavailables as it shuts down, or not at all:
	// either way the resync after the reconnect must have probed both users
	// and left the state above.
	eventually(t, "the resync after the reconnect", 15*time.Second, func() error {
		if len(d.logs.matches(`msg="component: resynced" component=presence.localhost probed=2`)) == 0 {
			return fmt.Errorf("no resync has probed both known users yet")
		}
		return nil
	})
	if u, _ := d.user(t, "dave@localhost"); u.Online {
		t.Fatalf("dave is online after the resync: %+v", u)
	}
	t.Logf("component handshakes: %v", d.handshakes())
}

// TestWrongSecret: the real server refuses the handshake; presenced says
// so clearly and keeps serving its API while it waits to retry.
func TestWrongSecret(t *testing.T) { forEachServer(t, testWrongSecret) }

func testWrongSecret(t *testing.T, srv *xmppServer) {
	d := startPresencedOn(t, srv, "PRESENCED_SECRET=wrong")
	eventually(t, "the refusal in the log", 20*time.Second, func() error {
		if len(d.logs.matches("the server refused the handshake")) == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if users := d.list(t); len(users) != 0 {
		t.Fatalf("users without a link: %+v", users)
	}
}

// TestFrozenClientTimesOut: a client process that stops dead without
// closing its connection (SIGSTOP: what a crashed machine or a lost network
// looks like to the server, which keeps the session) goes offline through
// the ping timeout. A killed process would close its socket, and the server
// would report unavailable at once; that path is in TestPresenceLifecycle.
func TestFrozenClientTimesOut(t *testing.T) { forEachServer(t, testFrozenClientTimesOut) }

func testFrozenClientTimesOut(t *testing.T, srv *xmppServer) {
	d := startPresencedOn(t, srv, "PRESENCED_PING_INTERVAL=1s", "PRESENCED_PING_TIMEOUT=2s")
	d.waitConnected(t, 1)
	ws := d.stream(t)

	sim := exec.Command(simBinary, "-c2s", srv.env["XMPP_C2S_ADDR"], "-domain", srv.env["XMPP_DOMAIN"],
		"-users", "erin:"+passwords["erin"], "-hold")
	var simLog bytes.Buffer
	sim.Stderr = &simLog
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sim.Process.Signal(syscall.SIGCONT)
		_ = sim.Process.Kill()
		_ = sim.Wait()
		if t.Failed() {
			t.Logf("presenced-sim logs:\n%s", simLog.String())
		}
	})
	ws.expect(t, "erin online", func(f frame) bool { return f.JID == "erin@localhost" && f.Event == "online" })

	// While erin is alive, pings are answered: she stays online across
	// several ping intervals (the next pings are checked below by waiting).
	if err := sim.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	f := ws.expect(t, "erin offline", func(f frame) bool { return f.JID == "erin@localhost" && f.Event == "offline" })
	if f.Reason != "timeout" || f.User.Online {
		t.Fatalf("offline frame %+v, want reason timeout", f)
	}
	t.Logf("frozen client offline after %v (ping interval 1s, timeout 2s)", time.Since(frozen).Round(time.Millisecond))
	wantREST(t, d, "erin@localhost", func(u restUser) error {
		if u.Online {
			return fmt.Errorf("%+v", u)
		}
		return nil
	})
}

// TestLiveClientAnswersPings: a client that stays connected and answers
// pings is never taken offline by the heartbeat.
func TestLiveClientAnswersPings(t *testing.T) { forEachServer(t, testLiveClientAnswersPings) }

func testLiveClientAnswersPings(t *testing.T, srv *xmppServer) {
	d := startPresencedOn(t, srv, "PRESENCED_PING_INTERVAL=1s", "PRESENCED_PING_TIMEOUT=2s")
	d.waitConnected(t, 1)
	ws := d.stream(t)
	d.login(t, "alice", xmppclient.Presence{Status: "here"})
	ws.expect(t, "alice online", func(f frame) bool { return f.JID == "alice@localhost" && f.Event == "online" })
	// Wait for at least three answered pings (debug log of the tracker is
	// not needed: a failed ping would publish an offline event).
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-ws.frames:
			if f.Event == "offline" {
				t.Fatalf("a live client went offline: %+v", f)
			}
		case <-deadline:
			if u, _ := d.user(t, "alice@localhost"); !u.Online {
				t.Fatal("alice is offline")
			}
			return
		}
	}
}
