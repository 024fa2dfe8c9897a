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

// appendChanges appends one "changes" message carrying frames to buf.
func appendChanges(buf []byte, frames [][]byte) []byte {
	const head, tail = `{"type":"changes","frames":[`, "]}"
	size := len(head) + len(tail) + len(frames) - 1
	for _, fr := range frames {
		size += len(fr)
	}
	buf = wsframe.AppendHeader(buf, wsframe.Text, size)
	buf = append(buf, head...)
	for i, fr := range frames {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, fr...)
	}
	return append(buf, tail...)
}
