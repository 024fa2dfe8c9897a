package bridge

import (
	"slices"
	"sync"

	"github.com/presenced/presenced/internal/wsframe"
)

// The stream's messages framed for the socket: the bytes the writers
// send, built with internal/wsframe from wire.go's messages. The hub and
// the queues hold messages; this file makes frames of them, once for
// every connection where the bytes are the same (a batch sent whole, a
// ping), else in the writer's own buffer.

// pingFrame is a server ping with no payload, the same bytes for every
// connection.
var pingFrame = wsframe.AppendFrame(nil, wsframe.Ping, nil)

// appendText appends payload, one message, as one text frame.
func appendText(dst, payload []byte) []byte { return wsframe.AppendFrame(dst, wsframe.Text, payload) }

// appendChangesMessage appends frames, change messages, as one "changes"
// message in one text frame.
func appendChangesMessage(dst []byte, frames [][]byte) []byte {
	return appendChanges(wsframe.AppendHeader(dst, wsframe.Text, changesLen(frames)), frames)
}

// framedBatch is a batch framed as the connections that see every change
// get it, built by the first writer that sends it and then shared by all
// (bytes read only). It lives in the batch, so that it goes when the last
// queue lets the batch go, and costs no lookup.
type framedBatch struct {
	once sync.Once
	data []byte
}

// wire returns the batch framed for the connections that get it whole:
// the change's own message when it is alone, else "changes" messages of
// up to maxBatch changes, back to back. One allocation, at the first
// call.
func (b *hubBatch) wire() []byte {
	b.framed.once.Do(func() { b.framed.data = appendBatch(nil, b.events) })
	return b.framed.data
}

// appendBatch appends events framed as wire describes.
func appendBatch(dst []byte, events []*hubEvent) []byte {
	if len(events) == 1 {
		return appendText(slices.Grow(dst, wsframe.MaxHeader+len(events[0].frame)), events[0].frame)
	}
	n := 0
	for i, he := range events {
		if i%maxBatch == 0 {
			n += wsframe.MaxHeader + len(changesHead) + len(changesTail)
		}
		n += len(he.frame) + 1
	}
	dst = slices.Grow(dst, n)
	var frames [maxBatch][]byte
	for i := 0; i < len(events); i += maxBatch {
		chunk := events[i:min(i+maxBatch, len(events))]
		for j, he := range chunk {
			frames[j] = he.frame
		}
		dst = appendChangesMessage(dst, frames[:len(chunk)])
	}
	return dst
}
