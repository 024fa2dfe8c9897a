//go:build integration

package app

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// TestMetricsPassPromtool runs presenced with its metrics endpoint, makes
// every subsystem produce series, and checks the real output with
// promtool (installed by scripts/test; its absence is a failure).
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: scripts/test installs it (Debian package prometheus)")
	}
	o := testConfig("127.0.0.1:1")
	o.Metrics = "127.0.0.1:0"
	a := start(t, o)
	api, metrics := "http://"+a.Addr().String(), "http://"+a.MetricsAddr().String()
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
