//go:build integration

package integration

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/xmppclient"
)

// TestRestartOnMemoryStoreReconcilesFromEjabberd (issue 13, point 7): a
// presenced on the memory store that restarts knows nobody; with
// -ejabberd-api it takes ejabberd's session list, probes the users on it,
// and the answers bring back those who have the component on their
// roster, with their presence as they last sent it, without any of them
// sending presence again. A user online on ejabberd without the component
// on the roster is listed by ejabberd too, and must not appear.
//
// Before the session reconciler existed the restarted presenced stayed
// empty until users changed presence: the first eventually below times
// out.
func TestRestartOnMemoryStoreReconcilesFromEjabberd(t *testing.T) {
	const pw = "restart-pw"
	if err := ejabberd("adduser", "rs-ann", pw, "rs-ben", pw); err != nil {
		t.Fatal(err)
	}
	if err := ejd.addUsers(false, "rs-nora", pw); err != nil {
		t.Fatal(err)
	}

	cfg := []string{
		"PRESENCED_STORE=memory",
		"PRESENCED_EJABBERD_API=" + env["EJABBERD_API_URL"],
		"PRESENCED_RECONCILE_DOMAINS=" + env["XMPP_DOMAIN"],
		// Only the passes at start and after the handshake may bring the
		// users back, not a periodic one.
		"PRESENCED_RECONCILE_INTERVAL=1h",
	}
	first := startPresenced(t, cfg...)
	first.waitConnected(t, 1)
	ws := first.stream(t)
	ann := dialAs(t, "rs-ann", pw, xmppclient.Presence{Show: "away", Status: "restart me", Priority: 4})
	ben := dialAs(t, "rs-ben", pw, xmppclient.Presence{Priority: 2})
	nora := dialAs(t, "rs-nora", pw, xmppclient.Presence{Show: "chat", Status: "not for presenced"})
	ws.expect(t, "ann online", func(f frame) bool { return f.JID == "rs-ann@localhost" && f.Event == "online" })
	ws.expect(t, "ben online", func(f frame) bool { return f.JID == "rs-ben@localhost" && f.Event == "online" })
	if _, code := first.user(t, "rs-nora@localhost"); code != http.StatusNotFound {
		t.Fatalf("nora, without presenced on her roster, is known before the restart: %d", code)
	}
	first.stop(t)

	began := time.Now()
	second := startPresenced(t, cfg...)
	second.waitConnected(t, 1)
	wantREST(t, second, "rs-ann@localhost", func(u restUser) error {
		if !u.Online || u.Show != "away" || u.Status != "restart me" || len(u.Resources) != 1 ||
			u.Resources[0].Resource != ann.JID.Resourcepart() || u.Resources[0].Priority != 4 {
			return fmt.Errorf("want ann back, away, 'restart me', priority 4, resource %s: %+v", ann.JID.Resourcepart(), u)
		}
		return nil
	})
	wantREST(t, second, "rs-ben@localhost", func(u restUser) error {
		if !u.Online || u.Show != "available" || len(u.Resources) != 1 || u.Resources[0].Resource != ben.JID.Resourcepart() || u.Resources[0].Priority != 2 {
			return fmt.Errorf("want ben back, available, priority 2: %+v", u)
		}
		return nil
	})
	t.Logf("users back %v after the restart began (start, handshake, list, probes, answers)", time.Since(began).Round(time.Millisecond))

	// nora was listed and probed like the others; ejabberd does not answer
	// a probe from a contact without a subscription, so she stays unknown.
	// Wait for the pass after the handshake, then past the probe wait.
	eventually(t, "the reconcile pass that probed after the handshake", 15*time.Second, func() error {
		if len(second.logs.matches(`msg="ejabberd: reconciled"`)) == 0 {
			return fmt.Errorf("no pass logged yet")
		}
		return nil
	})
	time.Sleep(3 * time.Second) // PRESENCED_PROBE_WAIT (2s) and then some, for a late answer
	if u, code := second.user(t, "rs-nora@localhost"); code != http.StatusNotFound {
		t.Errorf("nora, online on ejabberd without presenced on her roster, appears: %d %+v", code, u)
	}
	for _, u := range second.list(t) {
		if u.JID == "rs-nora@localhost" {
			t.Errorf("nora is in the list: %+v", u)
		}
	}
	if len(second.logs.matches("ejabberd: reconcile failed")) > 0 {
		t.Error("a reconcile pass failed against a healthy ejabberd")
	}
	_ = nora
}
