package component

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	mcomp "mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/presence"
)

// linkedComponent returns a component and a link to the fake server that
// Probe sends on, attached as session() attaches its links, and the
// server's side of it.
func linkedComponent(t *testing.T) (*Component, *fakeConn, func()) {
	t.Helper()
	srv := newFakeServer(t, "secret", false)
	c, err := New(Config{JID: jid.MustParse("presence.localhost"), Secret: "secret", Addr: srv.ln.Addr().String(),
		Tracker: presence.New(presence.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", srv.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := mcomp.NewSession(ctx, c.cfg.JID, []byte("secret"), conn)
	if err != nil {
		t.Fatal(err)
	}
	fc := srv.next(t)
	return c, fc, c.attachLink(s)
}

var stanzaID = regexp.MustCompile(` id='[^']*'`)

func TestProbe(t *testing.T) {
	many := make([]string, 120) // more than one burst
	for i := range many {
		many[i] = fmt.Sprintf("u%03d@localhost", i)
	}
	for _, tc := range []struct {
		name  string
		users []string
		want  []string // the to of each probe, in order
		err   string
	}{
		{name: "none"},
		{name: "each once, normalized", users: []string{"Alice@LocalHost", "bob@localhost", "alice@localhost"},
			want: []string{"alice@localhost", "bob@localhost"}},
		{name: "invalid entries skipped and reported", users: []string{"alice@localhost/phone", "bob@localhost", "localhost", "@@", ""},
			want: []string{"bob@localhost"}, err: `skipped 4 entries that are not bare user JIDs, the first "alice@localhost/phone"`},
		{name: "paced, all sent", users: many, want: many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, fc, detach := linkedComponent(t)
			defer detach()
			sent, err := c.Probe(context.Background(), tc.users)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if sent != len(tc.want) {
				t.Errorf("sent %d, want %d", sent, len(tc.want))
			}
			var got []string
			for range tc.want {
				// mellium gives every stanza an id: not part of the check.
				got = append(got, stanzaID.ReplaceAllString(fc.read(t), ""))
			}
			var want []string
			for _, u := range tc.want {
				want = append(want, "<presence from='presence.localhost' to='"+u+"' type='probe'></presence>")
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("stanza %d: server received %q, want %q", i, got[i], want[i])
				}
			}
		})
	}
}

func TestProbeWithoutLink(t *testing.T) {
	c, _, detach := linkedComponent(t)
	linked := c.Linked()
	select {
	case <-linked:
	default:
		t.Error("Linked does not tell of the link already up")
	}
	detach()
	if _, err := c.Probe(context.Background(), []string{"alice@localhost"}); !errors.Is(err, ErrNotConnected) {
		t.Errorf("after the link: %v, want ErrNotConnected", err)
	}
	other, err := New(Config{JID: jid.MustParse("p.localhost"), Secret: "s", Addr: "127.0.0.1:1", Tracker: presence.New(presence.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if sent, err := other.Probe(context.Background(), []string{"alice@localhost"}); sent != 0 || !errors.Is(err, ErrNotConnected) {
		t.Errorf("never connected: %d, %v", sent, err)
	}
	// Nothing to send needs no link.
	if sent, err := other.Probe(context.Background(), nil); sent != 0 || err != nil {
		t.Errorf("no users: %d, %v", sent, err)
	}
}

func TestProbeCancelled(t *testing.T) {
	c, _, detach := linkedComponent(t)
	defer detach()
	users := make([]string, 2*probeBurst)
	for i := range users {
		users[i] = fmt.Sprintf("u%d@localhost", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The first write may still go out on a cancelled context; the pause
	// after the first burst never ends without it.
	sent, err := c.Probe(ctx, users)
	if !errors.Is(err, context.Canceled) || sent > probeBurst {
		t.Errorf("sent %d, err %v", sent, err)
	}
}

func TestLinkedNotifies(t *testing.T) {
	c, err := New(Config{JID: jid.MustParse("p.localhost"), Secret: "s", Addr: "127.0.0.1:1", Tracker: presence.New(presence.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	ch := c.Linked()
	detach := c.attachLink(nil) // the session itself does not matter here
	detach2 := c.attachLink(nil)
	select {
	case <-ch:
	default:
		t.Fatal("no notice after a handshake")
	}
	select {
	case <-ch:
		t.Fatal("two pending notices were not merged")
	default:
	}
	detach()
	detach2()
}
