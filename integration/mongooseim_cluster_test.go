//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/internal/xmppclient"
)

// TestMongooseIMCluster starts two MongooseIM 6.1.0 instances with
// scripts/mongooseim, the second with `start DIR --join PEERDIR` (its own
// unpacked copy and listeners; the first's cookie, epmd and PostgreSQL),
// and checks that they form one cluster: both list both as running mnesia
// db nodes, a user registered through node 1 logs in on node 2 (the shared
// database) and node 1 sees that session (the shared session table), and
// the same the other way round. Then the stops, in both orders: the peer
// stopped first leaves the joined node running on the shared epmd and
// database and rejoins when started again; the last node to stop takes
// epmd and PostgreSQL down. The nodes are its own, in temporary
// directories, not the suite's shared servers; it stops them even when it
// fails.
func TestMongooseIMCluster(t *testing.T) {
	base := t.TempDir()
	dir1, dir2 := filepath.Join(base, "mim1"), filepath.Join(base, "mim2")
	// Registered before the starts (stop is a no-op on a directory without an
	// instance) and after TempDir, so it runs before the directory goes. The
	// joined node first: the peer's stop then takes the shared epmd and
	// PostgreSQL down with it.
	t.Cleanup(func() {
		if t.Failed() {
			clusterDumpLogs(t, dir1)
			clusterDumpLogs(t, dir2)
		}
		for _, d := range []string{dir2, dir1} {
			began := time.Now()
			if out, err := clusterScript("stop", d); err != nil {
				t.Errorf("stopping %s: %v\n%s", d, err, out)
			}
			t.Logf("scripts/mongooseim stop %s: %v", filepath.Base(d), time.Since(began).Round(100*time.Millisecond))
		}
	})

	env1 := clusterStart(t, dir1)
	env2 := clusterStart(t, dir2, "--join", dir1)

	node1, node2 := env1["MONGOOSEIM_NODE"], env2["MONGOOSEIM_NODE"]
	if node1 == "" || node2 == "" || node1 == node2 {
		t.Fatalf("MONGOOSEIM_NODE: %q and %q, want two different node names", node1, node2)
	}
	if got := env2["MONGOOSEIM_CLUSTER_PEER"]; got != node1 {
		t.Errorf("node 2's MONGOOSEIM_CLUSTER_PEER = %q, want %q", got, node1)
	}
	if got := env1["MONGOOSEIM_CLUSTER_PEER"]; got != "" {
		t.Errorf("node 1's MONGOOSEIM_CLUSTER_PEER = %q, want none", got)
	}
	if env1["MONGOOSEIM_DATABASE_URL"] != env2["MONGOOSEIM_DATABASE_URL"] {
		t.Errorf("the nodes have different databases: %s and %s", env1["MONGOOSEIM_DATABASE_URL"], env2["MONGOOSEIM_DATABASE_URL"])
	}
	if env1["XMPP_C2S_ADDR"] == env2["XMPP_C2S_ADDR"] || env1["MONGOOSEIM_GRAPHQL_URL"] == env2["MONGOOSEIM_GRAPHQL_URL"] {
		t.Errorf("the nodes share listeners: %v and %v", env1, env2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Both nodes see both: through each one's admin GraphQL, and through
	// the CLI that docs/setup-mongooseim.md quotes.
	want := []string{node1, node2}
	slices.Sort(want)
	for i, env := range []map[string]string{env1, env2} {
		got, err := clusterDBNodes(ctx, env)
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("node %d: running db nodes %v, want %v", i+1, got, want)
		}
	}
	for i, dir := range []string{dir1, dir2} {
		info, err := clusterMnesiaInfo(dir)
		if err != nil {
			t.Fatal(err)
		}
		m := clusterRunningDBNodes.FindStringSubmatch(info)
		if m == nil {
			t.Fatalf("node %d: no running db nodes in `mongooseimctl mnesia info`:\n%s", i+1, info)
		}
		var got []string
		for _, n := range strings.Split(m[1], ",") {
			got = append(got, strings.Trim(n, "' \n\t"))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("node %d: `mongooseimctl mnesia info` says running db nodes = %v, want %v", i+1, got, want)
		}
	}

	// A user registered on one node logs in on the other, whose sessions
	// the first one lists: both ways.
	ann := clusterLogin(ctx, t, dir1, env2, "cluster-ann")
	clusterWaitSession(ctx, t, env1, ann.JID.String(), node2)
	ben := clusterLogin(ctx, t, dir2, env1, "cluster-ben")
	clusterWaitSession(ctx, t, env2, ben.JID.String(), node1)

	// The peer stops first: the joined node goes on alone, on the epmd and
	// PostgreSQL that the peer's stop leaves running for it.
	clusterStop(t, dir1)
	if got, err := clusterDBNodes(ctx, env2); err != nil || !slices.Equal(got, []string{node2}) {
		t.Errorf("node 2 after node 1 stopped: running db nodes %v (%v), want [%s]", got, err, node2)
	}
	sessions, err := clusterSessions(ctx, env2)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sessions[ann.JID.String()]; !ok {
		t.Errorf("node 2 lost %s's session when node 1 stopped: it lists %v", ann.JID, sessions)
	}
	if _, ok := sessions[ben.JID.String()]; ok {
		t.Errorf("node 2 still lists %s's session on the stopped node 1", ben.JID)
	}
	// The database is still there: a new user, registered and logged in on node 2.
	clusterLogin(ctx, t, dir2, env2, "cluster-cid")

	// The peer started again rejoins by itself (mnesia remembers the cluster).
	env1 = clusterStart(t, dir1)
	for i, env := range []map[string]string{env1, env2} {
		if got, err := clusterDBNodes(ctx, env); err != nil || !slices.Equal(got, want) {
			t.Errorf("node %d after node 1 restarted: running db nodes %v (%v), want %v", i+1, got, err, want)
		}
	}
	clusterWaitSession(ctx, t, env1, ann.JID.String(), node2)

	// The joined node stops first, then the peer, which takes the shared epmd
	// and PostgreSQL down: nothing of the cluster is left listening.
	ports := clusterSharedPorts(t, dir2)
	clusterStop(t, dir2)
	if got, err := clusterDBNodes(ctx, env1); err != nil || !slices.Equal(got, []string{node1}) {
		t.Errorf("node 1 after node 2 stopped: running db nodes %v (%v), want [%s]", got, err, node1)
	}
	for _, p := range ports {
		if !clusterListening(p) {
			t.Errorf("127.0.0.1:%s closed while node 1 still runs", p)
		}
	}
	clusterStop(t, dir1)
	for _, p := range ports {
		if clusterListening(p) {
			t.Errorf("127.0.0.1:%s still open after both nodes stopped", p)
		}
	}
}

// clusterLogin registers user through the instance in regDir and logs it in
// on the node of loginEnv, with initial presence.
func clusterLogin(ctx context.Context, t *testing.T, regDir string, loginEnv map[string]string, user string) *xmppclient.Client {
	t.Helper()
	password := user + "-pw"
	if out, err := clusterScript("adduser", regDir, user, password); err != nil {
		t.Fatalf("adduser %s in %s: %v\n%s", user, regDir, err, out)
	}
	c, err := xmppclient.Dial(ctx, loginEnv["XMPP_C2S_ADDR"], jid.MustParse(user+"@localhost"), password)
	if err != nil {
		t.Fatalf("%s logging in on %s: %v", user, loginEnv["MONGOOSEIM_NODE"], err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Presence(ctx, xmppclient.Presence{}); err != nil {
		t.Fatalf("%s: initial presence: %v", user, err)
	}
	return c
}

// clusterWaitSession waits until the node of env lists the session full on
// node wantNode.
func clusterWaitSession(ctx context.Context, t *testing.T, env map[string]string, full, wantNode string) {
	t.Helper()
	began := time.Now()
	for {
		sessions, err := clusterSessions(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		if node, ok := sessions[full]; ok {
			if node != wantNode {
				t.Errorf("%s lists the session of %s on node %s, want %s", env["MONGOOSEIM_NODE"], full, node, wantNode)
			}
			t.Logf("%s lists %s on %s after %v", env["MONGOOSEIM_NODE"], full, node, time.Since(began).Round(time.Millisecond))
			return
		}
		if time.Since(began) > 10*time.Second {
			t.Fatalf("%s does not list %s's session within 10 s; it lists %v", env["MONGOOSEIM_NODE"], full, sessions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterStop stops the instance in dir.
func clusterStop(t *testing.T, dir string) {
	t.Helper()
	began := time.Now()
	out, notes, err := clusterScriptOutputs("stop", dir)
	if err != nil {
		t.Errorf("scripts/mongooseim stop %s: %v\n%s%s", dir, err, out, notes)
	}
	clusterLogNotes(t, notes)
	t.Logf("scripts/mongooseim stop %s: %v", filepath.Base(dir), time.Since(began).Round(100*time.Millisecond))
}

// clusterSharedPorts are the loopback ports of what the nodes share, from
// the joined node's params: the epmd and PostgreSQL.
func clusterSharedPorts(t *testing.T, dir string) []string {
	t.Helper()
	params, err := os.ReadFile(filepath.Join(dir, "instance.params"))
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, line := range strings.Split(string(params), "\n") {
		if v, ok := strings.CutPrefix(line, "EPMD_PORT="); ok {
			ports = append(ports, v)
		}
		if m := regexp.MustCompile(`^DB_URL='.*@127\.0\.0\.1:([0-9]+)/`).FindStringSubmatch(line); m != nil {
			ports = append(ports, m[1])
		}
	}
	if len(ports) != 2 {
		t.Fatalf("no epmd and database ports in %s:\n%s", dir, params)
	}
	return ports
}

func clusterListening(port string) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// clusterScript runs scripts/mongooseim ARGS; it returns stdout and, on
// failure, stderr too.
func clusterScript(args ...string) (string, error) {
	stdout, stderr, err := clusterScriptOutputs(args...)
	if err != nil {
		return stdout + stderr, err
	}
	return stdout, nil
}

func clusterScriptOutputs(args ...string) (stdout, stderr string, err error) {
	c := exec.Command("../scripts/mongooseim", args...)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err = c.Run()
	return o.String(), e.String(), err
}

// clusterStart starts an instance in dir (ARGS: --join PEERDIR) and reads
// its environment file. The script's notes (how long the join took, the
// db nodes it saw) go to the test's log.
func clusterStart(t *testing.T, dir string, args ...string) map[string]string {
	t.Helper()
	began := time.Now()
	out, notes, err := clusterScriptOutputs(append([]string{"start", dir}, args...)...)
	if err != nil {
		t.Fatalf("scripts/mongooseim start %s %s: %v\n%s%s", dir, strings.Join(args, " "), err, out, notes)
	}
	clusterLogNotes(t, notes)
	t.Logf("scripts/mongooseim %s: %v", strings.Join(append([]string{"start", filepath.Base(dir)}, args...), " "), time.Since(began).Round(100*time.Millisecond))
	data, err := os.ReadFile(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = strings.Trim(v, `'"`)
		}
	}
	return env
}

// clusterLogNotes puts the script's own lines from its stderr into the
// test's log (not those of pg_ctl and MongooseIM's start script).
func clusterLogNotes(t *testing.T, notes string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(notes), "\n") {
		if strings.HasPrefix(l, "scripts/mongooseim: ") {
			t.Log(l)
		}
	}
}

// clusterGraphQL sends one query to the node's admin GraphQL API and
// decodes its data into out.
func clusterGraphQL(ctx context.Context, env map[string]string, query string, out any) error {
	body, _ := json.Marshal(map[string]string{"query": query})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, env["MONGOOSEIM_GRAPHQL_URL"], bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(env["MONGOOSEIM_GRAPHQL_USER"], env["MONGOOSEIM_GRAPHQL_PASSWORD"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("GraphQL %s: HTTP %s: %v", env["MONGOOSEIM_GRAPHQL_URL"], resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || len(r.Errors) > 0 {
		return fmt.Errorf("GraphQL %s: HTTP %s: %v", env["MONGOOSEIM_GRAPHQL_URL"], resp.Status, r.Errors)
	}
	return json.Unmarshal(r.Data, out)
}

// clusterDBNodes is mnesia's running_db_nodes on the node, sorted.
func clusterDBNodes(ctx context.Context, env map[string]string) ([]string, error) {
	var d struct {
		Mnesia struct {
			SystemInfo []struct {
				Key    string
				Result []string
			}
		}
	}
	err := clusterGraphQL(ctx, env, `{ mnesia { systemInfo(keys: ["running_db_nodes"]) { ... on MnesiaListResponse { key result } } } }`, &d)
	if err != nil {
		return nil, err
	}
	for _, i := range d.Mnesia.SystemInfo {
		if i.Key == "running_db_nodes" {
			slices.Sort(i.Result)
			return i.Result, nil
		}
	}
	return nil, fmt.Errorf("mnesia systemInfo has no running_db_nodes: %+v", d)
}

// clusterSessions maps the full JID of every session the node lists (the
// cluster's) to the node it runs on.
func clusterSessions(ctx context.Context, env map[string]string) (map[string]string, error) {
	var d struct {
		Session struct {
			ListSessions []struct{ User, Node string }
		}
	}
	if err := clusterGraphQL(ctx, env, `{ session { listSessions { user node } } }`, &d); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, s := range d.Session.ListSessions {
		m[s.User] = s.Node
	}
	return m, nil
}

// clusterRunningDBNodes finds the list in the line of `mnesia info` that
// reads: running db nodes   = ['mim-1@localhost','mim-2@localhost'] (it
// wraps when long).
var clusterRunningDBNodes = regexp.MustCompile(`running db nodes\s*=\s*\[([^\]]*)\]`)

// clusterMnesiaInfo is `mongooseimctl mnesia info` on the instance in dir
// (the CLI reaches its node through the instance's epmd).
func clusterMnesiaInfo(dir string) (string, error) {
	params, err := os.ReadFile(filepath.Join(dir, "instance.params"))
	if err != nil {
		return "", err
	}
	var epmd string
	for _, line := range strings.Split(string(params), "\n") {
		if v, ok := strings.CutPrefix(line, "EPMD_PORT="); ok {
			epmd = v
		}
	}
	c := exec.Command(filepath.Join(dir, "mongooseim", "bin", "mongooseimctl"), "mnesia", "info")
	c.Env = append(os.Environ(), "ERL_EPMD_ADDRESS=127.0.0.1", "ERL_EPMD_PORT="+epmd)
	out, err := c.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mongooseimctl mnesia info in %s: %v\n%s", dir, err, out)
	}
	return string(out), nil
}

// clusterDumpLogs shows the tail of the instance's MongooseIM logs.
func clusterDumpLogs(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "mongooseim", "log", "*.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		if len(data) > 8000 {
			data = data[len(data)-8000:]
		}
		t.Logf("%s:\n%s", l, data)
	}
}
