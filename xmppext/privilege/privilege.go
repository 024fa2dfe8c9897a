// Package privilege implements the receiving side of XEP-0356: Privileged
// Entity (namespace urn:xmpp:privilege:2): it reads the permissions a
// server grants a component in the <privilege/> message it sends right
// after the handshake.
//
// presenced uses one permission, presence: with "managed_entity" the
// server sends the component the presence of every user of the host, and
// with "roster" also of their contacts, without the component being on
// anybody's roster. Servers differ in what they forward (docs/setup-*.md),
// so presenced treats it as one more signal, never as the only one.
package privilege // import "github.com/presenced/presenced/xmppext/privilege"

import (
	"encoding/xml"
	"errors"
	"io"
)

// NS is the namespace of XEP-0356, version 2; NSv1 that of version 1,
// which some servers still send.
const (
	NS   = "urn:xmpp:privilege:2"
	NSv1 = "urn:xmpp:privilege:1"
)

// Perm is one permission: Access is roster, message, presence or iq; Type
// is what is allowed (for presence: none, managed_entity or roster).
type Perm struct {
	Access, Type string
}

// Perms is what a server granted.
type Perms []Perm

// Presence returns the presence permission, "" when none was granted.
func (p Perms) Presence() string {
	for _, perm := range p {
		if perm.Access == "presence" && perm.Type != "none" {
			return perm.Type
		}
	}
	return ""
}

// ErrNotPrivilege: the element read is not a <privilege/> of XEP-0356.
var ErrNotPrivilege = errors.New("privilege: not a privilege element")

// Read reads the children of a <message/> whose start element the caller
// has read, looking for a <privilege/> element, and returns its
// permissions. It consumes r up to the end of the message. It returns
// ErrNotPrivilege when the message holds no <privilege/>, and the decoder's
// error for malformed XML. O(size of the message).
func Read(r xml.TokenReader) (Perms, error) {
	var perms Perms
	found := false
	depth, inPriv := 0, false
	for {
		tok, err := r.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1 && t.Name.Local == "privilege" && (t.Name.Space == NS || t.Name.Space == NSv1):
				found, inPriv = true, true
			case depth == 2 && inPriv && t.Name.Local == "perm":
				var p Perm
				for _, a := range t.Attr {
					if a.Name.Space != "" {
						continue
					}
					switch a.Name.Local {
					case "access":
						p.Access = a.Value
					case "type":
						p.Type = a.Value
					}
				}
				if p.Access != "" {
					perms = append(perms, p)
				}
			}
		case xml.EndElement:
			depth--
			if depth < 0 {
				return result(perms, found)
			}
			if depth == 0 {
				inPriv = false
			}
		}
	}
	return result(perms, found)
}

func result(perms Perms, found bool) (Perms, error) {
	if !found {
		return nil, ErrNotPrivilege
	}
	return perms, nil
}
