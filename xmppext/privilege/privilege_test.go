package privilege_test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmlstream"

	"github.com/presenced/presenced/xmppext/privilege"
)

func read(t *testing.T, raw string) (privilege.Perms, error) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(raw))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	return privilege.Read(xmlstream.InnerElement(d))
}

func TestRead(t *testing.T) {
	for _, tt := range []struct {
		name, raw string
		presence  string
		n         int
		err       error
	}{
		{"prosody", `<message from='localhost' to='presence.localhost'><privilege xmlns='urn:xmpp:privilege:2'><perm access='presence' type='managed_entity'/></privilege></message>`, "managed_entity", 1, nil},
		{"several", `<message><privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='both'/><perm access='presence' type='roster'/></privilege></message>`, "roster", 2, nil},
		{"version 1", `<message><privilege xmlns='urn:xmpp:privilege:1'><perm access='presence' type='roster'/></privilege></message>`, "roster", 1, nil},
		{"none", `<message><privilege xmlns='urn:xmpp:privilege:2'><perm access='presence' type='none'/></privilege></message>`, "", 1, nil},
		{"a plain message", `<message><body>hi</body></message>`, "", 0, privilege.ErrNotPrivilege},
		{"other namespace", `<message><privilege xmlns='urn:example'><perm access='presence' type='roster'/></privilege></message>`, "", 0, privilege.ErrNotPrivilege},
		{"nested perm does not count", `<message><privilege xmlns='urn:xmpp:privilege:2'><x><perm access='presence' type='roster'/></x></privilege></message>`, "", 0, nil},
		{"prefixed attributes do not count", `<message><privilege xmlns='urn:xmpp:privilege:2'><perm xmlns:y='urn:y' y:access='presence' access='roster' type='get'/></privilege></message>`, "", 1, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			perms, err := read(t, tt.raw)
			if !errors.Is(err, tt.err) || len(perms) != tt.n || perms.Presence() != tt.presence {
				t.Fatalf("got %+v, %v; want %d perms, presence %q, err %v", perms, err, tt.n, tt.presence, tt.err)
			}
		})
	}
}

func ExampleRead() {
	raw := `<message from='localhost'><privilege xmlns='urn:xmpp:privilege:2'>` +
		`<perm access='presence' type='managed_entity'/></privilege></message>`
	d := xml.NewDecoder(strings.NewReader(raw))
	d.Token() // the <message> start element
	perms, err := privilege.Read(xmlstream.InnerElement(d))
	fmt.Println(perms.Presence(), err)
	// Output: managed_entity <nil>
}
