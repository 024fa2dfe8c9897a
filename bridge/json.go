package bridge

import (
	"time"

	"github.com/presenced/presenced/presence"
)

// The JSON shapes of users and resources, which the REST answers and the
// stream's snapshot and change messages share, and the REST bodies. The
// stream's own messages, and the bytes the load tools scan, are wire.go's.

// wireShow is a show value on the wire: the RFC 6121 values, "available"
// for an available resource without show, and "offline".
func wireShow(online bool, s presence.Show) string { return presence.StateOf(online, s) }

// userJSON is one user: aggregate presence plus online resources.
type userJSON struct {
	JID      string         `json:"jid"`
	Online   bool           `json:"online"`
	Show     string         `json:"show"`
	Status   string         `json:"status"`
	Priority int            `json:"priority"`
	Since    *time.Time     `json:"since,omitempty"`
	LastSeen *time.Time     `json:"last_seen,omitempty"`
	Res      []resourceJSON `json:"resources"`
}

type resourceJSON struct {
	Resource string            `json:"resource"`
	Show     string            `json:"show"`
	Status   string            `json:"status"`
	Statuses map[string]string `json:"statuses,omitempty"` // by xml:lang
	Priority int               `json:"priority"`
	Since    time.Time         `json:"since"`
	Idle     *time.Time        `json:"idle_since,omitempty"`
	Expires  *time.Time        `json:"expires,omitempty"`
	// Source "session_list": known from the server's session list alone
	// (presence.Resource.Listed); show and status are then not the user's.
	Source string `json:"source,omitempty"`
}

// listJSON answers GET /v1/presence.
type listJSON struct {
	Seq   uint64     `json:"seq"`
	Users []userJSON `json:"users"`
	// NextCursor, when set, fetches the next page (?cursor=...).
	NextCursor string `json:"next_cursor,omitempty"`
}

type errorJSON struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func toUser(u *presence.User) userJSON {
	out := userJSON{
		JID: u.JID, Online: u.Online, Show: wireShow(u.Online, u.Show),
		Status: u.Status, Priority: u.Priority, Res: make([]resourceJSON, len(u.Resources)),
	}
	if !u.Since.IsZero() {
		out.Since = &u.Since
	}
	if !u.LastSeen.IsZero() {
		out.LastSeen = &u.LastSeen
	}
	for i := range u.Resources {
		out.Res[i] = toResource(&u.Resources[i], true)
	}
	return out
}

func toResource(r *presence.Resource, online bool) resourceJSON {
	out := resourceJSON{Resource: r.Name, Show: wireShow(online, r.Show), Status: r.Status, Priority: r.Priority, Since: r.Since}
	if len(r.Statuses) > 0 {
		out.Statuses = make(map[string]string, len(r.Statuses))
		for _, s := range r.Statuses {
			out.Statuses[s.Lang] = s.Text
		}
	}
	if !r.Idle.IsZero() {
		out.Idle = &r.Idle
	}
	if !r.Expires.IsZero() {
		out.Expires = &r.Expires
	}
	if r.Listed {
		out.Source = "session_list"
	}
	return out
}
