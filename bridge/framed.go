package bridge

import (
	"github.com/presenced/presenced/internal/wsframe"
)

// The stream's messages framed for the socket: the bytes the writers
// send, built with internal/wsframe.

// pingFrame is a server ping with no payload, the same bytes for every
// connection.
var pingFrame = wsframe.AppendFrame(nil, wsframe.Ping, nil)

// textFrame returns payload framed as one text message.
func textFrame(payload []byte) []byte {
	return wsframe.AppendFrame(make([]byte, 0, wsframe.MaxHeader+len(payload)), wsframe.Text, payload)
}

// appendChangesMessage appends frames, change messages, as one "changes"
// message in one text frame.
func appendChangesMessage(dst []byte, frames [][]byte) []byte {
	return appendChanges(wsframe.AppendHeader(dst, wsframe.Text, changesLen(frames)), frames)
}
