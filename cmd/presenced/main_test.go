package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

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

	ready := make(chan net.Addr, 1)
	o, err := parseOptions([]string{"-jid", "presence.localhost", "-secret", "s", "-server", deadAddr, "-http", "127.0.0.1:0"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.Ready = func(a net.Addr) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, o) }()
	addr := <-ready

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
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestRunRefusesBadHTTPAddress(t *testing.T) {
	o, _ := parseOptions([]string{"-jid", "presence.localhost", "-secret", "s", "-http", "256.0.0.1:1"},
		func(string) string { return "" }, io.Discard)
	if err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "-http") {
		t.Fatalf("Run = %v, want an error naming -http", err)
	}
}

func TestRunNamesTheStoreSetting(t *testing.T) {
	for _, url := range []string{"postgres://u:secret@127.0.0.1:notaport/db", "postgres://u@127.0.0.1:1/db?connect_timeout=2"} {
		o, err := parseOptions([]string{"-jid", "presence.localhost", "-secret", "s", "-http", "127.0.0.1:0", "-store", url},
			func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		err = Run(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), "-store (PRESENCED_STORE)") || strings.Contains(err.Error(), "secret") {
			t.Errorf("Run with -store %s = %v, want an error naming -store without the password", url, err)
		}
	}
	if code := migrate([]string{"-store", "memory"}, func(string) string { return "" }, io.Discard); code != 2 {
		t.Errorf("migrate on a memory store: exit %d, want 2", code)
	}
}

func TestRunWithJWT(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("a-test-secret-of-enough-length-32b"), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := make(chan net.Addr, 1)
	o, err := parseOptions([]string{"-jid", "presence.localhost", "-secret", "s", "-server", "127.0.0.1:1", "-http", "127.0.0.1:0",
		"-jwt-keys", "hs256:" + secret}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.Ready = func(a net.Addr) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, o) }()
	base := "http://" + (<-ready).String()
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
	cancel()
	<-done
}

// TestMetricsPassPromtool runs presenced with its metrics endpoint, makes
// every subsystem produce series, and checks the real output with
// promtool (installed by scripts/test; its absence is a failure).
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: scripts/test installs it (Debian package prometheus)")
	}
	ready, metricsReady := make(chan net.Addr, 1), make(chan net.Addr, 1)
	o, err := parseOptions([]string{"-jid", "presence.localhost", "-secret", "s", "-server", "127.0.0.1:1",
		"-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.Ready = func(a net.Addr) { ready <- a }
	o.MetricsReady = func(a net.Addr) { metricsReady <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, o) }()
	defer func() { cancel(); <-done }()
	api, metrics := "http://"+(<-ready).String(), "http://"+(<-metricsReady).String()
	for _, path := range []string{"/v1/presence", "/v1/nothing", "/readyz", "/healthz"} {
		resp, err := http.Get(api + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"presence_build_info", "presence_tracker_events_total", "presence_tracker_resources",
		"presence_component_link_up 0", "presence_bridge_requests_total{code=\"200\",route=\"/v1/presence\"} 1",
		"presence_bridge_request_duration_seconds_bucket", "presence_bridge_websocket_connections 0", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(string(body))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
