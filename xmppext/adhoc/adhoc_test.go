package adhoc_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"regexp"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"

	"github.com/presenced/presenced/xmppext/adhoc"
)

// twoStep asks for a JID, then answers with its domain.
var twoStep = adhoc.Command{Node: "domain-of", Name: "Domain of a JID", Run: func(r adhoc.Request) (adhoc.Response, error) {
	if r.Form == nil {
		return adhoc.Response{Form: &adhoc.Form{Type: "form", Fields: []adhoc.Field{{Var: "jid", Type: "jid-single"}}}}, nil
	}
	v := r.Form.Values("jid")
	if len(v) != 1 {
		return adhoc.Response{}, errors.New("give one jid")
	}
	j, err := jid.Parse(v[0])
	if err != nil {
		return adhoc.Response{}, err
	}
	return adhoc.Response{Done: true, Form: &adhoc.Form{Type: "result", Fields: []adhoc.Field{{Var: "domain", Values: []string{j.Domainpart()}}}}}, nil
}}

func run(t *testing.T, m *mux.ServeMux, from, payload string) string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(`<iq xmlns='jabber:component:accept' type='set' id='1' from='` + from + `' to='presence.localhost'>` + payload + `</iq>`))
	tok, _ := d.Token()
	start := tok.(xml.StartElement)
	var out bytes.Buffer
	enc := xml.NewEncoder(&out)
	if err := m.HandleXMPP(struct {
		xml.TokenReader
		xmlstream.Encoder
	}{xmlstream.InnerElement(d), enc}, &start); err != nil {
		t.Fatal(err)
	}
	enc.Flush()
	return out.String()
}

var sidRE = regexp.MustCompile(`sessionid="([^"]+)"`)

func TestTwoStepCommand(t *testing.T) {
	r := adhoc.New(func(j jid.JID) bool { return j.Domainpart() == "admin.example" }, twoStep)
	m := mux.New("jabber:component:accept", r.Handle())
	const admin = "boss@admin.example/pc"
	got := run(t, m, admin, `<command xmlns='http://jabber.org/protocol/commands' node='domain-of' action='execute'/>`)
	if !strings.Contains(got, `status="executing"`) || !strings.Contains(got, `var="jid"`) || !strings.Contains(got, "<complete") {
		t.Fatalf("first stage: %s", got)
	}
	sid := sidRE.FindStringSubmatch(got)[1]
	// A bad submission: the error, and the session stays.
	got = run(t, m, admin, `<command xmlns='http://jabber.org/protocol/commands' node='domain-of' sessionid='`+sid+`' action='complete'><x xmlns='jabber:x:data' type='submit'/></command>`)
	if !strings.Contains(got, `type="error"`) || !strings.Contains(got, "bad-payload") {
		t.Fatalf("bad submission: %s", got)
	}
	got = run(t, m, admin, `<command xmlns='http://jabber.org/protocol/commands' node='domain-of' sessionid='`+sid+`' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='jid'><value>a@b.example</value></field></x></command>`)
	if !strings.Contains(got, `status="completed"`) || !strings.Contains(got, ">b.example</value>") {
		t.Fatalf("completion: %s", got)
	}
	// The session is over.
	got = run(t, m, admin, `<command xmlns='http://jabber.org/protocol/commands' node='domain-of' sessionid='`+sid+`' action='complete'/>`)
	if !strings.Contains(got, "session-expired") {
		t.Fatalf("after completion: %s", got)
	}
}

func TestErrors(t *testing.T) {
	r := adhoc.New(func(j jid.JID) bool { return j.Domainpart() == "admin.example" }, twoStep)
	m := mux.New("jabber:component:accept", r.Handle())
	tests := []struct{ name, from, payload, want string }{
		{"not an admin", "eve@evil.example/r", `<command xmlns='http://jabber.org/protocol/commands' node='domain-of'/>`, "forbidden"},
		{"unknown node", "boss@admin.example/r", `<command xmlns='http://jabber.org/protocol/commands' node='nope'/>`, "item-not-found"},
		{"prev", "boss@admin.example/r", `<command xmlns='http://jabber.org/protocol/commands' node='domain-of' action='prev'/>`, "bad-action"},
		{"next without a session", "boss@admin.example/r", `<command xmlns='http://jabber.org/protocol/commands' node='domain-of' action='next'/>`, "bad-sessionid"},
		{"unknown session", "boss@admin.example/r", `<command xmlns='http://jabber.org/protocol/commands' node='domain-of' sessionid='zzz'/>`, "session-expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(t, m, tt.from, tt.payload); !strings.Contains(got, tt.want) || !strings.Contains(got, `type="error"`) {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
	if len(r.Commands(jid.MustParse("eve@evil.example"))) != 0 || len(r.Commands(jid.MustParse("boss@admin.example"))) != 1 {
		t.Fatal("Commands must list nothing to non-admins")
	}
}

func TestCancel(t *testing.T) {
	r := adhoc.New(func(jid.JID) bool { return true }, twoStep)
	m := mux.New("jabber:component:accept", r.Handle())
	got := run(t, m, "a@x/r", `<command xmlns='http://jabber.org/protocol/commands' node='domain-of'/>`)
	sid := sidRE.FindStringSubmatch(got)[1]
	got = run(t, m, "a@x/r", `<command xmlns='http://jabber.org/protocol/commands' node='domain-of' sessionid='`+sid+`' action='cancel'/>`)
	if !strings.Contains(got, `status="canceled"`) {
		t.Fatalf("cancel: %s", got)
	}
	// Another user cannot step into someone's session.
	got = run(t, m, "a@x/r", `<command xmlns='http://jabber.org/protocol/commands' node='domain-of'/>`)
	sid = sidRE.FindStringSubmatch(got)[1]
	if got := run(t, m, "b@x/r", `<command xmlns='http://jabber.org/protocol/commands' node='domain-of' sessionid='`+sid+`' action='complete'/>`); !strings.Contains(got, "bad-sessionid") {
		t.Fatalf("someone else's session: %s", got)
	}
}
