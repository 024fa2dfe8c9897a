package bridge

import (
	"encoding/json"
	"time"

	"github.com/presenced/presenced/presence"
)

// The stream's messages as JSON, before any framing: the one place their
// bytes are made (docs/websocket.md has their shapes). The hub encodes
// each change once with marshalChange; snapshot.go a snapshot with
// marshalSnapshot; the writers join change messages into "changes"
// messages with appendChanges, and send a client's error with
// marshalError. framed.go puts them in WebSocket frames.
//
// The load tools (cmd/presence-load, cmd/presenced-fanout) do not decode
// these messages: at a million a second a decode would cost more CPU than
// the server they measure, so they scan the bytes for a few keys
// (`{"type":"change",`, `"seq":`, `"status":"` after `"resource":{`,
// `"time":"`, ...). The order and the names of the fields, the compact
// form and the "changes" envelope are part of what they read: wire_test.go
// pins every message's bytes in golden files (testdata/stream_*.golden)
// and checks the keys the tools scan for.

// snapshotFrame is the first message of a stream, and the one sent after
// a lag or a "subscribe".
type snapshotFrame struct {
	Type  string     `json:"type"` // "snapshot"
	Seq   uint64     `json:"seq"`
	Users []userJSON `json:"users"`
}

// changeFrame is one event on the stream.
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

// aggregateJSON is a user's overall presence after an event.
type aggregateJSON struct {
	Online   bool   `json:"online"`
	Show     string `json:"show"`
	Status   string `json:"status"`
	Priority int    `json:"priority"`
	Resource string `json:"resource,omitempty"`
}

// errorFrame tells a stream client what was wrong with its message.
type errorFrame struct {
	Type    string `json:"type"` // "error"
	Code    string `json:"code"`
	Message string `json:"message"`
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

// marshalChange encodes ev as a change message.
func marshalChange(ev *presence.Event) ([]byte, error) { return json.Marshal(toChange(ev)) }

// marshalSnapshot encodes a snapshot message at seq holding users.
// O(users).
func marshalSnapshot(seq uint64, users []userJSON) ([]byte, error) {
	return json.Marshal(snapshotFrame{Type: "snapshot", Seq: seq, Users: users})
}

// marshalError encodes an error message.
func marshalError(e errorFrame) ([]byte, error) { return json.Marshal(e) }

// The "changes" message around change messages, written by hand: the
// change messages are already encoded, once for every client, and a
// marshal of json.RawMessage would check and copy each of them again.
const changesHead, changesTail = `{"type":"changes","frames":[`, "]}"

// changesLen is the length of the "changes" message appendChanges makes
// of frames (at least one), so that its frame header can go first.
func changesLen(frames [][]byte) int {
	n := len(changesHead) + len(changesTail) + len(frames) - 1
	for _, fr := range frames {
		n += len(fr)
	}
	return n
}

// appendChanges appends one "changes" message carrying frames, change
// messages as marshalChange made them, to dst.
func appendChanges(dst []byte, frames [][]byte) []byte {
	dst = append(dst, changesHead...)
	for i, fr := range frames {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, fr...)
	}
	return append(dst, changesTail...)
}
