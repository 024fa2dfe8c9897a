package component

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/internal/poll"
	"github.com/presenced/presenced/presence"
)

func newLimitedComponent(t *testing.T, opts presence.Options, cfg Config) (*Component, *presence.Tracker) {
	t.Helper()
	tr := presence.New(opts)
	cfg.JID, cfg.Secret, cfg.Addr, cfg.Tracker = jid.MustParse("presence.localhost"), "s", "127.0.0.1:1", tr
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, tr
}

func TestStanzaSizeLimit(t *testing.T) {
	c, tr := newLimitedComponent(t, presence.Options{}, Config{MaxStanza: 1000})
	for _, tt := range []struct {
		name, stanza string
		online       bool
	}{
		{"small", `<presence` + ns + ` from='a@localhost/r' to='presence.localhost'><status>hi</status></presence>`, true},
		{"long status", `<presence` + ns + ` from='b@localhost/r' to='presence.localhost'><status>` + strings.Repeat("x", 2000) + `</status></presence>`, false},
		{"many children", `<presence` + ns + ` from='c@localhost/r' to='presence.localhost'>` + strings.Repeat("<x y='z'/>", 300) + `</presence>`, false},
		{"long attribute", `<presence` + ns + ` from='d@localhost/r' to='presence.localhost' junk='` + strings.Repeat("j", 2000) + `'/>`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			feed(t, c, tt.stanza) // never ends the stream (feed checks)
			user := strings.SplitN(strings.SplitN(tt.stanza, "from='", 2)[1], "/", 2)[0]
			u, _ := tr.Get(user)
			if u.Online != tt.online {
				t.Fatalf("%s online %v, want %v", user, u.Online, tt.online)
			}
		})
	}
}

// TestFlappingUserIsLimited: one user changing presence far over UserRate
// reaches the tracker UserRate times per window plus once at its end, with
// the newest state; another user in the same window is not held back.
func TestFlappingUserIsLimited(t *testing.T) {
	c, tr := newLimitedComponent(t, presence.Options{}, Config{UserRate: 5})
	_, _, sub := tr.Subscribe(presence.Filter{}, 1<<14)
	defer sub.Close()
	for i := range 1000 {
		feed(t, c, fmt.Sprintf(`<presence%s from='flap@localhost/r' to='presence.localhost'><status>%d</status></presence>`, ns, i))
	}
	feed(t, c, `<presence`+ns+` from='calm@localhost/r' to='presence.localhost'><status>calm</status></presence>`)
	if u, _ := tr.Get("calm@localhost"); u.Status != "calm" {
		t.Fatalf("the calm user was held back: %+v", u)
	}
	if u, _ := tr.Get("flap@localhost"); u.Status != "4" {
		t.Fatalf("during the window the tracker has status %q, want the fifth (4)", u.Status)
	}
	for _, u := range c.flaps.flush() { // the window ends
		tr.Apply(u)
	}
	if u, _ := tr.Get("flap@localhost"); u.Status != "999" {
		t.Fatalf("after the window the status is %q, want the newest (999)", u.Status)
	}
	buf := make([]presence.Event, 2000)
	n, _ := sub.TryRead(buf)
	flapEvents := 0
	for _, ev := range buf[:n] {
		if ev.User == "flap@localhost" {
			flapEvents++
		}
	}
	if flapEvents != 6 {
		t.Fatalf("%d events for the flapping user, want 6 (5 admitted, 1 at the window's end)", flapEvents)
	}
}

// TestHeldUpdatesDoNotOutliveADrop: an unavailable to the bare JID settles
// the user; what the limiter held must not bring it back.
func TestHeldUpdatesDoNotOutliveADrop(t *testing.T) {
	c, tr := newLimitedComponent(t, presence.Options{}, Config{UserRate: 1})
	feed(t, c, `<presence`+ns+` from='u@localhost/r' to='presence.localhost'/>`)
	feed(t, c, `<presence`+ns+` from='u@localhost/r2' to='presence.localhost'/>`) // held
	feed(t, c, `<presence`+ns+` from='u@localhost' to='presence.localhost' type='unavailable'/>`)
	if held := c.flaps.flush(); len(held) != 0 {
		t.Fatalf("held after the drop: %+v", held)
	}
	if u, _ := tr.Get("u@localhost"); u.Online {
		t.Fatalf("online after the drop: %+v", u)
	}
}

func TestFlapLimiterRunsWindows(t *testing.T) {
	c, tr := newLimitedComponent(t, presence.Options{}, Config{UserRate: 1, flapWindow: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.flaps.run(ctx, tr)
	feed(t, c, `<presence`+ns+` from='u@localhost/r' to='presence.localhost'><status>1</status></presence>`)
	feed(t, c, `<presence`+ns+` from='u@localhost/r' to='presence.localhost'><status>2</status></presence>`)
	poll.True(t, "the held update applied", 5*time.Second, func() bool {
		u, _ := tr.Get("u@localhost")
		return u.Status == "2"
	})
}

func TestTrackerBoundsAreReported(t *testing.T) {
	c, tr := newLimitedComponent(t, presence.Options{MaxResources: 1}, Config{})
	feed(t, c, `<presence`+ns+` from='u@localhost/one' to='presence.localhost'/>`)
	feed(t, c, `<presence`+ns+` from='u@localhost/two' to='presence.localhost'/>`)
	if u, _ := tr.Get("u@localhost"); len(u.Resources) != 1 || tr.Refused() != 1 {
		t.Fatalf("resources %+v, refused %d", u.Resources, tr.Refused())
	}
}
