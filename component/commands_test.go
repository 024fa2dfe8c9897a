package component

import (
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/presence"
)

func adminComponent(t *testing.T) (*Component, *presence.Tracker) {
	t.Helper()
	tr := presence.New(presence.Options{})
	c, err := New(Config{JID: jid.MustParse("presence.localhost"), Secret: "s", Addr: "127.0.0.1:1", Tracker: tr,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Admins: []string{"boss@localhost", "admins.example"}})
	if err != nil {
		t.Fatal(err)
	}
	return c, tr
}

// command builds a command request; rest is what follows the node
// attribute: more attributes, '>' and the body.
func command(from, node, rest string) string {
	return `<iq` + ns + ` type='set' id='c1' from='` + from + `' to='presence.localhost'><command xmlns='http://jabber.org/protocol/commands' node='` +
		node + `'` + rest + `</command></iq>`
}

var sessionRE = regexp.MustCompile(`sessionid="([^"]+)"`)

func TestCommandsListedForAdminsOnly(t *testing.T) {
	c, _ := adminComponent(t)
	items := `<iq` + ns + ` type='get' id='i1' from='%s' to='presence.localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`
	got := feed(t, c, strings.Replace(items, "%s", "boss@localhost/pc", 1))
	for _, want := range []string{nodeOnlineNum, nodeOnlineList, nodeEndSession, nodeReconcileNow, `from="presence.localhost"`} {
		if !strings.Contains(got, want) {
			t.Errorf("admin's list lacks %s: %s", want, got)
		}
	}
	if got := feed(t, c, strings.Replace(items, "%s", "someone@admins.example/r", 1)); !strings.Contains(got, nodeOnlineNum) {
		t.Errorf("a whole admin domain must see the commands: %s", got)
	}
	got = feed(t, c, strings.Replace(items, "%s", "eve@localhost/r", 1))
	if !strings.Contains(got, `type="result"`) || strings.Contains(got, "<item") {
		t.Errorf("a non-admin must get an empty list: %s", got)
	}
	if got := feed(t, c, command("eve@localhost/r", nodeOnlineNum, ">")); !strings.Contains(got, "forbidden") {
		t.Errorf("a non-admin ran a command: %s", got)
	}
	info := `<iq` + ns + ` type='get' id='i2' from='boss@localhost/pc' to='presence.localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='` + nodeUserStats + `'/></iq>`
	if got := feed(t, c, info); !strings.Contains(got, `category="automation"`) || !strings.Contains(got, "jabber:x:data") {
		t.Errorf("disco#info of a command node: %s", got)
	}
}

func TestCommandsRun(t *testing.T) {
	c, tr := adminComponent(t)
	tr.Apply(presence.Update{User: "alice@localhost", Resource: "pc", Available: true, Show: presence.ShowAway, Status: "lunch"})
	tr.Apply(presence.Update{User: "bob@localhost", Resource: "phone", Available: true})
	const boss = "boss@localhost/pc"
	if got := feed(t, c, command(boss, nodeOnlineNum, ">")); !strings.Contains(got, `status="completed"`) || !strings.Contains(got, ">2</value>") {
		t.Fatalf("online users num: %s", got)
	}
	if got := feed(t, c, command(boss, nodeOnlineList, ">")); !strings.Contains(got, "alice@localhost away lunch") {
		t.Fatalf("online users list: %s", got)
	}
	// A multi-step command: the form, then the result.
	got := feed(t, c, command(boss, nodeUserStats, " action='execute'>"))
	if !strings.Contains(got, `status="executing"`) || !strings.Contains(got, `var="accountjid"`) {
		t.Fatalf("user-stats, first stage: %s", got)
	}
	sid := sessionRE.FindStringSubmatch(got)[1]
	got = feed(t, c, command(boss, nodeUserStats, ` sessionid='`+sid+`' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='accountjid'><value>alice@localhost</value></field></x>`))
	if !strings.Contains(got, `status="completed"`) || !strings.Contains(got, "pc away priority 0 lunch") {
		t.Fatalf("user-stats, result: %s", got)
	}
	// end-user-session takes the user offline with reason admin.
	got = feed(t, c, command(boss, nodeEndSession, ">"))
	sid = sessionRE.FindStringSubmatch(got)[1]
	_, _, sub := tr.Subscribe(presence.Filter{}, 0)
	feed(t, c, command(boss, nodeEndSession, ` sessionid='`+sid+`' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='accountjids'><value>bob@localhost</value></field></x>`))
	buf := make([]presence.Event, 1)
	if n, _ := sub.TryRead(buf); n != 1 || buf[0].User != "bob@localhost" || buf[0].Reason != presence.ReasonAdmin {
		t.Fatalf("end-user-session: %+v", buf[:n])
	}
	if got := feed(t, c, command(boss, nodeStats, ">")); !strings.Contains(got, "domain localhost: 2") ||
		!strings.Contains(got, "show offline: 1") || !strings.Contains(got, "show away: 1") || strings.Contains(got, "show dnd") {
		t.Fatalf("stats: %s", got)
	}
	// The counts and lists follow the change.
	if got := feed(t, c, command(boss, nodeOnlineNum, ">")); !strings.Contains(got, ">1</value>") {
		t.Fatalf("online users num after end-user-session: %s", got)
	}
	if got := feed(t, c, command(boss, nodeOnlineList, ">")); strings.Contains(got, "bob@localhost") || !strings.Contains(got, "alice@localhost") {
		t.Fatalf("online users list after end-user-session: %s", got)
	}
	if got := feed(t, c, command(boss, nodeReconcileNow, ">")); !strings.Contains(got, "probe sweep started") || len(c.sweepNow) != 1 {
		t.Fatalf("reconcile-now: %s", got)
	}
}
