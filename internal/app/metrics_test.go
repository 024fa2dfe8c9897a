package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/presenced/presenced/bridge"
	"github.com/presenced/presenced/presence"
)

// seriesOf returns the presence_tracker_users series, as "show domain".
func seriesOf(t *testing.T, tr *presence.Tracker) map[string]float64 {
	t.Helper()
	mfs, err := newRegistry(tr).Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "presence_tracker_users" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[label(m, "show")+" "+label(m, "domain")] = m.GetGauge().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestUsersMetricBounded: web presences in 30 domains, posted through the
// bridge as a client would, add no series: the domain label takes the
// served domains and "other" only.
func TestUsersMetricBounded(t *testing.T) {
	tr := presence.New(presence.Options{Domains: servedDomains(Config{JID: "presence.example.org", Domains: []string{"example.net"}})})
	before := seriesOf(t, tr)
	srv := httptest.NewServer(bridge.New(bridge.Config{Tracker: tr}))
	defer srv.Close()
	for i := range 30 {
		body := fmt.Sprintf(`{"jid":"u%d@d%d.example","resource":"tab","show":"away"}`, i, i)
		resp, err := http.Post(srv.URL+"/v1/webpresence", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("web presence %d: %s", i, resp.Status)
		}
	}
	tr.Apply(presence.Update{User: "a@example.org", Resource: "pc", Available: true})
	after := seriesOf(t, tr)
	if len(after) != len(before) || len(after) != 3*presence.NumStates {
		t.Fatalf("%d series before, %d after: %v", len(before), len(after), after)
	}
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{"away other", 30},
		{"available example.org", 1},
		{"available example.net", 0},
		{"offline other", 0},
	} {
		if got, ok := after[tc.series]; !ok || got != tc.want {
			t.Errorf("%s = %v (present %v), want %v", tc.series, got, ok, tc.want)
		}
	}
}

func TestServedDomains(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Config
		want string
	}{
		{"parent of the JID", Config{JID: "presence.example.org"}, "example.org"},
		{"localhost", Config{JID: "presence.localhost"}, "localhost"},
		{"reconcile and configured, once each", Config{JID: "presence.example.org",
			ReconcileDomains: []string{"example.net", "example.org"}, Domains: []string{" Example.COM ", "", "example.net"}},
			"example.org example.net example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(servedDomains(tc.o), " "); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
