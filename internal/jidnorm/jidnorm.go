// Package jidnorm parses XMPP addresses into the one normal form presenced
// keys users by: mellium's jid.Parse (PRECIS, lowercased domain, one
// trailing dot of the domain stripped, RFC 7622 §3.2), refusing what that
// form would not survive. jid.Parse strips a single trailing dot, so
// "a@b.." parses to the domain "b.", whose string "a@b." parses again to
// "a@b": two keys for one user, and "0@.." even gives "0@.", which does not
// parse at all (found by FuzzHandlePresence). A domain that still ends in
// a dot after the strip has an empty label, which RFC 7622 does not allow:
// Parse refuses it, so every address it returns is a fixed point (its
// String and its Bare().String() parse back to themselves). Every place
// where an address from outside enters presenced (stanzas, the HTTP API,
// tokens, a server's session list) parses with it.
package jidnorm

import (
	"errors"
	"strings"

	"mellium.im/xmpp/jid"
)

// ErrEmptyLabel: the domainpart ends with an empty label ("example.org..").
var ErrEmptyLabel = errors.New("jidnorm: the domainpart ends with an empty label")

// Parse is jid.Parse that also refuses a domainpart ending with an empty
// label; its errors are jid.Parse's or ErrEmptyLabel. O(len(s)).
func Parse(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, err
	}
	if strings.HasSuffix(j.Domainpart(), ".") {
		return jid.JID{}, ErrEmptyLabel
	}
	return j, nil
}
