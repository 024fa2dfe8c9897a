package component

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presenced/presenced/presence"
)

// fast returns a Config whose heartbeat runs in milliseconds; the test
// enables what it exercises by shortening it further.
func fast() Config {
	return Config{
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		ProbeWait: 100 * time.Millisecond, Tick: 5 * time.Millisecond,
		PingInterval: time.Hour, PingTimeout: 150 * time.Millisecond,
		SweepInterval: time.Hour, KeepAlive: time.Hour,
	}
}

// expect reads stanzas until one contains every part, and returns it.
func (c *fakeConn) expect(t *testing.T, parts ...string) string {
	t.Helper()
	for {
		got := c.read(t)
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(got, p)
		}
		if ok {
			return got
		}
	}
}

var idRE = regexp.MustCompile(`id='([^']*)'`)

func idOf(t *testing.T, stanza string) string {
	t.Helper()
	m := idRE.FindStringSubmatch(stanza)
	if m == nil {
		t.Fatalf("no id in %s", stanza)
	}
	return m[1]
}

// answerKeepalives reads everything the component sends from now on and
// answers its keepalive pings, as a working server would, so that a test
// can wait for a verdict that needs proof of a working link.
func (c *fakeConn) answerKeepalives() {
	c.answerIQs(func(to string) bool { return to == "presence.localhost" })
}

// answerIQs reads everything the component sends from now on and answers
// with a result each IQ for whose address answer says true.
func (c *fakeConn) answerIQs(answer func(to string) bool) { c.serve(answer, func() {}) }

// serve is answerIQs that also calls probed for each probe.
func (c *fakeConn) serve(answer func(to string) bool, probed func()) {
	go func() {
		for {
			tok, err := c.dec.Token()
			if err != nil {
				return
			}
			se, ok := tok.(xml.StartElement)
			if !ok || se.Name.Local != "iq" && se.Name.Local != "presence" {
				continue
			}
			var to, id, typ string
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "to":
					to = a.Value
				case "id":
					id = a.Value
				case "type":
					typ = a.Value
				}
			}
			_ = c.dec.Skip()
			if se.Name.Local == "presence" {
				if typ == "probe" {
					probed()
				}
				continue
			}
			if answer(to) {
				fmt.Fprintf(c, `<iq type='result' id='%s' from='%s' to='presence.localhost'/>`, id, to)
			}
		}
	}()
}

func nextEvent(t *testing.T, sub *presence.Subscription) presence.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	buf := make([]presence.Event, 1)
	if _, err := sub.Read(ctx, buf); err != nil {
		t.Fatalf("no event: %v", err)
	}
	return buf[0]
}

func online(t *testing.T, srv *fakeServer, tr *presence.Tracker) *fakeConn {
	t.Helper()
	conn := srv.next(t)
	io.WriteString(conn, `<presence from='alice@localhost/pc'/>`)
	waitFor(t, "alice online", func() bool { u, _ := tr.Get("alice@localhost"); return u.Online })
	return conn
}

func TestPingTimeout(t *testing.T) {
	cfg := fast()
	cfg.PingInterval = 50 * time.Millisecond
	srv := newFakeServer(t, "secret", false)
	tr, _ := startComponent(t, srv, cfg)
	conn := online(t, srv, tr)
	_, _, sub := tr.Subscribe(presence.Filter{}, 0)
	got := conn.expect(t, "<iq", "urn:xmpp:ping")
	for _, want := range []string{"from='presence.localhost'", "to='alice@localhost/pc'", "type='get'"} {
		if !strings.Contains(got, want) {
			t.Fatalf("ping %s lacks %s", got, want)
		}
	}
	conn.answerKeepalives()
	// No answer, on a link that works: offline with reason timeout.
	if ev := nextEvent(t, sub); ev.Kind != presence.EventOffline || ev.Reason != presence.ReasonTimeout {
		t.Fatalf("after an unanswered ping: %+v", ev)
	}
}

func TestPingAnswered(t *testing.T) {
	cfg := fast()
	cfg.PingInterval = 50 * time.Millisecond
	srv := newFakeServer(t, "secret", false)
	tr, _ := startComponent(t, srv, cfg)
	conn := online(t, srv, tr)
	for range 3 { // answered pings come back every interval, the user stays
		id := idOf(t, conn.expect(t, "urn:xmpp:ping", "to='alice@localhost/pc'"))
		fmt.Fprintf(conn, `<iq type='result' id='%s' from='alice@localhost/pc' to='presence.localhost'/>`, id)
	}
	if u, _ := tr.Get("alice@localhost"); !u.Online {
		t.Fatal("alice answered every ping but went offline")
	}
}

// iqError is the error a server answers for a session that is gone, and a
// client for a query it does not implement.
const iqError = `<iq type='error' id='%s' from='alice@localhost/pc' to='presence.localhost'>` +
	`<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`

// TestPingErrorSettledByDisco: a client without XEP-0199 answers disco#info,
// which only a live client does.
func TestPingErrorSettledByDisco(t *testing.T) {
	cfg := fast()
	cfg.PingInterval = 50 * time.Millisecond
	srv := newFakeServer(t, "secret", false)
	tr, _ := startComponent(t, srv, cfg)
	conn := online(t, srv, tr)
	id := idOf(t, conn.expect(t, "urn:xmpp:ping"))
	fmt.Fprintf(conn, iqError, id)
	id = idOf(t, conn.expect(t, "http://jabber.org/protocol/disco#info", "to='alice@localhost/pc'"))
	fmt.Fprintf(conn, `<iq type='result' id='%s' from='alice@localhost/pc' to='presence.localhost'>`+
		`<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/></query></iq>`, id)
	// The next ping, an interval later, proves the answer kept alice.
	conn.expect(t, "urn:xmpp:ping", "to='alice@localhost/pc'")
	if u, _ := tr.Get("alice@localhost"); !u.Online {
		t.Fatal("alice answered disco#info but went offline")
	}
}

// TestPingErrorSettledByProbe: errors to both ping and disco#info are
// settled by a probe: the server answers for a session it holds.
func TestPingErrorSettledByProbe(t *testing.T) {
	for _, answerProbe := range []bool{true, false} {
		t.Run(fmt.Sprintf("probe answered %v", answerProbe), func(t *testing.T) {
			cfg := fast()
			cfg.PingInterval = 50 * time.Millisecond
			srv := newFakeServer(t, "secret", false)
			tr, _ := startComponent(t, srv, cfg)
			conn := online(t, srv, tr)
			_, _, sub := tr.Subscribe(presence.Filter{}, 0)
			id := idOf(t, conn.expect(t, "urn:xmpp:ping"))
			// A client without XEP-0199, or a session that is gone: the same error.
			fmt.Fprintf(conn, iqError, id)
			fmt.Fprintf(conn, iqError, idOf(t, conn.expect(t, "http://jabber.org/protocol/disco#info")))
			conn.expect(t, "type='probe'", "to='alice@localhost'")
			if !answerProbe {
				conn.answerKeepalives()
				if ev := nextEvent(t, sub); ev.Kind != presence.EventOffline || ev.Reason != presence.ReasonTimeout {
					t.Fatalf("unanswered probe after a ping error: %+v", ev)
				}
				return
			}
			io.WriteString(conn, `<presence from='alice@localhost/pc'/>`)
			// The next ping proves the resource survived the probe window.
			id = idOf(t, conn.expect(t, "urn:xmpp:ping"))
			if u, _ := tr.Get("alice@localhost"); !u.Online {
				t.Fatal("alice answered the probe but went offline")
			}
			fmt.Fprintf(conn, `<iq type='result' id='%s' from='alice@localhost/pc' to='presence.localhost'/>`, id)
		})
	}
}

// TestProbeSweep: an unanswered sweep probe takes offline a user whose
// server answered probes before (a roster contact); a user it never
// answered for (directed presence) is pinged instead, and stays while its
// client answers.
func TestProbeSweep(t *testing.T) {
	t.Run("roster", func(t *testing.T) {
		cfg := fast()
		cfg.SweepInterval = 50 * time.Millisecond
		srv := newFakeServer(t, "secret", false)
		tr, _ := startComponent(t, srv, cfg)
		conn := online(t, srv, tr)
		_, _, sub := tr.Subscribe(presence.Filter{}, 0)
		// The server answers the first probe only, and every keepalive.
		var probes atomic.Int32
		conn.serve(func(to string) bool { return to == "presence.localhost" }, func() {
			if probes.Add(1) == 1 {
				io.WriteString(conn, `<presence from='alice@localhost/pc'/>`)
			}
		})
		if ev := nextEvent(t, sub); ev.Kind != presence.EventOffline || ev.Reason != presence.ReasonReconcile {
			t.Fatalf("after an unanswered sweep probe: %+v", ev)
		}
	})
	t.Run("directed", func(t *testing.T) {
		cfg := fast()
		cfg.SweepInterval = 50 * time.Millisecond
		srv := newFakeServer(t, "secret", false)
		tr, _ := startComponent(t, srv, cfg)
		conn := online(t, srv, tr)
		var pings atomic.Int32
		conn.answerIQs(func(to string) bool {
			if to == "alice@localhost/pc" {
				pings.Add(1)
			}
			return true
		})
		waitFor(t, "three pings after unanswered probes", func() bool { return pings.Load() >= 3 })
		if u, _ := tr.Get("alice@localhost"); !u.Online {
			t.Fatal("alice answered her pings but the sweep took her offline")
		}
	})
}

func TestKeepalive(t *testing.T) {
	cfg := fast()
	cfg.KeepAlive = 20 * time.Millisecond
	srv := newFakeServer(t, "secret", false)
	_, c := startComponent(t, srv, cfg)
	conn := srv.next(t)
	// Answered: the link stays.
	for range 2 {
		id := idOf(t, conn.expect(t, "urn:xmpp:ping", "to='presence.localhost'"))
		fmt.Fprintf(conn, `<iq type='result' id='%s' from='presence.localhost' to='presence.localhost'/>`, id)
	}
	if c.connects.Load() != 1 {
		t.Fatalf("Connects = %d with answered keepalives", c.connects.Load())
	}
	// Unanswered: the link is dropped and comes back.
	conn.expect(t, "urn:xmpp:ping", "to='presence.localhost'")
	srv.next(t)
	waitFor(t, "the second handshake", func() bool { return c.connects.Load() == 2 })
}

// TestStalledLinkIsNotBlamedOnUsers: when the server stops answering
// altogether, the unanswered ping says nothing about the user; the
// keepalive fails and the link is dropped, and no resource goes offline
// with reason timeout.
func TestStalledLinkIsNotBlamedOnUsers(t *testing.T) {
	cfg := fast()
	cfg.PingInterval = 50 * time.Millisecond
	cfg.KeepAlive = time.Hour // only the ping's doubt triggers a keepalive
	srv := newFakeServer(t, "secret", false)
	tr, c := startComponent(t, srv, cfg)
	conn := online(t, srv, tr)
	_, _, sub := tr.Subscribe(presence.Filter{}, 0)
	conn.expect(t, "urn:xmpp:ping", "to='alice@localhost/pc'")
	// The server goes silent: nothing is answered, nothing is read.
	waitFor(t, "the link to be dropped", func() bool { return c.connects.Load() == 2 })
	buf := make([]presence.Event, 8)
	n, _ := sub.TryRead(buf)
	for _, ev := range buf[:n] {
		if ev.Reason == presence.ReasonTimeout {
			t.Fatalf("a stalled link was charged to the user: %+v", ev)
		}
	}
}
