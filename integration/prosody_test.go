//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/internal/xmppclient"
)

// TestProsodyPrivilegedPresence runs presenced against a real Prosody
// whose mod_privilege (XEP-0356) grants it the presence of every user of
// the host: users who never put presenced on their rosters are tracked,
// including the unavailable Prosody sends for them when a connection is
// cut; and a user who was online before presenced connected is there too
// (Prosody pushes the current presence after the handshake).
func TestProsodyPrivilegedPresence(t *testing.T) {
	dir, err := os.MkdirTemp("", "presenced-prosody-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755) // Prosody runs as the user prosody
	t.Cleanup(func() { os.RemoveAll(dir) })
	inst := filepath.Join(dir, "prosody")
	prosody := func(args ...string) {
		t.Helper()
		out, err := exec.Command("../scripts/prosody", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("scripts/prosody %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	prosody("start", inst)
	t.Cleanup(func() { _ = exec.Command("../scripts/prosody", "stop", inst).Run() })
	penv, err := readEnv(filepath.Join(inst, "env"))
	if err != nil {
		t.Fatal(err)
	}
	prosody("adduser", inst, "pat", "pat-pw", "quinn", "quinn-pw")
	plogin := func(user string, p xmppclient.Presence) *xmppclient.Client {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := xmppclient.Dial(ctx, penv["XMPP_C2S_ADDR"], jid.MustParse(user+"@"+penv["XMPP_DOMAIN"]), user+"-pw")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if err := c.Presence(ctx, p); err != nil {
			t.Fatal(err)
		}
		return c
	}

	// pat is online before presenced connects.
	plogin("pat", xmppclient.Presence{Show: "away", Status: "was here first"})
	d := startPresenced(t,
		"PRESENCED_JID="+penv["XMPP_COMPONENT_JID"],
		"PRESENCED_SECRET="+penv["XMPP_COMPONENT_SECRET"],
		"PRESENCED_SERVER="+penv["XMPP_COMPONENT_ADDR"],
	)
	d.waitConnected(t, 1)
	eventually(t, "the privilege grant in presenced's log", 10*time.Second, func() error {
		if len(d.logs.matches("grants privileges")) == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if l := d.logs.matches("grants privileges")[0]; !strings.Contains(l, "presence=managed_entity") {
		t.Fatalf("grant: %s", l)
	}
	ws := d.stream(t)
	wantREST(t, d, "pat@localhost", func(u restUser) error {
		if !u.Online || u.Show != "away" || u.Status != "was here first" {
			return fmt.Errorf("pat: %+v", u)
		}
		return nil
	})

	quinn := plogin("quinn", xmppclient.Presence{Status: "hello"})
	ws.expect(t, "quinn online", func(f frame) bool { return f.JID == "quinn@localhost" && f.Event == "online" })
	if err := quinn.Presence(context.Background(), xmppclient.Presence{Show: "dnd", Status: "busy"}); err != nil {
		t.Fatal(err)
	}
	ws.expect(t, "quinn dnd", func(f frame) bool { return f.JID == "quinn@localhost" && f.User.Show == "dnd" })
	// A cut connection: Prosody notices and sends the unavailable.
	quinn.Kill()
	ws.expect(t, "quinn offline", func(f frame) bool { return f.JID == "quinn@localhost" && f.Event == "offline" })
	wantREST(t, d, "quinn@localhost", func(u restUser) error {
		if u.Online {
			return fmt.Errorf("quinn still online: %+v", u)
		}
		return nil
	})
}
