//go:build integration

package integration

import (
	"context"
	"encoding/xml"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/presenced/presenced/internal/xmppclient"
)

// TestAdminCommands: a real XMPP client, through ejabberd, lists and runs
// presenced's XEP-0050 commands, a multi-step one included; a user who is
// not an admin sees no commands and is refused.
func TestAdminCommands(t *testing.T) {
	d := startPresenced(t, "PRESENCED_ADMINS=dave@localhost")
	d.waitConnected(t, 1)
	ws := d.stream(t)
	login(t, "alice", xmppclient.Presence{Show: "away", Status: "lunch"})
	ws.expect(t, "alice online", func(f frame) bool { return f.JID == "alice@localhost" && f.Event == "online" })
	admin := login(t, "dave", xmppclient.Presence{})
	other := login(t, "erin", xmppclient.Presence{})
	component := jid.MustParse(env["XMPP_COMPONENT_JID"])

	// iq sends an IQ with the given payload to the component and returns the
	// whole answer as XML (the response is always read to its end and
	// closed, or the client's stream would stall).
	iq := func(c *xmppclient.Client, typ stanza.IQType, payload string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		r, err := c.Session().SendIQ(ctx, stanza.IQ{Type: typ, To: component}.Wrap(xml.NewDecoder(strings.NewReader(payload))))
		if err != nil {
			t.Fatalf("IQ %s: %v", payload, err)
		}
		defer r.Close()
		var sb strings.Builder
		enc := xml.NewEncoder(&sb)
		if _, err := xmlstream.Copy(enc, r); err != nil {
			t.Fatal(err)
		}
		enc.Flush()
		return sb.String()
	}
	const items = `<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>`
	got := iq(admin, stanza.GetIQ, items)
	for _, node := range []string{"http://jabber.org/protocol/admin#get-online-users-num", "http://jabber.org/protocol/admin#user-stats",
		"http://jabber.org/protocol/admin#end-user-session", "urn:presenced:commands#reconcile-now"} {
		if !strings.Contains(got, node) {
			t.Fatalf("the admin's list lacks %s: %s", node, got)
		}
	}
	if got := iq(other, stanza.GetIQ, items); strings.Contains(got, "<item") {
		t.Fatalf("a non-admin sees commands: %s", got)
	}
	cmd := func(node, rest string) string {
		return `<command xmlns='http://jabber.org/protocol/commands' node='` + node + `'` + rest + `</command>`
	}
	got = iq(admin, stanza.SetIQ, cmd("http://jabber.org/protocol/admin#get-online-users-num", " action='execute'>"))
	if !strings.Contains(got, `status="completed"`) || !strings.Contains(got, "onlineusersnum") {
		t.Fatalf("get-online-users-num: %s", got)
	}
	// Multi-step: the form first, then the submitted JID.
	got = iq(admin, stanza.SetIQ, cmd("http://jabber.org/protocol/admin#user-stats", " action='execute'>"))
	m := regexp.MustCompile(`sessionid="([^"]+)"`).FindStringSubmatch(got)
	if m == nil || !strings.Contains(got, `status="executing"`) || !strings.Contains(got, "accountjid") {
		t.Fatalf("user-stats, first stage: %s", got)
	}
	got = iq(admin, stanza.SetIQ, cmd("http://jabber.org/protocol/admin#user-stats", " sessionid='"+m[1]+"' action='complete'>"+
		"<x xmlns='jabber:x:data' type='submit'><field var='accountjid'><value>alice@localhost</value></field></x>"))
	if !strings.Contains(got, `status="completed"`) || !strings.Contains(got, "away") || !strings.Contains(got, "lunch") {
		t.Fatalf("user-stats, result: %s", got)
	}
	// Every other command: the one-step ones at once, the two-step ones
	// with their form.
	for node, want := range map[string]string{
		"http://jabber.org/protocol/admin#get-online-users-list": "alice@localhost away lunch",
		"http://jabber.org/protocol/admin#get-active-users":      "alice@localhost",
		"http://jabber.org/protocol/admin#get-idle-users":        `status="completed"`,
		"urn:presenced:commands#stats":                           "domain localhost",
		"urn:presenced:commands#reconcile-now":                   "probe sweep started",
	} {
		if got := iq(admin, stanza.SetIQ, cmd(node, " action='execute'>")); !strings.Contains(got, `status="completed"`) || !strings.Contains(got, want) {
			t.Fatalf("%s: %s", node, got)
		}
	}
	twoStep := func(node, field, value, want string) {
		t.Helper()
		got := iq(admin, stanza.SetIQ, cmd(node, " action='execute'>"))
		m := regexp.MustCompile(`sessionid="([^"]+)"`).FindStringSubmatch(got)
		if m == nil || !strings.Contains(got, `status="executing"`) {
			t.Fatalf("%s, first stage: %s", node, got)
		}
		got = iq(admin, stanza.SetIQ, cmd(node, " sessionid='"+m[1]+"' action='complete'>"+
			"<x xmlns='jabber:x:data' type='submit'><field var='"+field+"'><value>"+value+"</value></field></x>"))
		if !strings.Contains(got, `status="completed"`) || !strings.Contains(got, want) {
			t.Fatalf("%s, result: %s", node, got)
		}
	}
	twoStep("http://jabber.org/protocol/admin#get-user-lastlogin", "accountjid", "alice@localhost", "online now")
	twoStep("http://jabber.org/protocol/admin#end-user-session", "accountjids", "alice@localhost", "marked offline")
	ws.expect(t, "alice offline by an admin", func(f frame) bool {
		return f.JID == "alice@localhost" && f.Event == "offline" && f.Reason == "admin"
	})
	if got := iq(other, stanza.SetIQ, cmd("http://jabber.org/protocol/admin#get-online-users-num", ">")); !strings.Contains(got, "forbidden") {
		t.Fatalf("a non-admin ran a command: %s", got)
	}
}
