//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/bridge/dashboard"
	"github.com/presenced/presenced/internal/xmppclient"
)

// chromiumPath is Debian's Chromium, which the dashboard test drives.
const chromiumPath = "/usr/bin/chromium"

// needBrowser makes sure Chromium, node and the script's node modules are
// there: it installs Chromium from Debian when it is missing (as root, like
// ejabberd) and runs npm ci when node_modules is. It fails, never skips.
func needBrowser(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Logf("%s is missing: installing Debian's chromium", chromiumPath)
		apt := func(args ...string) error {
			c := exec.Command("apt-get", args...)
			c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			out, err := c.CombinedOutput()
			if err != nil {
				return fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, tail(out, 2000))
			}
			return nil
		}
		if err := apt("install", "-y", "-q", "chromium"); err != nil {
			if err := apt("update", "-q"); err != nil {
				t.Fatal(err)
			}
			if err := apt("install", "-y", "-q", "chromium"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the dashboard test needs %s: %v", tool, err)
		}
	}
	if _, err := os.Stat(filepath.Join("dashboard", "node_modules", "playwright-core")); err != nil {
		c := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		c.Dir = "dashboard"
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in integration/dashboard: %v\n%s", err, tail(out, 4000))
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// dashboardServer serves the dashboard at "/" and proxies /v1/ (REST and
// the WebSocket upgrade) to presenced, as the bridge will once it mounts
// the dashboard itself. The proxy keeps the browser's Host header: the
// stream's origin check compares it with the Origin header.
func dashboardServer(t *testing.T, d *daemon) *httptest.Server {
	t.Helper()
	target, err := url.Parse(d.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
		r.SetXForwarded()
	}}
	mux := http.NewServeMux()
	mux.Handle("/v1/", proxy)
	mux.Handle("/", dashboard.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// pageState is what the script reports after each text it saw.
type pageState struct {
	Show      string         `json:"show"`
	Status    string         `json:"status"`
	Resources int            `json:"resources"`
	Conn      string         `json:"conn"`
	Seq       string         `json:"seq"`
	Counts    map[string]int `json:"counts"`
	Rows      []struct {
		JID    string `json:"jid"`
		Show   string `json:"show"`
		Status string `json:"status"`
	} `json:"rows"`
}

// script is the running node script; lines carries its stdout.
type script struct {
	lines  chan string
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// next returns the script's next line of output, failing the test if the
// script ends or says nothing within 45s (its own waits give up at 30s).
func (s *script) next(t *testing.T, what string) string {
	t.Helper()
	select {
	case line, ok := <-s.lines:
		if !ok {
			t.Fatalf("the dashboard script ended while the test waited for %s: %v\nstderr:\n%s", what, <-s.done, s.stderr)
		}
		return line
	case <-time.After(45 * time.Second):
		t.Fatalf("the dashboard script printed nothing within 45s while the test waited for %s\nstderr:\n%s", what, s.stderr)
	}
	return ""
}

func (s *script) expect(t *testing.T, want string) {
	t.Helper()
	if got := s.next(t, fmt.Sprintf("%q", want)); got != want {
		t.Fatalf("dashboard script printed %q, want %q\nstderr:\n%s", got, want, s.stderr)
	}
}

func (s *script) state(t *testing.T) pageState {
	t.Helper()
	line := s.next(t, "the page state")
	raw, ok := strings.CutPrefix(line, "state ")
	var st pageState
	if !ok || json.Unmarshal([]byte(raw), &st) != nil {
		t.Fatalf("dashboard script printed %q, want a state line", line)
	}
	return st
}

func seqOf(t *testing.T, st pageState) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(st.Seq, 10, 64)
	if err != nil {
		t.Fatalf("the page's last seq is %q", st.Seq)
	}
	return n
}

func runScript(t *testing.T, args ...string) *script {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "node", append([]string{"dashboard.mjs"}, args...)...)
	cmd.Dir = "dashboard"
	cmd.WaitDelay = 5 * time.Second
	s := &script{lines: make(chan string, 16), stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		s.done <- cmd.Wait()
		close(s.lines)
	}()
	t.Cleanup(func() {
		cancel()
		for range s.lines {
		}
	})
	return s
}

// TestDashboardShowsPresence drives the dashboard in headless Chromium: bob
// is online before the page loads (the snapshot path), alice logs in once
// the page is live (a change frame creates her row), then changes her show
// and status (a changed frame updates it).
func TestDashboardShowsPresence(t *testing.T) {
	start := time.Now()
	needBrowser(t)
	d := startPresenced(t)
	d.waitConnected(t, 1)
	srv := dashboardServer(t, d)

	bobText := "bob was here before the page"
	login(t, "bob", xmppclient.Presence{Status: bobText})
	wantREST(t, d, "bob@localhost", func(u restUser) error {
		if !u.Online || u.Status != bobText {
			return fmt.Errorf("%+v", u)
		}
		return nil
	})

	nonce := time.Now().Format("150405.000")
	text1 := "café at my desk " + nonce
	text2 := "gone for lunch " + nonce
	shot := filepath.Join(t.ArtifactDir(), "dashboard.png")
	if p := os.Getenv("PRESENCED_DASHBOARD_SCREENSHOT"); p != "" {
		shot = p
	}
	s := runScript(t, srv.URL+"/", "alice@localhost", text1, text2, shot)
	s.expect(t, "ready")

	desk := login(t, "alice", xmppclient.Presence{Priority: 5, Status: text1})
	s.expect(t, "seen "+text1)
	first := s.state(t)
	if first.Show != "available" || first.Status != text1 || first.Resources != 1 || first.Conn != "live" {
		t.Errorf("after login the page shows %+v", first)
	}
	bobSeen := false
	for _, r := range first.Rows {
		if r.JID == "bob@localhost" {
			bobSeen = r.Show == "available" && r.Status == bobText
		}
	}
	if !bobSeen {
		t.Errorf("the page does not show bob (online before it loaded) as available with %q: %+v", bobText, first.Rows)
	}

	if err := desk.Presence(ctx(t), xmppclient.Presence{Show: "away", Status: text2}); err != nil {
		t.Fatal(err)
	}
	s.expect(t, "seen "+text2)
	second := s.state(t)
	if second.Show != "away" || second.Status != text2 || second.Resources != 1 || second.Conn != "live" {
		t.Errorf("after the change the page shows %+v", second)
	}
	if second.Counts["away"] != first.Counts["away"]+1 || second.Counts["available"] != first.Counts["available"]-1 {
		t.Errorf("counts by show went from %v to %v, want one user moved from available to away", first.Counts, second.Counts)
	}
	if a, b := seqOf(t, first), seqOf(t, second); b <= a {
		t.Errorf("last seq went from %d to %d", a, b)
	}

	select {
	case <-time.After(30 * time.Second):
		t.Fatal("the dashboard script did not exit within 30s of its last wait")
	case line, ok := <-s.lines:
		if ok {
			t.Fatalf("dashboard script printed %q after its last wait", line)
		}
	}
	if err := <-s.done; err != nil {
		t.Fatalf("dashboard script: %v\nstderr:\n%s", err, s.stderr)
	}
	if _, err := os.Stat(shot); err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot: %s; the test took %v", shot, time.Since(start).Round(time.Millisecond))
}
