package bridge

import (
	"encoding/json"
	"fmt"
)

// clientReply handles one message a stream client sent (data, as read from
// the socket) for a client with access, and returns what the connection's
// writer is to get: the new *viewFilter of a "subscribe", an errorFrame for
// a bad message, or nil for a "presence" that was published (the change
// then comes like any other). Rate limiting is the caller's.
func (b *Bridge) clientReply(data []byte, access Access) any {
	var m clientMessage
	switch {
	case json.Unmarshal(data, &m) != nil:
		return errorFrame{Type: "error", Code: "bad_message", Message: "not a JSON object"}
	case m.Type == "presence":
		wp := webPresenceJSON{JID: m.JID, Resource: m.Resource, Status: m.Status, Priority: m.Priority, TTL: m.TTL}
		if len(m.Show) > 0 && json.Unmarshal(m.Show, &wp.Show) != nil {
			return errorFrame{Type: "error", Code: "bad_show", Message: "show must be a string"}
		}
		subject := keyOf(access)
		if b.cfg.Authenticate != nil && subject == "" {
			return errorFrame{Type: "error", Code: "no_subject", Message: "the token names no user (sub) to publish presence for"}
		} else if _, e := b.publishWeb(subject, &wp); e != nil {
			return errorFrame{Type: "error", Code: e.code, Message: e.msg}
		}
		return nil
	case m.Type != "subscribe":
		return errorFrame{Type: "error", Code: "unknown_type", Message: fmt.Sprintf("unknown message type %q", m.Type)}
	default:
		var shows []string
		if len(m.Show) > 0 && json.Unmarshal(m.Show, &shows) != nil {
			return errorFrame{Type: "error", Code: "bad_filter", Message: "show must be a list"}
		}
		f, err := newViewFilter(m.Domains, m.Users, shows, access)
		if err != nil {
			return errorFrame{Type: "error", Code: "bad_filter", Message: err.Error()}
		}
		return f
	}
}
