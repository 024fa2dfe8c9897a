package component

import (
	"bytes"
	"encoding/xml"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/presence"
)

func newTestComponent(t *testing.T) (*Component, *presence.Tracker) {
	t.Helper()
	tr := presence.New(presence.Options{})
	c, err := New(Config{
		JID: jid.MustParse("presence.localhost"), Secret: "s", Addr: "127.0.0.1:1", Tracker: tr,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, tr
}

// feed runs one stanza through the handler as the session would and returns
// what the component wrote back.
func feed(t *testing.T, c *Component, raw string) string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(raw))
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	start := tok.(xml.StartElement)
	var out bytes.Buffer
	enc := xml.NewEncoder(&out)
	rw := struct {
		xml.TokenReader
		xmlstream.Encoder
	}{TokenReader: xmlstream.InnerElement(d), Encoder: enc}
	if err := c.handle(rw, &start); err != nil {
		t.Fatalf("handle returned %v: that would end the stream", err)
	}
	_ = enc.Flush()
	return out.String()
}

const ns = ` xmlns='jabber:component:accept'`

func TestPresenceToTracker(t *testing.T) {
	tests := []struct {
		name   string
		stanza string
		want   presence.User
	}{
		{"available with everything",
			`<presence` + ns + ` from='Alice@LocalHost/pc' to='presence.localhost'><show>dnd</show><status>busy</status><status xml:lang='de'>beschäftigt</status><priority>7</priority></presence>`,
			presence.User{JID: "alice@localhost", Online: true, Show: presence.ShowDND, Status: "busy", Priority: 7}},
		{"status by lang only",
			`<presence` + ns + ` from='a@localhost/r'><status xml:lang='fr'>occupé</status></presence>`,
			presence.User{JID: "a@localhost", Online: true, Status: "occupé"}},
		{"unknown show is plain available",
			`<presence` + ns + ` from='a@localhost/r'><show>sleeping</show></presence>`,
			presence.User{JID: "a@localhost", Online: true}},
		{"priority clamped",
			`<presence` + ns + ` from='a@localhost/r'><priority>1000</priority></presence>`,
			presence.User{JID: "a@localhost", Online: true, Priority: 127}},
		{"negative priority online",
			`<presence` + ns + ` from='a@localhost/r'><priority>-5</priority></presence>`,
			presence.User{JID: "a@localhost", Online: true, Priority: -5}},
		{"priority not a number",
			`<presence` + ns + ` from='a@localhost/r'><priority>high</priority></presence>`,
			presence.User{JID: "a@localhost", Online: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, tr := newTestComponent(t)
			if out := feed(t, c, tt.stanza); out != "" {
				t.Errorf("unexpected reply %s", out)
			}
			got, ok := tr.Get(tt.want.JID)
			if !ok {
				t.Fatalf("user %s unknown", tt.want.JID)
			}
			if got.Online != tt.want.Online || got.Show != tt.want.Show || got.Status != tt.want.Status || got.Priority != tt.want.Priority {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTranslationsAndIdle(t *testing.T) {
	c, tr := newTestComponent(t)
	feed(t, c, `<presence`+ns+` from='a@localhost/r'><status xml:lang='de'>weg</status><status>away</status><status xml:lang='fr'>absent</status>`+
		`<idle xmlns='urn:xmpp:idle:1' since='2026-11-27T08:00:00Z'/></presence>`)
	u, _ := tr.Get("a@localhost")
	r := u.Resources[0]
	if r.Status != "away" || len(r.Statuses) != 2 || r.Statuses[0] != (presence.LangStatus{Lang: "de", Text: "weg"}) ||
		r.Statuses[1].Lang != "fr" || r.Idle.UTC().Format(time.RFC3339) != "2026-11-27T08:00:00Z" {
		t.Fatalf("resource %+v", r)
	}
}

func TestPresenceAppliedOnce(t *testing.T) {
	c, tr := newTestComponent(t)
	_, seq := tr.Snapshot()
	feed(t, c, `<presence`+ns+` from='a@localhost/r'><show>away</show><status>x</status><priority>1</priority></presence>`)
	if _, after := tr.Snapshot(); after != seq+1 {
		t.Fatalf("one stanza made %d events, want 1", after-seq)
	}
}

func TestDelayStampIsChangeTime(t *testing.T) {
	c, tr := newTestComponent(t)
	feed(t, c, `<presence`+ns+` from='a@localhost/r'><delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-01-02T03:04:05Z'/></presence>`)
	u, _ := tr.Get("a@localhost")
	if got := u.Since.UTC().Format("2006-01-02T15:04:05Z"); got != "2026-01-02T03:04:05Z" {
		t.Fatalf("since = %s", got)
	}
}

func TestUnavailable(t *testing.T) {
	c, tr := newTestComponent(t)
	feed(t, c, `<presence`+ns+` from='a@localhost/1'/>`)
	feed(t, c, `<presence`+ns+` from='a@localhost/2'/>`)
	feed(t, c, `<presence`+ns+` from='a@localhost/1' type='unavailable'/>`)
	if u, _ := tr.Get("a@localhost"); !u.Online || len(u.Resources) != 1 {
		t.Fatalf("after one resource left: %+v", u)
	}
	feed(t, c, `<presence`+ns+` from='a@localhost' type='unavailable'/>`)
	if u, _ := tr.Get("a@localhost"); u.Online {
		t.Fatalf("bare unavailable must take every resource offline: %+v", u)
	}
}

// TestUnavailableStatus: the status of unavailable presence (RFC 6121
// §4.5.1) is the user's last word while offline.
func TestUnavailableStatus(t *testing.T) {
	c, tr := newTestComponent(t)
	feed(t, c, `<presence`+ns+` from='a@localhost/1'><status>here</status></presence>`)
	feed(t, c, `<presence`+ns+` from='a@localhost/1' type='unavailable'><status>gone fishing</status></presence>`)
	if u, _ := tr.Get("a@localhost"); u.Online || u.Status != "gone fishing" {
		t.Fatalf("after unavailable with a status: online %v, status %q", u.Online, u.Status)
	}
}

// TestProbeLog: presence within a probe's window is the server's answer.
func TestProbeLog(t *testing.T) {
	l := newProbeLog()
	t0 := time.Now()
	l.sent("a@x", t0.Add(time.Second))
	l.sent("b@x", t0.Add(2*time.Second))
	l.sent("a@x", t0.Add(3*time.Second)) // probed again
	for _, tt := range []struct {
		user string
		at   time.Duration
		want bool
	}{
		{"a@x", 0, true}, {"b@x", 1500 * time.Millisecond, true}, {"c@x", 0, false},
		{"a@x", 2500 * time.Millisecond, true}, {"b@x", 2500 * time.Millisecond, false},
	} {
		l.prune(t0.Add(tt.at))
		if got := l.answers(tt.user, t0.Add(tt.at)); got != tt.want {
			t.Errorf("answers(%s, +%v) = %v, want %v", tt.user, tt.at, got, tt.want)
		}
	}
	l.prune(t0.Add(time.Hour))
	if len(l.due) != 0 || len(l.order) != 0 {
		t.Errorf("after every window closed: %d users, %d entries left", len(l.due), len(l.order))
	}
}

func TestPresenceErrorDropsUser(t *testing.T) {
	c, tr := newTestComponent(t)
	feed(t, c, `<presence`+ns+` from='a@localhost/1'/>`)
	feed(t, c, `<presence`+ns+` from='a@localhost' type='error'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`)
	if u, _ := tr.Get("a@localhost"); u.Online {
		t.Fatalf("still online after a presence error: %+v", u)
	}
}

func TestSubscriptionHandshake(t *testing.T) {
	c, tr := newTestComponent(t)
	steps := []struct{ in, want string }{
		// The user subscribes: approve, and ask back once.
		{`<presence` + ns + ` from='a@localhost' to='presence.localhost' type='subscribe'/>`,
			`<presence xmlns="jabber:component:accept" from="presence.localhost" to="a@localhost" type="subscribed"></presence>` +
				`<presence xmlns="jabber:component:accept" from="presence.localhost" to="a@localhost" type="subscribe"></presence>`},
		// Asked again while our request is pending: approve, do not ask again.
		{`<presence` + ns + ` from='a@localhost' type='subscribe'/>`,
			`<presence xmlns="jabber:component:accept" from="presence.localhost" to="a@localhost" type="subscribed"></presence>`},
		{`<presence` + ns + ` from='a@localhost' type='subscribed'/>`, ``},
		// Once subscribed, a repeated subscribe never starts a loop.
		{`<presence` + ns + ` from='a@localhost' type='subscribe'/>`,
			`<presence xmlns="jabber:component:accept" from="presence.localhost" to="a@localhost" type="subscribed"></presence>`},
		{`<presence` + ns + ` from='a@localhost/r' type='probe'/>`,
			`<presence xmlns="jabber:component:accept" from="presence.localhost" to="a@localhost/r"></presence>`},
		{`<presence` + ns + ` from='a@localhost/r'/>`, ``},
		{`<presence` + ns + ` from='a@localhost' type='unsubscribed'/>`, ``},
	}
	for i, s := range steps {
		if got := feed(t, c, s.in); got != s.want {
			t.Fatalf("step %d:\n got %s\nwant %s", i, got, s.want)
		}
	}
	if u, _ := tr.Get("a@localhost"); u.Online {
		t.Fatal("a revoked subscription must take the user offline")
	}
}

func TestBadInputNeverEndsTheStream(t *testing.T) {
	tests := []struct{ name, in, wantReply string }{
		{"presence without from", `<presence` + ns + `/>`, ``},
		{"presence with malformed from", `<presence` + ns + ` from='a@b@c/r'/>`, ``},
		{"presence from a server", `<presence` + ns + ` from='localhost'/>`, ``},
		{"presence of unknown type", `<presence` + ns + ` from='a@localhost/r' type='bogus'/>`, ``},
		{"message", `<message` + ns + ` from='a@localhost/r'><body>hi</body></message>`, ``},
		{"unknown IQ", `<iq` + ns + ` from='a@localhost/r' to='presence.localhost' id='1' type='get'><query xmlns='urn:example'/></iq>`,
			`service-unavailable`},
		{"IQ without payload", `<iq` + ns + ` from='a@localhost/r' to='presence.localhost' id='2' type='get'></iq>`, `bad-request`},
		{"IQ with two payloads", `<iq` + ns + ` from='a@localhost/r' to='presence.localhost' id='3' type='set'><a xmlns='x'/><b xmlns='y'/></iq>`, `bad-request`},
		{"IQ with text payload", `<iq` + ns + ` from='a@localhost/r' to='presence.localhost' id='4' type='get'>text</iq>`, `bad-request`},
		{"IQ with malformed from", `<iq` + ns + ` from='a@b@c' id='5' type='get'><ping xmlns='urn:xmpp:ping'/></iq>`, `jid-malformed`},
		{"IQ with text before the payload", `<iq` + ns + ` from='a@localhost/r' to='presence.localhost' id='t1' type='get'>x<ping xmlns='urn:xmpp:ping'/></iq>`, `bad-request`},
		{"IQ with a comment before the payload", `<iq` + ns + ` from='a@localhost/r' to='presence.localhost' id='t2' type='get'><!--c--><ping xmlns='urn:xmpp:ping'/></iq>`, `bad-request`},
		{"IQ with white space around the payload", `<iq` + ns + ` from='a@localhost/r' to='presence.localhost' id='t3' type='get'>
  <ping xmlns='urn:xmpp:ping'/>
</iq>`, `type="result"`},
		{"IQ from ourselves (mellium strips that from)", `<iq` + ns + ` from='' to='presence.localhost' id='self' type='get'><ping xmlns='urn:xmpp:ping'/></iq>`,
			`to="presence.localhost"`},
		{"IQ without to", `<iq` + ns + ` from='a@localhost/r' id='9' type='get'><query xmlns='urn:example'/></iq>`, `service-unavailable`},
		{"IQ of unknown type", `<iq` + ns + ` from='a@localhost/r' id='6' type='bogus'/>`, ``},
		{"unsolicited IQ result", `<iq` + ns + ` from='a@localhost/r' id='7' type='result'/>`, ``},
		{"huge IQ", `<iq` + ns + ` from='a@localhost/r' to='presence.localhost' id='8' type='set'><q xmlns='x'>` +
			strings.Repeat("<i/>", maxIQTokens) + `</q></iq>`, `policy-violation`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestComponent(t)
			got := feed(t, c, tt.in)
			if tt.wantReply == "" && got != "" || !strings.Contains(got, tt.wantReply) {
				t.Fatalf("reply %q, want one containing %q", got, tt.wantReply)
			}
			if got != "" && !strings.Contains(got, `from="presence.localhost"`) {
				t.Fatalf("reply without from: %s", got)
			}
		})
	}
}

func TestDiscoAndPing(t *testing.T) {
	c, _ := newTestComponent(t)
	got := feed(t, c, `<iq`+ns+` from='a@localhost/r' to='presence.localhost' id='d1' type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	for _, want := range []string{`type="result"`, `from="presence.localhost"`, `category="component"`, `type="presence"`,
		`var="urn:xmpp:ping"`, `var="http://jabber.org/protocol/disco#info"`, `var="jabber:iq:last"`} {
		if !strings.Contains(got, want) {
			t.Errorf("disco#info reply lacks %s: %s", want, got)
		}
	}
	got = feed(t, c, `<iq`+ns+` from='a@localhost/r' to='presence.localhost' id='l1' type='get'><query xmlns='jabber:iq:last'/></iq>`)
	if !strings.Contains(got, `type="result"`) || !strings.Contains(got, `seconds="`) {
		t.Errorf("last activity reply %s", got)
	}
	got = feed(t, c, `<iq`+ns+` from='a@localhost/r' to='presence.localhost' id='p1' type='get'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if !strings.Contains(got, `type="result"`) || !strings.Contains(got, `id="p1"`) || !strings.Contains(got, `from="presence.localhost"`) {
		t.Errorf("ping reply %s", got)
	}
}

func TestReadPresenceSkipsUnknownChildren(t *testing.T) {
	c, tr := newTestComponent(t)
	feed(t, c, `<presence`+ns+` from='a@localhost/r'><x xmlns='urn:example'><show>dnd</show><status>inner</status></x>`+
		`<show>away</show><status>outer</status><c xmlns='http://jabber.org/protocol/caps' node='n' ver='v' hash='sha-1'/></presence>`)
	u, _ := tr.Get("a@localhost")
	if u.Show != presence.ShowAway || u.Status != "outer" {
		t.Fatalf("got show %q status %q: children of unknown elements must be skipped", u.Show, u.Status)
	}
}

func TestReadPresenceFirstOccurrenceOwnNamespace(t *testing.T) {
	c, tr := newTestComponent(t)
	feed(t, c, `<presence`+ns+` from='a@localhost/r'><priority>5</priority><priority>0</priority>`+
		`<show>chat</show><show xmlns='urn:example:game'>away</show><status>one</status><status>two</status></presence>`)
	u, _ := tr.Get("a@localhost")
	if u.Priority != 5 || u.Show != presence.ShowChat || u.Status != "one" || len(u.Resources[0].Statuses) != 0 {
		t.Fatalf("got %+v: only the first show, priority and status per language, in the stanza's namespace, count", u)
	}
}

func TestPrivilegeGrant(t *testing.T) {
	c, tr := newTestComponent(t)
	grant := `<message` + ns + ` from='localhost' to='presence.localhost'><privilege xmlns='urn:xmpp:privilege:2'><perm access='presence' type='managed_entity'/></privilege></message>`
	feed(t, c, `<message`+ns+` from='mallory@localhost/r' to='presence.localhost'><privilege xmlns='urn:xmpp:privilege:2'><perm access='presence' type='roster'/></privilege></message>`)
	if p := c.PresencePrivilege(); p != "" {
		t.Fatalf("a user granted %q", p)
	}
	feed(t, c, grant)
	if p := c.PresencePrivilege(); p != "managed_entity" {
		t.Fatalf("presence privilege %q", p)
	}
	// With it, presence comes from users who never subscribed: tracked the
	// same way.
	feed(t, c, `<presence`+ns+` from='stranger@localhost/r' to='presence.localhost'/>`)
	if u, _ := tr.Get("stranger@localhost"); !u.Online {
		t.Fatalf("privileged presence not tracked: %+v", u)
	}
}
