package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/presenced/presenced/internal/poll"
)

// testConfig is a Config for a presenced on loopback attached to server
// (an address where nothing may listen), with the defaults otherwise.
func testConfig(server string) Config {
	return Config{JID: "presence.localhost", Secret: "s", Server: server, HTTP: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// start starts an App from cfg and stops it when the test ends.
func start(t *testing.T, cfg Config) *App {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Stop(context.Background()); err != nil {
			t.Errorf("Stop = %v", err)
		}
	})
	return a
}

// TestRunServesAndStops starts presenced with no XMPP server listening (the
// component keeps retrying in the background) and checks that the bridge
// answers and that cancelling stops everything.
func TestRunServesAndStops(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	a, err := New(testConfig(deadAddr))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := a.Addr()
	resp, err := http.Get("http://" + addr.String() + "/v1/presence")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Seq   uint64 `json:"seq"`
		Users []any  `json:"users"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || len(body.Users) != 0 {
		t.Fatalf("GET /v1/presence: %d %+v %v", resp.StatusCode, body, err)
	}
	resp.Body.Close()
	if err := a.Stop(context.Background()); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if _, err := http.Get("http://" + addr.String() + "/v1/presence"); err == nil {
		t.Error("the bridge still answers after Stop")
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Errorf("a second Stop = %v", err)
	}
}

// TestRunStopsWhenTheContextEnds: Run, as cmd/presenced calls it.
func TestRunStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, testConfig("127.0.0.1:1")) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestRunRefusesBadHTTPAddress(t *testing.T) {
	o := testConfig("127.0.0.1:1")
	o.HTTP = "256.0.0.1:1"
	if err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "-http") {
		t.Fatalf("Run = %v, want an error naming -http", err)
	}
}

func TestRunNamesTheStoreSetting(t *testing.T) {
	for _, url := range []string{"postgres://u:secret@127.0.0.1:notaport/db", "postgres://u@127.0.0.1:1/db?connect_timeout=2"} {
		o := testConfig("127.0.0.1:1")
		o.Store = url
		err := Run(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), "-store (PRESENCED_STORE)") || strings.Contains(err.Error(), "secret") {
			t.Errorf("Run with -store %s = %v, want an error naming -store without the password", url, err)
		}
	}
}

func TestRunWithJWT(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("a-test-secret-of-enough-length-32b"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := testConfig("127.0.0.1:1")
	o.JWTKeys = []string{"hs256:" + secret}
	base := "http://" + start(t, o).Addr().String()
	get := func(token string) int {
		req, _ := http.NewRequest("GET", base+"/v1/presence", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice@localhost",
		"exp": time.Now().Add(time.Hour).Unix(), "domains": []string{"localhost"}}).SignedString([]byte("a-test-secret-of-enough-length-32b"))
	if code := get(""); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code := get(tok + "x"); code != 401 {
		t.Errorf("forged token: %d", code)
	}
	if code := get(tok); code != 200 {
		t.Errorf("good token: %d", code)
	}
}

// TestStopLeavesNothingRunning: an App that stopped leaves no goroutine of
// its own behind (the bridge's hub and pings included), so tests and tools
// may start many in one process.
func TestStopLeavesNothingRunning(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 5 {
		a, err := New(testConfig("127.0.0.1:1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := a.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, "the goroutines of 5 stopped Apps to end", 10*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before+2 {
			return fmt.Errorf("%d goroutines, %d before", n, before)
		}
		return nil
	})
}

// TestStopDuringStart: a Stop that comes while Start works waits for it,
// then stops what it started; a Start after a Stop is refused.
func TestStopDuringStart(t *testing.T) {
	a, err := New(testConfig("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- a.Start(context.Background()) }()
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-started; err != nil && !strings.Contains(err.Error(), "stopped before") {
		t.Fatalf("Start = %v", err)
	}
	if err := a.Start(context.Background()); err == nil {
		t.Fatal("a Start after Stop was accepted")
	}
}
