package component

import (
	"github.com/presenced/presenced/internal/jidnorm"
	"mellium.im/xmpp/jid"
)

// jidCacheSize bounds the cache; when full it starts over, which costs one
// parse per address again and keeps memory flat.
const jidCacheSize = 1 << 16

// jidCache remembers parsed from addresses. Parsing a JID (PRECIS
// normalization) is among the costliest steps of handling a presence
// stanza, and the same addresses come again and again. Only the stream's
// handler uses it, on one goroutine: no lock.
type jidCache struct {
	m map[string]parsedJID
}

// parsedJID is a valid address with its bare form kept as a string (the
// tracker's user key), so that it is built once.
type parsedJID struct {
	jid.JID
	bare string
}

// parse returns the parsed address, and false for an empty or malformed
// one (not cached: bad input is rare and must not fill the cache).
func (c *jidCache) parse(s string) (parsedJID, bool) {
	if p, ok := c.m[s]; ok {
		return p, true
	}
	if s == "" {
		return parsedJID{}, false
	}
	j, err := jidnorm.Parse(s)
	if err != nil {
		return parsedJID{}, false
	}
	if c.m == nil || len(c.m) >= jidCacheSize {
		c.m = make(map[string]parsedJID)
	}
	p := parsedJID{JID: j, bare: j.Bare().String()}
	c.m[s] = p
	return p, true
}
