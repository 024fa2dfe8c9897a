package last_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/mux"

	"github.com/presenced/presenced/xmppext/last"
)

func TestUptime(t *testing.T) {
	started := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	m := mux.New("jabber:component:accept", last.Handle(started, func() time.Time { return started.Add(90 * time.Second) }))
	d := xml.NewDecoder(strings.NewReader(`<iq xmlns='jabber:component:accept' type='get' id='1' from='admin@localhost/r' to='presence.localhost'><query xmlns='jabber:iq:last'/></iq>`))
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
	for _, want := range []string{`type="result"`, `seconds="90"`, `from="presence.localhost"`, `to="admin@localhost/r"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("reply %s lacks %s", out.String(), want)
		}
	}
}
