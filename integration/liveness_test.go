//go:build integration

package integration

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/xmppclient"
)

// The heartbeat settings of the liveness tests: the ghost bound they check
// is ping interval + ping timeout + probe wait (2 s, from startPresenced),
// plus a tick.
const (
	livePingInterval = 4 * time.Second
	livePingTimeout  = 2 * time.Second
	liveSweep        = 3 * time.Second
	ghostBound       = livePingInterval + livePingTimeout + 2*time.Second + time.Second
)

func startLiveness(t *testing.T, srv *xmppServer) *daemon {
	t.Helper()
	d := startPresencedOn(t, srv,
		"PRESENCED_PING_INTERVAL="+livePingInterval.String(),
		"PRESENCED_PING_TIMEOUT="+livePingTimeout.String(),
		"PRESENCED_SWEEP_INTERVAL="+liveSweep.String())
	d.waitConnected(t, 1)
	return d
}

var userSeq atomic.Int64

// newUser registers a fresh user on srv and returns its name and
// password. A roster user has the component on its roster, as provisioning
// leaves it; the other knows nothing of the component and can only send it
// directed presence.
func newUser(t *testing.T, srv *xmppServer, roster bool) (string, string) {
	t.Helper()
	name := fmt.Sprintf("live%d-%d", time.Now().UnixNano()%1e6, userSeq.Add(1))
	pw := name + "-pw"
	if err := srv.addUsers(roster, name, pw); err != nil {
		t.Fatal(err)
	}
	return name, pw
}

// liveClient logs in one resource of user on srv (ejabberd picks its name
// and ignores the one asked for) that answers as a says, and makes it
// available: broadcast presence, and for a user without the component on
// the roster also directed presence to the component.
func liveClient(t *testing.T, srv *xmppServer, user, pw, resource string, a xmppclient.Answers, directed bool) *xmppclient.Client {
	t.Helper()
	c := srv.dial(t, user, pw, resource, a)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Presence(ctx, xmppclient.Presence{Status: resource}); err != nil {
		t.Fatal(err)
	}
	if directed {
		if err := c.Presence(ctx, xmppclient.Presence{Status: resource, To: srv.env["XMPP_COMPONENT_JID"]}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// resources returns the online resources of bare, sorted.
func (d *daemon) resources(t *testing.T, bare string) []string {
	t.Helper()
	u, _ := d.user(t, bare)
	var out []string
	for _, r := range u.Resources {
		out = append(out, r.Resource)
	}
	slices.Sort(out)
	return out
}

func (d *daemon) waitResources(t *testing.T, bare string, timeout time.Duration, want ...string) {
	t.Helper()
	slices.Sort(want)
	eventually(t, fmt.Sprintf("%s online as %v", bare, want), timeout, func() error {
		if got := d.resources(t, bare); !slices.Equal(got, want) {
			return fmt.Errorf("online: %v", got)
		}
		return nil
	})
}

// TestFrozenResourceMatrix: a resource whose client freezes (its TCP
// connection stays open, nothing answers) goes offline within ping
// interval + ping timeout + probe wait, whatever its siblings do and
// whatever the server answers to probes for it, and stays offline through
// the probe sweeps that follow; its siblings stay online. For users known
// by roster subscription and by directed presence alike.
func TestFrozenResourceMatrix(t *testing.T) { forEachServer(t, testFrozenResourceMatrix) }

func testFrozenResourceMatrix(t *testing.T, srv *xmppServer) {
	d := startLiveness(t, srv)
	cases := []struct {
		name     string
		siblings []xmppclient.Answers
		frozen   int
		roster   bool // only for roster users (see docs/reliability.md)
	}{
		{name: "alone", frozen: 1},
		{name: "sibling pongs", siblings: []xmppclient.Answers{xmppclient.AnswerPing}, frozen: 1},
		{name: "sibling answers pings with an error", siblings: []xmppclient.Answers{xmppclient.AnswerDisco}, frozen: 1},
		{name: "sibling answers everything with an error", siblings: []xmppclient.Answers{xmppclient.AnswerNone}, frozen: 1, roster: true},
		{name: "two frozen", frozen: 2},
		{name: "two frozen, a sibling that pongs", siblings: []xmppclient.Answers{xmppclient.AnswerPing}, frozen: 2},
	}
	for _, kind := range []string{"roster", "directed"} {
		for _, tc := range cases {
			if tc.roster && kind != "roster" {
				continue
			}
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				directed := kind == "directed"
				user, pw := newUser(t, srv, !directed)
				bare := srv.bare(user)
				var frozen []*xmppclient.Client
				var all, live []string
				for i := range tc.frozen {
					c := liveClient(t, srv, user, pw, fmt.Sprintf("frozen%d", i), xmppclient.AnswerPing, directed)
					frozen = append(frozen, c)
					all = append(all, c.JID.Resourcepart())
				}
				for i, a := range tc.siblings {
					c := liveClient(t, srv, user, pw, fmt.Sprintf("live%d", i), a, directed)
					all, live = append(all, c.JID.Resourcepart()), append(live, c.JID.Resourcepart())
				}
				d.waitResources(t, bare, 15*time.Second, all...)
				// Let a probe sweep and a ping round pass while everyone is live.
				time.Sleep(liveSweep)
				if got := d.resources(t, bare); len(got) != len(all) {
					t.Fatalf("before any freeze, online: %v, want %v", got, all)
				}
				for _, c := range frozen {
					c.Freeze()
				}
				began := time.Now()
				// The bound is docs/reliability.md's; twice it leaves room for a
				// loaded machine (the time taken is logged).
				d.waitResources(t, bare, 2*ghostBound, live...)
				t.Logf("frozen resources offline after %v (bound %v)", time.Since(began).Round(100*time.Millisecond), ghostBound)
				// The sweeps that follow get the server's cached presence for
				// the frozen sessions: it must not bring them back.
				for range 3 {
					time.Sleep(liveSweep)
					if got := d.resources(t, bare); !slices.Equal(got, live) {
						t.Fatalf("%v after the freeze, online: %v, want %v", time.Since(began).Round(time.Second), got, live)
					}
				}
			})
		}
	}
}

// TestDirectedPresence: a user without the component on the roster who
// sends it directed presence is tracked, stays online through probe sweeps
// (which its server does not answer) while its client is there, with or
// without XEP-0199, and goes offline when it leaves.
func TestDirectedPresence(t *testing.T) { forEachServer(t, testDirectedPresence) }

func testDirectedPresence(t *testing.T, srv *xmppServer) {
	d := startLiveness(t, srv)
	user, pw := newUser(t, srv, false)
	bare := srv.bare(user)
	pinged := liveClient(t, srv, user, pw, "pinged", xmppclient.AnswerPing, true)
	disco := liveClient(t, srv, user, pw, "noping", xmppclient.AnswerDisco, true)
	d.waitResources(t, bare, 15*time.Second, pinged.JID.Resourcepart(), disco.JID.Resourcepart())
	// Three sweeps and at least one ping round: both stay.
	for range 4 {
		time.Sleep(liveSweep)
		if got := d.resources(t, bare); len(got) != 2 {
			t.Fatalf("a connected directed-presence user lost resources: online %v", got)
		}
	}
	if err := disco.Close(); err != nil {
		t.Log(err)
	}
	d.waitResources(t, bare, 10*time.Second, pinged.JID.Resourcepart())
	pinged.Kill() // the server notices the closed socket and says unavailable
	d.waitResources(t, bare, 10*time.Second)
	if u, _ := d.user(t, bare); u.Online {
		t.Fatalf("after both left: %+v", u)
	}
}

// TestUnavailableStatus: the status text of unavailable presence is the
// user's last word, shown while offline.
func TestUnavailableStatus(t *testing.T) { forEachServer(t, testUnavailableStatus) }

func testUnavailableStatus(t *testing.T, srv *xmppServer) {
	d := startPresencedOn(t, srv)
	d.waitConnected(t, 1)
	user, pw := newUser(t, srv, true)
	bare := srv.bare(user)
	c := liveClient(t, srv, user, pw, "pc", xmppclient.AnswerPing, false)
	d.waitResources(t, bare, 15*time.Second, c.JID.Resourcepart())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Goodbye(ctx, "gone home"); err != nil {
		t.Fatal(err)
	}
	eventually(t, bare+" offline with its last word", 10*time.Second, func() error {
		if u, _ := d.user(t, bare); u.Online || u.Status != "gone home" {
			return fmt.Errorf("online %v, status %q", u.Online, u.Status)
		}
		return nil
	})
}
