//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/presenced/presenced/component/mongooseim"
	"github.com/presenced/presenced/internal/xmppclient"
)

// The tests of what MongooseIM alone shows (issue 15): stream management
// sessions that the server holds after their client is gone, users on the
// session list who never let presenced see their presence, provisioning,
// and two presenced with one component JID.

// graphql returns a client of s's admin GraphQL API.
func (s *xmppServer) graphql() *mongooseim.Client {
	return &mongooseim.Client{Endpoint: s.env["MONGOOSEIM_GRAPHQL_URL"],
		User: s.env["MONGOOSEIM_GRAPHQL_USER"], Password: s.env["MONGOOSEIM_GRAPHQL_PASSWORD"]}
}

// listed returns the resources of bare that MongooseIM lists as sessions.
func (s *xmppServer) listed(t *testing.T, bare string) []string {
	t.Helper()
	sessions, err := s.graphql().ListSessions(ctx(t), s.env["XMPP_DOMAIN"])
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range sessions {
		if x.User == bare {
			out = append(out, x.Resource)
		}
	}
	slices.Sort(out)
	return out
}

// kick ends every session of bare on s (GraphQL session.kickUser).
func (s *xmppServer) kick(t *testing.T, bare string) {
	t.Helper()
	q := fmt.Sprintf(`mutation { session { kickUser(user: %s, reason: "test over") { kicked } } }`, strconv.Quote(bare))
	var out any
	if err := clusterGraphQL(ctx(t), s.env, q, &out); err != nil {
		t.Errorf("kicking %s: %v", bare, err)
	}
}

// smClient is a real XEP-0198 client (slixmpp, integration/smclient) that
// enabled stream management with resumption.
type smClient struct {
	cmd      *exec.Cmd
	resource string
	lines    chan string // what it prints after "ready"
}

// startSMClient logs user in with slixmpp on s and waits until the server
// enabled stream management with resumption.
func startSMClient(t *testing.T, s *xmppServer, user, pw, status string) *smClient {
	t.Helper()
	host, port, _ := net.SplitHostPort(s.env["XMPP_C2S_ADDR"])
	cmd := exec.Command("/usr/bin/python3", "smclient/smclient.py", s.bare(user)+"/sm", pw, host, port, status)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("smclient stderr:\n%s", stderr.String())
		}
	})
	// A killed client's session stays on the server for resumption (600 s):
	// end it, so that the tests after this one find the shared MongooseIM
	// without it.
	t.Cleanup(func() { s.kick(t, s.bare(user)) })
	ready := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case ready <- sc.Text():
			default: // nobody reads: drop
			}
		}
		close(ready)
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "ready ") || !strings.Contains(line, "sm=True") || strings.Contains(line, "resume=None") {
			t.Fatalf("smclient: %q, want stream management enabled with resumption", line)
		}
		f := strings.Fields(line)
		_, res, _ := strings.Cut(f[1], "/")
		return &smClient{cmd: cmd, resource: res, lines: ready}
	case <-time.After(30 * time.Second):
		t.Fatalf("smclient did not enable stream management within 30s: %s", stderr.String())
	}
	return nil
}

// TestMongooseIMStreamManagementCut (point 3): a XEP-0198 client whose TCP
// connection is cut. MongooseIM keeps its session for resumption
// (resume_timeout, 600 s by default) and lists it; presenced's pings go
// unanswered and take it offline within the ping bound, and neither the
// session list nor the server's answers to probes bring it back while the
// server holds it: the dashboard shows what the client does, not what the
// server keeps. With both reconcile policies.
func TestMongooseIMStreamManagementCut(t *testing.T) {
	for _, listed := range []string{"probe", "online"} {
		t.Run(listed, func(t *testing.T) {
			d := startPresencedOn(t, mim,
				"PRESENCED_PING_INTERVAL="+livePingInterval.String(),
				"PRESENCED_PING_TIMEOUT="+livePingTimeout.String(),
				"PRESENCED_SWEEP_INTERVAL="+liveSweep.String(),
				"PRESENCED_RECONCILE_INTERVAL=2s",
				"PRESENCED_RECONCILE_LISTED="+listed)
			d.waitConnected(t, 1)
			user, pw := newUser(t, mim, true)
			bare := mim.bare(user)
			c := startSMClient(t, mim, user, pw, "managed")
			d.waitResources(t, bare, 15*time.Second, c.resource)

			// Cut: SIGKILL closes the socket without a stream close.
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
			cut := time.Now()
			d.waitResources(t, bare, 2*ghostBound)
			t.Logf("cut stream-management session offline after %v (bound %v)", time.Since(cut).Round(100*time.Millisecond), ghostBound)
			if u, _ := d.user(t, bare); u.Online {
				t.Fatalf("%+v", u)
			}
			// MongooseIM still holds the session: reconcile passes (every 2 s)
			// and probe sweeps see it, and must not bring it back.
			for range 5 {
				time.Sleep(liveSweep)
				if got := mim.listed(t, bare); !slices.Equal(got, []string{c.resource}) {
					t.Fatalf("MongooseIM lists %v, want the held session %q", got, c.resource)
				}
				if got := d.resources(t, bare); len(got) != 0 {
					t.Fatalf("%v after the cut, online: %v while every ping goes unanswered", time.Since(cut).Round(time.Second), got)
				}
			}
		})
	}
}

// TestMongooseIMStreamManagementResume: the other side of point 3. A
// XEP-0198 client whose connection is cut goes offline on the ping bound;
// when it resumes the session within MongooseIM's window it sends no
// presence (the session's is the server's), so only asking it tells: the
// reconciler's next pass probes the user, the server answers for the held
// session, and presenced pings that resource once more (component
// recheck.go); the client's answer brings it back with its presence.
func TestMongooseIMStreamManagementResume(t *testing.T) {
	d := startPresencedOn(t, mim,
		"PRESENCED_PING_INTERVAL="+livePingInterval.String(),
		"PRESENCED_PING_TIMEOUT="+livePingTimeout.String(),
		"PRESENCED_SWEEP_INTERVAL="+liveSweep.String(),
		"PRESENCED_RECONCILE_INTERVAL=2s")
	d.waitConnected(t, 1)
	user, pw := newUser(t, mim, true)
	bare := mim.bare(user)
	c := startSMClient(t, mim, user, pw, "resumable")
	d.waitResources(t, bare, 15*time.Second, c.resource)

	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil { // cut, keep the state
		t.Fatal(err)
	}
	cut := time.Now()
	d.waitResources(t, bare, 2*ghostBound)
	t.Logf("cut session offline after %v", time.Since(cut).Round(100*time.Millisecond))
	time.Sleep(3 * time.Second) // reconcile passes while the client is away
	if got := d.resources(t, bare); len(got) != 0 {
		t.Fatalf("online while cut: %v", got)
	}

	if err := c.cmd.Process.Signal(syscall.SIGUSR2); err != nil { // resume
		t.Fatal(err)
	}
	select {
	case line := <-c.lines:
		if !strings.HasPrefix(line, "resumed ") || !strings.HasSuffix(line, "/"+c.resource) {
			t.Fatalf("smclient: %q, want the session resumed", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the client did not resume its session within 20s")
	}
	resumed := time.Now()
	// A reconcile pass (2 s), its probe's answer, one ping round trip.
	wantREST(t, d, bare, func(u restUser) error {
		if !u.Online || u.Status != "resumable" || len(u.Resources) != 1 || u.Resources[0].Resource != c.resource {
			return fmt.Errorf("want the resumed session back with its presence: %+v", u)
		}
		return nil
	})
	t.Logf("resumed session back online after %v", time.Since(resumed).Round(100*time.Millisecond))
	if len(d.logs.matches("a held session answered again")) == 0 {
		t.Error("presenced did not log the recheck that brought it back")
	}
}

// TestMongooseIMListedUsersWhoNeverSubscribed (point 2): MongooseIM lists
// the sessions of users who never put presenced on their roster. By
// default (reconcile policy probe) they never appear: the reconciler probes
// them, and their server does not answer a contact it does not know. With
// the explicit policy online they appear from the list alone, and the API
// says so (source session_list, plainly available, no status), while a
// user who lets presenced see its presence is shown as it says.
func TestMongooseIMListedUsersWhoNeverSubscribed(t *testing.T) {
	for _, listed := range []string{"probe", "online"} {
		t.Run(listed, func(t *testing.T) {
			d := startPresencedOn(t, mim, "PRESENCED_RECONCILE_INTERVAL=1s", "PRESENCED_RECONCILE_LISTED="+listed)
			d.waitConnected(t, 1)
			stranger, spw := newUser(t, mim, false)
			member, mpw := newUser(t, mim, true)
			mim.login(t, stranger, spw, xmppclient.Presence{Show: "dnd", Status: "not for presenced"})
			mim.login(t, member, mpw, xmppclient.Presence{Show: "away", Status: "for presenced"})
			wantREST(t, d, mim.bare(member), func(u restUser) error {
				if !u.Online || u.Show != "away" || u.Status != "for presenced" || len(u.Resources) != 1 || u.Resources[0].Source != "" {
					return fmt.Errorf("%+v", u)
				}
				return nil
			})
			eventually(t, "MongooseIM to list the stranger", 10*time.Second, func() error {
				if got := mim.listed(t, mim.bare(stranger)); len(got) != 1 {
					return fmt.Errorf("listed: %v", got)
				}
				return nil
			})
			if listed == "probe" {
				// Several reconcile passes (1 s apart) and their probes' waits.
				time.Sleep(6 * time.Second)
				if u, code := d.user(t, mim.bare(stranger)); code != http.StatusNotFound && u.Online {
					t.Fatalf("a user who never subscribed is online: %+v", u)
				}
				return
			}
			wantREST(t, d, mim.bare(stranger), func(u restUser) error {
				if !u.Online || u.Show != "available" || u.Status != "" || len(u.Resources) != 1 || u.Resources[0].Source != "session_list" {
					return fmt.Errorf("want online from the list, marked source session_list, without show or status: %+v", u)
				}
				return nil
			})
		})
	}
}

// TestMongooseIMConflictLoop (point 4): two presenced started with one
// component JID against MongooseIM (conflict_behaviour = "kick_old"). Each
// handshake evicts the other's link; presenced backs off from MaxBackoff
// after a conflict instead of reconnecting at once, so the link changes
// hands a few times a minute, not every few hundred milliseconds, and the
// process without the link says why in /readyz.
func TestMongooseIMConflictLoop(t *testing.T) {
	// MinBackoff and MaxBackoff as an operator would leave them (1 s, 30 s).
	first := startPresencedOn(t, mim)
	first.waitConnected(t, 1)
	second := startPresencedOn(t, mim)
	second.waitConnected(t, 1)
	began := time.Now()
	eventually(t, "one of the two to say that another connection holds the JID", 20*time.Second, func() error {
		for _, d := range []*daemon{first, second} {
			if code, body := d.readyz(t); code == http.StatusServiceUnavailable && strings.Contains(body, "another connection holds the component JID") {
				return nil
			}
		}
		return fmt.Errorf("/readyz: first %d, second %d", first.readyzCode(t), second.readyzCode(t))
	})
	time.Sleep(20 * time.Second)
	handshakes := len(first.handshakes()) + len(second.handshakes())
	t.Logf("%d handshakes of the two in %v", handshakes, time.Since(began).Round(time.Second))
	// Without the backoff: one every few hundred milliseconds, about 100 in
	// this time. With it, the first conflict waits MaxBackoff (30 s, jittered
	// down to half) before that process tries again.
	if handshakes > 5 {
		t.Fatalf("%d handshakes in %v: the two still kick each other", handshakes, time.Since(began).Round(time.Second))
	}
	if n := len(first.logs.matches("another connection with this JID replaced the link")) + len(second.logs.matches("another connection with this JID replaced the link")); n == 0 {
		t.Fatal("neither logged that another connection replaced its link")
	}
}

// readyz returns GET /readyz's status and body.
func (d *daemon) readyz(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(d.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (d *daemon) readyzCode(t *testing.T) int {
	code, _ := d.readyz(t)
	return code
}
