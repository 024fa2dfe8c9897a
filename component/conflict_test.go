package component

import (
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// conflict is what a server with conflict_behaviour = "kick_old" sends on
// the older of two links with one JID (a fake: no real server here can be
// told to; integration tests do it with two processes).
const conflict = `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`

var retryIn = regexp.MustCompile(`conflicts_in_a_row=(\d+) retry_in=(\S+)`)

// TestConflictBacksOffAndSaysWhy: a link that the server replaces with
// another connection of the same JID is not redialled at once, as a
// dropped link is, but after MaxBackoff, doubling with each conflict in a
// row; Health names the cause, a metric counts them, and a link that ends
// for another reason starts the count over.
func TestConflictBacksOffAndSaysWhy(t *testing.T) {
	srv := newFakeServer(t, "secret", false)
	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	const maxBackoff = 200 * time.Millisecond
	_, c := startComponent(t, srv, Config{MinBackoff: time.Millisecond, MaxBackoff: maxBackoff, ProbeWait: 10 * time.Millisecond,
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(logs, nil))})

	var delays []time.Duration
	for n := 1; n <= 3; n++ {
		conn := srv.next(t)
		io.WriteString(conn, conflict)
		waitFor(t, "the conflict logged", func() bool { return logs.Count("stream error conflict") == n })
		if err := c.Health(); err == nil || !strings.Contains(err.Error(), "another connection holds the component JID presence.localhost") {
			t.Fatalf("Health after %d conflicts = %v", n, err)
		}
		m := retryIn.FindAllStringSubmatch(logs.String(), -1)
		d, err := time.ParseDuration(m[len(m)-1][2])
		if err != nil || m[len(m)-1][1] != string(rune('0'+n)) {
			t.Fatalf("conflict %d logged as %q", n, m[len(m)-1][0])
		}
		delays = append(delays, d)
	}
	// Nominal MaxBackoff·2ⁿ⁻¹, of which the jitter keeps at least half:
	// never less than the MaxBackoff of a dropped link's backoff.
	for i, d := range delays {
		if low := maxBackoff << i / 2; d < low {
			t.Errorf("conflict %d waited %v, want at least %v", i+1, d, low)
		}
	}
	if got := counterValue(t, reg, "presence_component_conflicts_total"); got != 3 {
		t.Errorf("presence_component_conflicts_total = %v, want 3", got)
	}

	// A link that ends otherwise: the count starts over (the component
	// redials within MinBackoff, so the test takes the next link rather
	// than watch for the moment it is down).
	conn := srv.next(t)
	waitFor(t, "the link up", c.Connected)
	if err := c.Health(); err != nil {
		t.Fatalf("Health with the link up = %v", err)
	}
	conn.Close()
	conn = srv.next(t)
	io.WriteString(conn, conflict)
	waitFor(t, "a fourth conflict logged", func() bool { return logs.Count("stream error conflict") == 4 })
	if m := retryIn.FindAllStringSubmatch(logs.String(), -1); m[len(m)-1][1] != "1" {
		t.Errorf("after a plain drop, the conflict was counted as %s in a row", m[len(m)-1][1])
	}
}

// counterValue returns the value of the counter registered as name.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
