//go:build integration

package ejabberd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/internal/poll"
	"github.com/presenced/presenced/internal/xmppclient"
	"github.com/presenced/presenced/presence"
)

// The tests below run against a real ejabberd 23.01 started by
// scripts/ejabberd (its HTTP API on loopback, every command allowed from
// 127.0.0.1 without credentials). They never skip: a server that cannot
// be started is a failure.

var ejEnv map[string]string

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "presenced-ejabberd-client-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	script := filepath.Join("..", "..", "scripts", "ejabberd")
	run := func(args ...string) (string, error) {
		var stderr bytes.Buffer
		cmd := exec.Command(script, args...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("scripts/ejabberd %s: %v\n%s", args[0], err, stderr.String())
		}
		return string(out), nil
	}
	envFile, err := run("start", dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ejabberd tests:", err)
		return 1
	}
	defer run("stop", dir)
	data, err := os.ReadFile(strings.TrimSpace(envFile))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ejabberd tests:", err)
		return 1
	}
	ejEnv = map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			ejEnv[k] = v
		}
	}
	if _, err := run("adduser", dir, "alice", "alice-pw", "bob", "bob-pw"); err != nil {
		fmt.Fprintln(os.Stderr, "ejabberd tests:", err)
		return 1
	}
	return m.Run()
}

func login(t *testing.T, user string, p *xmppclient.Presence) *xmppclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := xmppclient.Dial(ctx, ejEnv["XMPP_C2S_ADDR"], jid.MustParse(user+"@localhost"), user+"-pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if p != nil {
		if err := c.Presence(ctx, *p); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestListSessionsRealServer(t *testing.T) {
	c := &Client{URL: ejEnv["EJABBERD_API_URL"], Timeout: 10 * time.Second}
	ctx := context.Background()
	alice := login(t, "alice", &xmppclient.Presence{Show: "away", Status: "at lunch", Priority: 7})
	login(t, "bob", nil) // connected, no presence yet: not available

	list := func(domain string) []presence.Session {
		t.Helper()
		var got []presence.Session
		// The session's presence reaches the session table a moment after
		// the client sent it.
		_ = poll.For(10*time.Second, func() error {
			var err error
			if got, err = c.ListSessions(ctx, domain); err != nil {
				t.Fatal(err)
			}
			if len(got) > 0 || domain == "example.org" {
				return nil
			}
			return errors.New("none yet")
		})
		return got
	}
	for _, domain := range []string{"localhost", "LocalHost", ""} {
		got := list(domain)
		if len(got) != 1 {
			t.Fatalf("ListSessions(%q) = %+v, want alice's session alone", domain, got)
		}
		s := got[0]
		if s.User != "alice@localhost" || s.Resource == "" || s.Show != presence.ShowAway || s.Status != "at lunch" || s.Priority != 7 {
			t.Errorf("ListSessions(%q) = %+v", domain, s)
		}
	}
	if got := list("example.org"); len(got) != 0 {
		t.Errorf("another domain: %+v", got)
	}

	// After unavailable the session stays connected but is not listed.
	if err := alice.Unavailable(ctx); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "no session listed after unavailable", 10*time.Second, func() error {
		got, err := c.ListSessions(ctx, "localhost")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 {
			return fmt.Errorf("listed: %+v", got)
		}
		return nil
	})
}

func TestListSessionsErrorsRealServer(t *testing.T) {
	ctx := context.Background()
	url := ejEnv["EJABBERD_API_URL"]
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String() + "/api"
	}()
	for _, tc := range []struct {
		name   string
		client *Client
		domain string
		status int
		is     error
		want   string
	}{
		{name: "wrong path", client: &Client{URL: strings.TrimSuffix(url, "/api") + "/nope"}, status: 404, want: "HTTP 404"},
		{name: "wrong password", client: &Client{URL: url, User: "alice@localhost", Password: "wrong"}, status: 401, is: ErrUnauthorized, want: "HTTP 401"},
		{name: "nobody listening", client: &Client{URL: closed}, want: "connection refused"},
		{name: "no URL", client: &Client{}, want: "no URL configured"},
		{name: "bad domain", client: &Client{URL: url}, domain: "a@b", want: `invalid domain "a@b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.ListSessions(ctx, tc.domain)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "ejabberd: connected_users_info: ") {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			var e *Error
			if errors.As(err, &e) != (tc.status != 0) || (e != nil && e.StatusCode != tc.status) {
				t.Errorf("error %#v, want status %d", err, tc.status)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
		})
	}
}
