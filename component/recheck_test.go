package component

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/presenced/presenced/presence"
)

// TestStaleResourceRechecked: a resource offline for an unanswered ping
// stays offline when the server answers a probe for it; it is pinged once
// more, and when (its session resumed) the client answers that ping, the
// server's presence for it comes back as the client's. If the client stays
// silent, it stays offline.
func TestStaleResourceRechecked(t *testing.T) {
	for _, answers := range []bool{true, false} {
		t.Run(fmt.Sprintf("client answers %v", answers), func(t *testing.T) {
			cfg := fast()
			srv := newFakeServer(t, "secret", false)
			tr, c := startComponent(t, srv, cfg)
			conn := srv.next(t)
			io.WriteString(conn, `<presence from='alice@localhost/pc'><status>held</status></presence>`)
			waitFor(t, "alice online", func() bool { u, _ := tr.Get("alice@localhost"); return u.Online })
			// The ping the client left unanswered.
			tr.ExpireResource("alice@localhost", "pc", tr.Now().Add(1), presence.ReasonTimeout)
			if !tr.Stale("alice@localhost", "pc") {
				t.Fatal("not stale after a missed ping")
			}
			_, _, sub := tr.Subscribe(presence.Filter{}, 0)
			if _, err := c.Probe(context.Background(), []string{"alice@localhost"}); err != nil {
				t.Fatal(err)
			}
			conn.expect(t, "type='probe'", "to='alice@localhost'")
			// The server answers for the session it holds.
			io.WriteString(conn, `<presence from='alice@localhost/pc'><status>held</status></presence>`)
			id := idOf(t, conn.expect(t, "urn:xmpp:ping", "to='alice@localhost/pc'"))
			if u, _ := tr.Get("alice@localhost"); u.Online {
				t.Fatal("the server's answer alone brought a stale resource back")
			}
			if !answers {
				conn.answerKeepalives()
				time.Sleep(3 * cfg.PingTimeout) // the recheck's ping times out
				if u, _ := tr.Get("alice@localhost"); u.Online || !tr.Stale("alice@localhost", "pc") {
					t.Fatal("back online without the client's answer")
				}
				return
			}
			fmt.Fprintf(conn, `<iq type='result' id='%s' from='alice@localhost/pc' to='presence.localhost'/>`, id)
			if ev := nextEvent(t, sub); ev.Kind != presence.EventOnline || ev.Resource.Status != "held" {
				t.Fatalf("after the client answered the recheck: %+v", ev)
			}
			if tr.Stale("alice@localhost", "pc") {
				t.Fatal("still stale after the client answered")
			}
		})
	}
}
