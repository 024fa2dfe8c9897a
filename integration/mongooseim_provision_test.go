//go:build integration

package integration

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/component/mongooseim"
	"github.com/presenced/presenced/internal/xmppclient"
)

// TestProvisionMongooseIM runs `presenced provision` as an operator does
// (the binary, its settings in PRESENCED_* variables) against the shared
// MongooseIM 6.1.0, for users registered without presenced on their
// rosters: some online, with presence sent before provisioning, some
// offline. presenced runs meanwhile and knows none of them. Afterwards the
// online users are online in presenced with the status they had sent,
// without logging in again, and their later changes come too; the offline
// ones come online when they log in; a second run changes nothing; a user
// without an account fails the run with a clear error and leaves the
// others provisioned.
func TestProvisionMongooseIM(t *testing.T) {
	s := mim
	for _, k := range []string{"MONGOOSEIM_REST_URL", "MONGOOSEIM_REST_USER", "MONGOOSEIM_REST_PASSWORD", "MONGOOSEIM_DATABASE_URL"} {
		if s.env[k] == "" {
			t.Fatalf("scripts/mongooseim's env has no %s: provisioning needs MongooseIM's REST admin API "+
				"(a mongoose_admin_api handler) and its database (docs/setup-mongooseim.md)", k)
		}
	}
	const pw = "provision-pw"
	online := []string{"provon1", "provon2", "provon3"}
	offline := []string{"provoff1", "provoff2"}
	late := "provlate" // provisioned by the run with a user that does not exist
	var pairs []string
	for _, u := range append(append(append([]string(nil), online...), offline...), late) {
		pairs = append(pairs, u, pw)
	}
	if err := s.addUsers(false, pairs...); err != nil {
		t.Fatal(err)
	}
	d := startPresencedOn(t, s)
	d.waitConnected(t, 1)

	clients := map[string]*xmppclient.Client{}
	for _, u := range append(append([]string(nil), online...), late) {
		clients[u] = s.login(t, u, pw, xmppclient.Presence{Show: "away", Status: "before provisioning"})
	}
	// presenced learns of them from nobody: the server sends it nothing,
	// and the reconciler's probes of listed users go unanswered. Give the
	// presence and a probe time to arrive, were they to.
	time.Sleep(3 * time.Second)
	for _, u := range append(append(append([]string(nil), online...), offline...), late) {
		provisionNotOnline(t, d, s.bare(u))
	}

	var users []string
	for _, u := range append(append([]string(nil), online...), offline...) {
		users = append(users, s.bare(u))
	}
	out, code := provisionRun(t, s, users...)
	if code != 0 || !strings.Contains(out, "5 of 5 users have presenced on their roster") {
		t.Fatalf("presenced provision: exit %d:\n%s", code, out)
	}
	for _, u := range users {
		provisionCheckRoster(t, s, u)
	}

	// The online users: at once, with what they said before, without
	// logging in again.
	for _, u := range online {
		provisionWaitStatus(t, d, s.bare(u), "away", "before provisioning")
	}
	// And what they say afterwards.
	c := clients[online[0]]
	if err := c.Presence(provisionCtx(t), xmppclient.Presence{Show: "dnd", Status: "after provisioning"}); err != nil {
		t.Fatal(err)
	}
	provisionWaitStatus(t, d, s.bare(online[0]), "dnd", "after provisioning")

	// The offline ones when they log in.
	for _, u := range offline {
		provisionNotOnline(t, d, s.bare(u))
		s.login(t, u, pw, xmppclient.Presence{Status: "logged in after provisioning"})
		provisionWaitStatus(t, d, s.bare(u), "", "logged in after provisioning")
	}

	// Again: nothing changes, nobody goes offline.
	out, code = provisionRun(t, s, users...)
	if code != 0 || !strings.Contains(out, "5 of 5 users have presenced on their roster") {
		t.Fatalf("presenced provision, the second time: exit %d:\n%s", code, out)
	}
	for _, u := range users {
		provisionCheckRoster(t, s, u)
	}
	provisionWaitStatus(t, d, s.bare(online[0]), "dnd", "after provisioning")
	for _, u := range online[1:] {
		provisionWaitStatus(t, d, s.bare(u), "away", "before provisioning")
	}
	for _, u := range offline {
		provisionWaitStatus(t, d, s.bare(u), "", "logged in after provisioning")
	}

	// A user that does not exist: a clear error and exit 1; the user given
	// with it is provisioned all the same, and nothing is written for it.
	nobody := s.bare("provnobody")
	out, code = provisionRun(t, s, nobody, s.bare(late))
	if code != 1 || !strings.Contains(out, "provision "+nobody+": ") || !strings.Contains(out, "no such user") ||
		!strings.Contains(out, "1 of 2 users have presenced on their roster") {
		t.Fatalf("presenced provision with a user that does not exist: exit %d:\n%s", code, out)
	}
	provisionCheckRoster(t, s, s.bare(late))
	provisionWaitStatus(t, d, s.bare(late), "away", "before provisioning")
	if n := provisionRows(t, s, "provnobody"); n != 0 {
		t.Errorf("%d rosterusers rows for %s", n, nobody)
	}
}

// provisionRun runs `presenced provision USERS...` (the binary TestMain
// built) with the settings for s in PRESENCED_* variables, and returns
// what it printed and its exit code.
func provisionRun(t *testing.T, s *xmppServer, users ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"provision"}, users...)...)
	cmd.Env = append(os.Environ(),
		"PRESENCED_JID="+s.env["XMPP_COMPONENT_JID"],
		"PRESENCED_SECRET="+s.env["XMPP_COMPONENT_SECRET"],
		"PRESENCED_MONGOOSEIM_REST="+s.env["MONGOOSEIM_REST_URL"],
		"PRESENCED_MONGOOSEIM_REST_USER="+s.env["MONGOOSEIM_REST_USER"],
		"PRESENCED_MONGOOSEIM_REST_PASSWORD="+s.env["MONGOOSEIM_REST_PASSWORD"],
		"PRESENCED_MONGOOSEIM_DATABASE="+s.env["MONGOOSEIM_DATABASE_URL"],
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("presenced provision %d users: %v\n%s", len(users), time.Since(start).Round(time.Millisecond), out)
	if strings.Contains(string(out), "DATA RACE") || strings.Contains(string(out), "panic") {
		t.Errorf("presenced provision reported a data race or a panic")
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatal(err)
	}
	return string(out), 0
}

// provisionCheckRoster checks, through MongooseIM's REST API, that the
// component is on user's roster with subscription from or both.
func provisionCheckRoster(t *testing.T, s *xmppServer, user string) {
	t.Helper()
	r := mongooseim.REST{URL: s.env["MONGOOSEIM_REST_URL"], User: s.env["MONGOOSEIM_REST_USER"], Password: s.env["MONGOOSEIM_REST_PASSWORD"]}
	list, err := r.Contacts(provisionCtx(t), user)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.JID == s.env["XMPP_COMPONENT_JID"] {
			if c.Subscription != "from" && c.Subscription != "both" || c.Ask != "none" {
				t.Errorf("%s: the component's item is %+v", user, c)
			}
			return
		}
	}
	t.Errorf("%s: the component is not on the roster: %+v", user, list)
}

// provisionRows counts the rosterusers rows of username for the component.
func provisionRows(t *testing.T, s *xmppServer, username string) int {
	t.Helper()
	out, err := exec.Command("psql", "-X", "-At", s.env["MONGOOSEIM_DATABASE_URL"], "-c",
		"SELECT count(*) FROM rosterusers WHERE username = '"+username+"'").CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("psql: %q", out)
	}
	return n
}

// provisionNotOnline checks that presenced does not have bare online.
func provisionNotOnline(t *testing.T, d *daemon, bare string) {
	t.Helper()
	u, code := d.user(t, bare)
	if code == http.StatusOK && u.Online {
		t.Errorf("%s is online in presenced before provisioning: %+v", bare, u)
	} else if code != http.StatusOK && code != http.StatusNotFound {
		t.Errorf("%s: HTTP %d", bare, code)
	}
}

// provisionWaitStatus waits until presenced has bare online with show and
// status.
func provisionWaitStatus(t *testing.T, d *daemon, bare, show, status string) {
	t.Helper()
	eventually(t, bare+" online, "+status, 15*time.Second, func() error {
		u, code := d.user(t, bare)
		if code != http.StatusOK || !u.Online || u.Status != status || u.Show != provisionShow(show) {
			return &provisionState{code, u}
		}
		return nil
	})
}

// provisionShow is the show the REST API gives for a client's show ("" is
// plainly available).
func provisionShow(show string) string {
	if show == "" {
		return "available"
	}
	return show
}

type provisionState struct {
	code int
	u    restUser
}

func (e *provisionState) Error() string {
	if e.code != http.StatusOK {
		return "HTTP " + http.StatusText(e.code)
	}
	return "online " + map[bool]string{true: "yes", false: "no"}[e.u.Online] + ", show " + e.u.Show + ", status " + e.u.Status
}

func provisionCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}
