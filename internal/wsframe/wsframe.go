// Package wsframe reads and writes WebSocket frames (RFC 6455, section
// 5.2).
//
// Parser reads the frames a server sends (unmasked), from bytes read off a
// socket in any pieces. The load tools read thousands of sockets from one
// epoll loop instead of a library's goroutine per connection, to take as
// little of the CPU they share with the server as they can; this is the
// one frame parser they share.
//
// Reader reads the frames a client sends (masked), with every check a
// server owes its clients, and reports what a client may not send as the
// close code to answer with. The bridge reads its stream clients with it
// after gorilla/websocket's handshake, so that the library, which writes
// close frames by itself from its read paths, never writes to a socket the
// bridge's writers own (bridge/doc.go).
//
// AppendHeader, AppendFrame and AppendClose write the frames a server
// sends (write.go); the bridge builds no frame bytes of its own. They
// append to the caller's buffer and allocate only when it is full: the
// bridge frames a batch of changes once for all its clients, and a header
// on the stack in front of a payload it writes with writev.
package wsframe

import "errors"

// Opcodes of the frames a handler sees.
const (
	Continuation = 0x0
	Text         = 0x1
	Binary       = 0x2
	Close        = 0x8
	Ping         = 0x9
	Pong         = 0xA
)

// ErrBadFrame: the bytes are not server frames (a masked frame, reserved
// bits set, or a length over MaxFrame).
var ErrBadFrame = errors.New("wsframe: not a server frame")

// MaxFrame bounds one frame's payload.
const MaxFrame = 1 << 30

// Parser keeps an incomplete frame between two reads. The zero value is
// ready to use.
type Parser struct {
	part []byte
}

// Feed parses data, calling frame for each complete frame (fin tells
// whether it ends a message; payload is valid only during the call). It
// stops early when frame returns false, and returns ErrBadFrame on bytes
// that are not server frames. O(len(data)) plus a copy of a frame split
// across reads.
func (p *Parser) Feed(data []byte, frame func(fin bool, opcode byte, payload []byte) bool) error {
	if len(p.part) > 0 {
		p.part = append(p.part, data...)
		data = p.part
	}
	for len(data) >= 2 {
		fin, opcode, size, hdr := data[0]&0x80 != 0, data[0]&0x0f, int(data[1]&0x7f), 2
		if data[1]&0x80 != 0 || data[0]&0x70 != 0 {
			return ErrBadFrame
		}
		switch size {
		case 126:
			if len(data) < 4 {
				goto partial
			}
			size, hdr = int(data[2])<<8|int(data[3]), 4
		case 127:
			if len(data) < 10 {
				goto partial
			}
			var n uint64
			for _, b := range data[2:10] {
				n = n<<8 | uint64(b)
			}
			if n > MaxFrame {
				return ErrBadFrame
			}
			size, hdr = int(n), 10
		}
		if len(data) < hdr+size {
			goto partial
		}
		payload := data[hdr : hdr+size]
		data = data[hdr+size:]
		if !frame(fin, opcode, payload) {
			data = nil
			break
		}
	}
partial:
	if len(data) == 0 {
		p.part = p.part[:0]
	} else {
		p.part = append(p.part[:0], data...)
	}
	return nil
}
