package bridge

import (
	"fmt"
	"net/url"
	"strings"
)

// Access is what one authenticated client may see and do, as
// Config.Authenticate returns it; *auth.Claims implements it. A nil Access
// (no authentication configured) sees everything and may do everything.
type Access interface {
	// CanSee reports whether the client may see the user with the
	// normalized bare JID jid.
	CanSee(jid string) bool
	// Scope returns the domains whose users the client may see and the
	// bare JIDs it may see besides, so that pages and counts visit only
	// those users; both nil when IsAdmin. It must agree with CanSee (the
	// stream filters with CanSee, REST selects with Scope).
	Scope() (domains, users []string)
	// IsAdmin reports the admin scope: the client sees every user (its
	// connections share the encoding of whole batches, without a CanSee
	// per change) and may use the admin routes.
	IsAdmin() bool
	// Key is the subject the client's rate limit and web presence count
	// against (a token's "sub", a bare JID); "" means none: the rate limit
	// counts the client's IP, and web presence is refused.
	Key() string
}

// keyOf returns a's Key, or "" for a nil Access.
func keyOf(a Access) string {
	if a == nil {
		return ""
	}
	return a.Key()
}

// viewFilter selects the users and show values a client asked for, within
// what its token allows.
type viewFilter struct {
	domains, users map[string]bool // empty: any
	shows          map[string]bool // wire show values; empty: any
	access         Access
	// all: the filter and the token let every change through, so the
	// client can be sent the changes as all such clients are.
	all bool
}

var wireShows = map[string]bool{"available": true, "chat": true, "away": true, "xa": true, "dnd": true, "offline": true}

// maxFilterItems bounds the domains plus users one filter may name: a
// client following more users should filter by domain.
const maxFilterItems = 1000

// newViewFilter builds a filter from lists as clients send them; it
// refuses unknown show values, empty list items and more than
// maxFilterItems domains and users.
func newViewFilter(domains, users, shows []string, access Access) (*viewFilter, error) {
	if n := len(domains) + len(users); n > maxFilterItems {
		return nil, fmt.Errorf("%d domains and users: at most %d", n, maxFilterItems)
	}
	f := &viewFilter{access: access}
	set := func(name string, vals []string, check func(string) bool) (map[string]bool, error) {
		if len(vals) == 0 {
			return nil, nil
		}
		m := make(map[string]bool, len(vals))
		for _, v := range vals {
			v = strings.TrimSpace(v)
			if v == "" || (check != nil && !check(v)) {
				return nil, fmt.Errorf("%s: %q is not allowed", name, v)
			}
			m[v] = true
		}
		return m, nil
	}
	var err error
	if f.domains, err = set("domains", domains, func(s string) bool { return !strings.ContainsAny(s, "@/") }); err != nil {
		return nil, err
	}
	if f.users, err = set("users", users, func(s string) bool { return strings.Contains(s, "@") && !strings.Contains(s, "/") }); err != nil {
		return nil, err
	}
	if f.shows, err = set("show", shows, func(s string) bool { return wireShows[s] }); err != nil {
		return nil, err
	}
	if f.domains == nil && f.users == nil && f.shows == nil {
		f.all = access == nil || access.IsAdmin()
	}
	return f, nil
}

// filterFromQuery reads domains, users and show (comma-separated) from a
// URL query.
func filterFromQuery(q url.Values, access Access) (*viewFilter, error) {
	list := func(k string) []string {
		if v := q.Get(k); v != "" {
			return strings.Split(v, ",")
		}
		return nil
	}
	return newViewFilter(list("domains"), list("users"), list("show"), access)
}

// user reports whether the client follows this user at all.
func (f *viewFilter) user(jid string) bool {
	if f.access != nil && !f.access.CanSee(jid) {
		return false
	}
	if len(f.domains) == 0 && len(f.users) == 0 {
		return true
	}
	if f.users[jid] {
		return true
	}
	_, dom, _ := strings.Cut(jid, "@")
	return f.domains[dom]
}

// show reports whether a wire show value is wanted.
func (f *viewFilter) show(s string) bool { return len(f.shows) == 0 || f.shows[s] }
