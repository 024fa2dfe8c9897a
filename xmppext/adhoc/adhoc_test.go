package adhoc_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"regexp"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"

	"github.com/presenced/presenced/xmppext/adhoc"
)

// twoStep asks for a JID, then answers with its domain.
var twoStep = adhoc.Command{Node: "domain-of", Name: "Domain of a JID", Run: func(r adhoc.Request) (adhoc.Response, error) {
	if r.Form == nil {
		return adhoc.Response{Form: form.New(form.JID("jid"))}, nil
	}
	v, _ := r.Form.Raw("jid")
	if len(v) != 1 {
		return adhoc.Response{}, errors.New("give one jid")
	}
	j, err := jid.Parse(v[0])
	if err != nil {
		return adhoc.Response{}, err
	}
	return adhoc.Response{Done: true, Form: form.New(form.Result, form.Text("domain", form.Value(j.Domainpart())))}, nil
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

// TestForms checks a sent form by its meaning, not its bytes (mellium's
// form writes its own attribute order), and that a submission's values
// reach the command whether or not its fields carry a type.
func TestForms(t *testing.T) {
	var got []string
	cmd := adhoc.Command{Node: "who", Name: "Who", Run: func(r adhoc.Request) (adhoc.Response, error) {
		if r.Stage == 0 {
			return adhoc.Response{Form: form.New(form.Title("Pick"), form.Hidden("FORM_TYPE", form.Value("urn:example")),
				form.JIDMulti("who", form.Label("Who"), form.Required, form.Value("a@b.example"), form.Value("c@d.example")))}, nil
		}
		got, _ = r.Form.Raw("who")
		return adhoc.Response{Done: true}, nil
	}}
	r := adhoc.New(func(jid.JID) bool { return true }, cmd)
	m := mux.New("jabber:component:accept", r.Handle())
	out := run(t, m, "a@x/r", `<command xmlns='http://jabber.org/protocol/commands' node='who'/>`)
	var reply struct {
		Command struct {
			X struct {
				Type   string `xml:"type,attr"`
				Title  string `xml:"jabber:x:data title"`
				Fields []struct {
					Var      string    `xml:"var,attr"`
					Type     string    `xml:"type,attr"`
					Label    string    `xml:"label,attr"`
					Required *struct{} `xml:"jabber:x:data required"`
					Values   []string  `xml:"jabber:x:data value"`
				} `xml:"jabber:x:data field"`
			} `xml:"jabber:x:data x"`
		} `xml:"http://jabber.org/protocol/commands command"`
	}
	if err := xml.Unmarshal([]byte(out), &reply); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	x := reply.Command.X
	if x.Type != "form" || x.Title != "Pick" || len(x.Fields) != 2 {
		t.Fatalf("form: %+v from %s", x, out)
	}
	if f := x.Fields[0]; f.Var != "FORM_TYPE" || f.Type != "hidden" || f.Required != nil || strings.Join(f.Values, ",") != "urn:example" {
		t.Errorf("FORM_TYPE: %+v", f)
	}
	if f := x.Fields[1]; f.Var != "who" || f.Type != "jid-multi" || f.Label != "Who" || f.Required == nil ||
		strings.Join(f.Values, ",") != "a@b.example,c@d.example" {
		t.Errorf("who: %+v", f)
	}
	sid := sidRE.FindStringSubmatch(out)[1]
	for _, typ := range []string{"", " type='jid-multi'"} {
		got = nil
		out = run(t, m, "a@x/r", `<command xmlns='http://jabber.org/protocol/commands' node='who' sessionid='`+sid+
			`' action='next'><x xmlns='jabber:x:data' type='submit'><field var='who'`+typ+`><value>e@f.example</value><value>g@h.example</value></field></x></command>`)
		if strings.Join(got, ",") != "e@f.example,g@h.example" {
			t.Errorf("submitted with%q: read %q: %s", typ, got, out)
		}
		out = run(t, m, "a@x/r", `<command xmlns='http://jabber.org/protocol/commands' node='who'/>`)
		sid = sidRE.FindStringSubmatch(out)[1]
	}
}
