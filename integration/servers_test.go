//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/internal/xmppclient"
)

// xmppServer is one real XMPP server instance of the suite, run by the
// project's script for its kind (scripts/ejabberd, scripts/mongooseim) in
// its own directory on loopback.
type xmppServer struct {
	kind string            // "ejabberd" or "mongooseim": the script's name
	dir  string            // the instance's directory
	env  map[string]string // DIR/env: XMPP_C2S_ADDR, XMPP_COMPONENT_*, the admin API
}

// forEachServer runs f as a subtest against each shared server: one suite,
// two servers.
func forEachServer(t *testing.T, f func(t *testing.T, s *xmppServer)) {
	t.Helper()
	for _, s := range []*xmppServer{ejd, mim} {
		t.Run(s.kind, func(t *testing.T) { f(t, s) })
	}
}

// run runs scripts/KIND CMD DIR ARGS.
func (s *xmppServer) run(cmd string, args ...string) error {
	c := exec.Command("../scripts/"+s.kind, append([]string{cmd, s.dir}, args...)...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("scripts/%s %s: %v\n%s", s.kind, cmd, err, stderr.String())
	}
	return nil
}

// start starts the instance (the first time: configures it) and reads its
// environment.
func (s *xmppServer) start() error {
	if err := s.run("start"); err != nil {
		return err
	}
	var err error
	s.env, err = readEnv(filepath.Join(s.dir, "env"))
	return err
}

// addUsers registers users (name, password pairs). With roster, each has
// the component on its roster, as provisioning leaves it; without, the
// user knows nothing of the component and can only send it directed
// presence.
func (s *xmppServer) addUsers(roster bool, pairs ...string) error {
	switch {
	case roster:
		return s.run("adduser", pairs...)
	case s.kind == "mongooseim":
		c := exec.Command("../scripts/mongooseim", append([]string{"adduser", "--no-roster", s.dir}, pairs...)...)
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("scripts/mongooseim adduser --no-roster: %v\n%s", err, out)
		}
		return nil
	}
	// ejabberd: through its HTTP API, which adds nothing to the roster.
	for i := 0; i+1 < len(pairs); i += 2 {
		body, _ := json.Marshal(map[string]string{"user": pairs[i], "host": s.env["XMPP_DOMAIN"], "password": pairs[i+1]})
		resp, err := http.Post(s.env["EJABBERD_API_URL"]+"/register", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && !bytes.Contains(msg, []byte("already registered")) {
			return fmt.Errorf("register %s: %d %s", pairs[i], resp.StatusCode, msg)
		}
	}
	return nil
}

// settings is what presenced is given for this server besides the
// component link: on MongooseIM, its session list through the admin
// GraphQL API, as docs/setup-mongooseim.md sets it up (the suite then also
// checks that the reconciler brings no one online who should not be).
func (s *xmppServer) settings() []string {
	if s.kind != "mongooseim" {
		return nil
	}
	return []string{
		"PRESENCED_MONGOOSEIM_GRAPHQL=" + s.env["MONGOOSEIM_GRAPHQL_URL"],
		"PRESENCED_MONGOOSEIM_USER=" + s.env["MONGOOSEIM_GRAPHQL_USER"],
		"PRESENCED_MONGOOSEIM_PASSWORD=" + s.env["MONGOOSEIM_GRAPHQL_PASSWORD"],
		"PRESENCED_RECONCILE_DOMAINS=" + s.env["XMPP_DOMAIN"],
	}
}

// bare returns user's bare JID on s.
func (s *xmppServer) bare(user string) string { return user + "@" + s.env["XMPP_DOMAIN"] }

// dial logs a real client in as user (resource empty: the server picks
// one) that answers as a says.
func (s *xmppServer) dial(t *testing.T, user, password, resource string, a xmppclient.Answers) *xmppclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	j := jid.MustParse(s.bare(user))
	if resource != "" {
		j = jid.MustParse(s.bare(user) + "/" + resource)
	}
	c, err := xmppclient.Dialer{Answers: a}.Dial(ctx, s.env["XMPP_C2S_ADDR"], j, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// kill kills the server's Erlang VM with SIGKILL (a crash) and waits until
// it is gone.
func (s *xmppServer) kill(t *testing.T) {
	t.Helper()
	if s.kind == "mongooseim" {
		if err := s.run("kill"); err != nil {
			t.Fatal(err)
		}
		return
	}
	out, _ := exec.Command("pgrep", "-f", "beam.*"+s.dir).Output()
	pids := strings.Fields(string(out))
	if len(pids) == 0 {
		t.Fatal("no ejabberd process found for " + s.dir)
	}
	for _, p := range pids {
		pid, _ := strconv.Atoi(p)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// dumpLogs prints the tail of the instance's logs.
func (s *xmppServer) dumpLogs() {
	if s == nil {
		return
	}
	pattern := filepath.Join(s.dir, "log", "*.log")
	if s.kind == "mongooseim" {
		pattern = filepath.Join(s.dir, "mongooseim", "log", "*.log")
	}
	logs, _ := filepath.Glob(pattern)
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		if len(data) > 8000 {
			data = data[len(data)-8000:]
		}
		fmt.Fprintf(os.Stderr, "==== %s (tail)\n%s\n", l, data)
	}
}

// privateServer starts a server of kind of the test's own, for a test that
// kills or stops its server: the shared one then stays as the other tests
// expect it, whatever the order of the tests and whether this one fails.
// users are registered with password, presenced on their rosters. It is
// stopped when the test ends.
func privateServer(t *testing.T, kind, password string, users ...string) *xmppServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "presenced-"+kind+"-")
	if err != nil {
		t.Fatal(err)
	}
	s := &xmppServer{kind: kind, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs()
		}
		_ = s.run("stop")
		_ = os.RemoveAll(dir)
	})
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, u := range users {
		args = append(args, u, password)
	}
	if len(args) > 0 {
		if err := s.addUsers(true, args...); err != nil {
			t.Fatal(err)
		}
	}
	return s
}
