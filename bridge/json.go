package bridge

import (
	"time"

	"github.com/presenced/presenced/presence"
)

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
}

// aggregateJSON is a user's overall presence after an event.
type aggregateJSON struct {
	Online   bool   `json:"online"`
	Show     string `json:"show"`
	Status   string `json:"status"`
	Priority int    `json:"priority"`
	Resource string `json:"resource,omitempty"`
}

// listJSON answers GET /v1/presence.
type listJSON struct {
	Seq   uint64     `json:"seq"`
	Users []userJSON `json:"users"`
	// NextCursor, when set, fetches the next page (?cursor=...).
	NextCursor string `json:"next_cursor,omitempty"`
}

// snapshotFrame is the first WebSocket frame, and the one sent after a lag.
type snapshotFrame struct {
	Type  string     `json:"type"` // "snapshot"
	Seq   uint64     `json:"seq"`
	Users []userJSON `json:"users"`
}

// changeFrame is one event on the WebSocket.
type changeFrame struct {
	Type     string        `json:"type"` // "change"
	Seq      uint64        `json:"seq"`
	Event    string        `json:"event"` // online, offline, changed
	Time     time.Time     `json:"time"`
	JID      string        `json:"jid"`
	Resource resourceJSON  `json:"resource"`
	Reason   string        `json:"reason,omitempty"`
	User     aggregateJSON `json:"user"`
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

func toUsers(us []presence.User) []userJSON {
	out := make([]userJSON, len(us))
	for i := range us {
		out[i] = toUser(&us[i])
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
	return out
}

func toChange(ev *presence.Event) changeFrame {
	a := ev.Aggregate
	return changeFrame{
		Type: "change", Seq: ev.Seq, Event: string(ev.Kind), Time: ev.Time, JID: ev.User,
		Resource: toResource(&ev.Resource, ev.Kind != presence.EventOffline),
		Reason:   string(ev.Reason),
		User:     aggregateJSON{Online: a.Online, Show: wireShow(a.Online, a.Show), Status: a.Status, Priority: a.Priority, Resource: a.Resource},
	}
}

// errorFrame tells a stream client what was wrong with its message.
type errorFrame struct {
	Type    string `json:"type"` // "error"
	Code    string `json:"code"`
	Message string `json:"message"`
}
