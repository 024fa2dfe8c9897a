//go:build integration

package integration

import (
	"bufio"
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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/internal/app"
	"github.com/presenced/presenced/internal/poll"
	"github.com/presenced/presenced/internal/xmppclient"
)

// The servers of the suite, started by TestMain and shared by the tests
// that leave them running: ejabberd (scripts/ejabberd) and MongooseIM
// (scripts/mongooseim). The presence and liveness tests run against both
// (forEachServer); the others against ejabberd, whose environment env is.
var (
	ejd         *xmppServer
	mim         *xmppServer
	env         map[string]string // ejd.env
	ejDir       string            // ejd.dir
	binary      string
	simBinary   string
	databaseURL string // a private PostgreSQL, started by TestMain
	pgDir       string // its directory, for tests that stop and start it
	passwords   = map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw", "erin": "erin-pw"}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "presenced-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	binary = filepath.Join(tmp, "presenced")
	// The race detector is on unless PRESENCED_NORACE=1 (for measuring).
	flags := []string{"build", "-race", "-o", binary, "../cmd/presenced"}
	if os.Getenv("PRESENCED_NORACE") == "1" {
		flags = slices.Delete(flags, 1, 2)
	}
	build := exec.Command("go", flags...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: building presenced:", err)
		return 1
	}
	simBinary = filepath.Join(tmp, "presenced-sim")
	build = exec.Command("go", "build", "-o", simBinary, "../cmd/presenced-sim")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: building presenced-sim:", err)
		return 1
	}

	// Both servers at once: each takes seconds to start.
	var users []string
	for u, p := range passwords {
		users = append(users, u, p)
	}
	ejd = &xmppServer{kind: "ejabberd", dir: filepath.Join(tmp, "ejabberd")}
	mim = &xmppServer{kind: "mongooseim", dir: filepath.Join(tmp, "mongooseim")}
	errs := make(chan error, 2)
	for _, s := range []*xmppServer{ejd, mim} {
		go func() {
			err := s.start()
			if err == nil {
				err = s.addUsers(true, users...)
			}
			if err != nil {
				err = fmt.Errorf("integration: starting %s: %v", s.kind, err)
			}
			errs <- err
		}()
	}
	defer mim.run("stop")
	defer ejd.run("stop")
	failed := false
	for range 2 {
		if err := <-errs; err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = true
		}
	}
	if failed {
		return 1
	}
	env, ejDir = ejd.env, ejd.dir

	pgDir = filepath.Join(tmp, "postgres")
	out, err := exec.Command("../scripts/postgres", "start", pgDir).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: starting PostgreSQL:", err)
		return 1
	}
	defer exec.Command("../scripts/postgres", "stop", pgDir).Run()
	pgEnv, err := readFile(strings.TrimSpace(string(out)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	_, databaseURL, _ = strings.Cut(strings.TrimSpace(pgEnv), "DATABASE_URL=")
	code := m.Run()
	if code != 0 || os.Getenv("PRESENCED_KEEP_LOGS") != "" {
		ejd.dumpLogs()
		mim.dumpLogs()
	}
	return code
}

// ejabberd runs scripts/ejabberd CMD DIR ARGS on the shared ejabberd.
func ejabberd(cmd string, args ...string) error { return ejd.run(cmd, args...) }

func readEnv(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string)
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			out[k] = strings.Trim(v, "'")
		}
	}
	for _, k := range []string{"XMPP_C2S_ADDR", "XMPP_COMPONENT_ADDR", "XMPP_COMPONENT_JID", "XMPP_COMPONENT_SECRET"} {
		if out[k] == "" {
			return nil, fmt.Errorf("%s lacks %s", path, k)
		}
	}
	return out, nil
}

// daemon is a running presenced: in-process (app), as most tests run it,
// or a separate process (cmd) for the tests that kill it or measure its
// memory.
type daemon struct {
	srv  *xmppServer // the server its component attaches to
	base string      // http://host:port
	app  *app.App
	cmd  *exec.Cmd
	logs *logTail
	done chan struct{} // closed when it has stopped
	// killed: the test killed it on purpose (its exit status says so).
	killed bool
}

// logTail keeps a presenced's log lines and counts lines matching
// patterns. It is the io.Writer an in-process presenced logs to.
type logTail struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
}

func (l *logTail) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

// Write keeps each whole line of p (slog writes a record per call).
func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
}

// matches returns the lines containing sub.
func (l *logTail) matches(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			out = append(out, s)
		}
	}
	return out
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPresenced runs presenced against the shared ejabberd with extra
// environment (KEY=VALUE) and waits until its HTTP API answers. It is
// stopped as SIGTERM stops it when the test ends; its logs are shown if it
// fails.
func startPresenced(t *testing.T, extra ...string) *daemon {
	t.Helper()
	return startPresencedOn(t, ejd, extra...)
}

// settingsFor returns the environment presenced gets in the tests: the
// component of server s, s's own settings (xmppServer.settings), the HTTP
// address addr, short waits, debug logs, and extra (KEY=VALUE, later ones
// win).
func settingsFor(s *xmppServer, addr string, extra ...string) []string {
	out := []string{
		"PRESENCED_JID=" + s.env["XMPP_COMPONENT_JID"],
		"PRESENCED_SECRET=" + s.env["XMPP_COMPONENT_SECRET"],
		"PRESENCED_SERVER=" + s.env["XMPP_COMPONENT_ADDR"],
		"PRESENCED_HTTP=" + addr,
		"PRESENCED_PROBE_WAIT=2s",
		"PRESENCED_KEEPALIVE=2s", // the keepalive must work through a real server
		"PRESENCED_LOG_LEVEL=debug",
	}
	out = append(out, s.settings()...)
	return append(out, extra...)
}

// startPresencedOn is startPresenced against server s. presenced runs
// in-process (internal/app), configured from the same settings an operator
// would give the binary (app.ParseSettings), so the race detector of the
// test binary watches it too; it is stopped as SIGTERM stops the binary.
func startPresencedOn(t *testing.T, s *xmppServer, extra ...string) *daemon {
	t.Helper()
	addr := freeAddr(t)
	vars := map[string]string{}
	for _, kv := range settingsFor(s, addr, extra...) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	d := &daemon{srv: s, base: "http://" + addr, logs: &logTail{}, done: make(chan struct{})}
	cfg, err := app.ParseSettings(nil, func(k string) string { return vars[k] }, d.logs)
	if err != nil {
		t.Fatal(err)
	}
	if d.app, err = app.New(cfg); err != nil {
		t.Fatal(err)
	}
	if err := d.app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop(t)
		d.check(t)
	})
	d.waitAPI(t)
	return d
}

// startPresencedProcess is startPresenced as a separate process, the binary
// built by TestMain, for the tests that kill it or measure its memory. It
// is stopped with SIGTERM when the test ends.
func startPresencedProcess(t *testing.T, extra ...string) *daemon {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), settingsFor(ejd, addr, extra...)...)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{srv: ejd, base: "http://" + addr, cmd: cmd, logs: &logTail{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.logs.add(sc.Text())
		}
		_ = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-d.done
			t.Error("presenced did not stop within 20s of SIGTERM")
		}
		if code := cmd.ProcessState.ExitCode(); code != 0 && !d.killed {
			t.Errorf("presenced exited with %d", code)
		}
		if strings.Contains(d.logs.String(), "DATA RACE") {
			t.Error("presenced reported a data race")
		}
		d.check(t)
	})
	d.waitAPI(t)
	return d
}

// waitAPI waits until d's HTTP API answers.
func (d *daemon) waitAPI(t *testing.T) {
	t.Helper()
	eventually(t, "presenced's HTTP API", 20*time.Second, func() error {
		resp, err := http.Get(d.base + "/v1/presence")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// check fails t for what d logged that a healthy run never logs, and
// shows d's logs when t failed.
func (d *daemon) check(t *testing.T) {
	t.Helper()
	if strings.Contains(d.logs.String(), "panic") {
		t.Error("presenced reported a panic")
	}
	if len(d.logs.matches("keepalive ping unanswered")) > 0 {
		t.Error("the keepalive failed on a healthy link")
	}
	if len(d.logs.matches("improper-addressing")) > 0 {
		t.Error("the server ended the stream with improper-addressing: something went out without from or to")
	}
	if t.Failed() || os.Getenv("PRESENCED_KEEP_LOGS") != "" {
		t.Logf("presenced logs:\n%s", d.logs)
	}
}

// waitConnected waits until presenced logged n handshakes.
func (d *daemon) waitConnected(t *testing.T, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d component handshakes", n), 30*time.Second, func() error {
		if got := len(d.logs.matches(`msg="component: connected"`)); got < n {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
}

var handshakeRE = regexp.MustCompile(`handshake=(\S+)`)

// handshakes returns the handshake durations presenced logged.
func (d *daemon) handshakes() []string {
	var out []string
	for _, l := range d.logs.matches(`msg="component: connected"`) {
		if m := handshakeRE.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// eventually retries f until it succeeds or timeout passes (poll.Until).
func eventually(t *testing.T, what string, timeout time.Duration, f func() error) {
	t.Helper()
	poll.Until(t, what, timeout, f)
}

// User and resource as the REST API returns them.
type restUser struct {
	JID       string         `json:"jid"`
	Online    bool           `json:"online"`
	Show      string         `json:"show"`
	Status    string         `json:"status"`
	Priority  int            `json:"priority"`
	LastSeen  *time.Time     `json:"last_seen"`
	Resources []restResource `json:"resources"`
}

type restResource struct {
	Resource string `json:"resource"`
	Source   string `json:"source"`
	Show     string `json:"show"`
	Status   string `json:"status"`
	Priority int    `json:"priority"`
}

func (d *daemon) user(t *testing.T, bare string) (restUser, int) {
	t.Helper()
	resp, err := http.Get(d.base + "/v1/presence/" + bare)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u restUser
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
			t.Fatal(err)
		}
	}
	return u, resp.StatusCode
}

func (d *daemon) list(t *testing.T) []restUser {
	t.Helper()
	resp, err := http.Get(d.base + "/v1/presence")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Users []restUser `json:"users"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Users
}

// frame is one WebSocket frame, decoded loosely.
type frame struct {
	Type     string       `json:"type"`
	Seq      uint64       `json:"seq"`
	Event    string       `json:"event"`
	JID      string       `json:"jid"`
	Reason   string       `json:"reason"`
	Resource restResource `json:"resource"`
	User     struct {
		Online   bool   `json:"online"`
		Show     string `json:"show"`
		Status   string `json:"status"`
		Resource string `json:"resource"`
	} `json:"user"`
	Users    []restUser `json:"users"`
	received time.Time
}

// stream is a WebSocket client of /v1/stream that checks sequence numbers.
type stream struct {
	conn   *websocket.Conn
	frames chan frame
	errc   chan error
	seq    uint64
}

func (d *daemon) stream(t *testing.T) *stream {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(d.base, "http")+"/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := &stream{conn: conn, frames: make(chan frame, 1024), errc: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				s.errc <- err
				return
			}
			received := time.Now()
			// A client that is behind gets its backlog as one "changes"
			// message: expand it.
			var bundle struct {
				Type   string            `json:"type"`
				Frames []json.RawMessage `json:"frames"`
			}
			parts := []json.RawMessage{data}
			if json.Unmarshal(data, &bundle) == nil && bundle.Type == "changes" {
				parts = bundle.Frames
			}
			for _, p := range parts {
				var f frame
				if err := json.Unmarshal(p, &f); err != nil {
					s.errc <- fmt.Errorf("frame is not JSON: %s", p)
					return
				}
				f.received = received
				s.frames <- f
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	first := s.next(t)
	if first.Type != "snapshot" {
		t.Fatalf("first frame is %q, want snapshot", first.Type)
	}
	s.seq = first.Seq
	return s
}

func (s *stream) next(t *testing.T) frame {
	t.Helper()
	select {
	case f := <-s.frames:
		return f
	case err := <-s.errc:
		t.Fatalf("stream: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("stream: no frame within 15s")
	}
	return frame{}
}

// expect reads frames until one satisfies match, checking on the way that
// change frames are numbered without gaps. It returns the matching frame.
func (s *stream) expect(t *testing.T, what string, match func(frame) bool) frame {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case f := <-s.frames:
			switch f.Type {
			case "change":
				if f.Seq != s.seq+1 {
					t.Fatalf("change frame seq %d after %d: the stream skipped or repeated", f.Seq, s.seq)
				}
				s.seq = f.Seq
			case "snapshot":
				s.seq = f.Seq
			}
			if match(f) {
				return f
			}
		case err := <-s.errc:
			t.Fatalf("stream, waiting for %s: %v", what, err)
		case <-deadline:
			t.Fatalf("stream: no frame for %s within 20s", what)
		}
	}
}

// login connects a real client to the shared ejabberd as user and sends
// its initial presence.
func login(t *testing.T, user string, p xmppclient.Presence) *xmppclient.Client {
	t.Helper()
	return ejd.login(t, user, passwords[user], p)
}

// login connects a real client to d's server as user and sends p.
func (d *daemon) login(t *testing.T, user string, p xmppclient.Presence) *xmppclient.Client {
	t.Helper()
	return d.srv.login(t, user, passwords[user], p)
}

// dialAs logs a real client in to the shared ejabberd as user with
// password and sends p.
func dialAs(t *testing.T, user, password string, p xmppclient.Presence) *xmppclient.Client {
	t.Helper()
	return ejd.login(t, user, password, p)
}

// login logs a real client in to s as user with password (the server picks
// the resource; it answers every query with an error, as a minimal client)
// and sends p.
func (s *xmppServer) login(t *testing.T, user, password string, p xmppclient.Presence) *xmppclient.Client {
	t.Helper()
	c := s.dial(t, user, password, "", xmppclient.AnswerNone)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Presence(ctx, p); err != nil {
		t.Fatal(err)
	}
	return c
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// stop ends presenced as SIGTERM does (the binary's with SIGTERM) and
// waits for it, at most 20s. Stopping it again does nothing.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if d.app != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := d.app.Stop(ctx); err != nil {
			t.Fatalf("presenced did not stop within 20s: %v", err)
		}
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatal("presenced did not stop within 20s")
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
