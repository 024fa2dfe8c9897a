// Package wsload reads many WebSocket client connections (the server's
// side of them: unmasked frames) from one goroutine with epoll, for the
// load tools, cmd/presenced-fanout and cmd/presence-load.
//
// The load tools share the machine's cores with the server they measure,
// so every microsecond the client spends per frame is taken from the
// server's latency. A WebSocket library reads each connection from a
// goroutine of its own: one wake-up, one read and one scheduling of that
// goroutine per frame and connection. A Reader instead waits for all its
// sockets in one epoll_wait and reads each ready one on the spot: the
// sockets are edge-triggered (a drained socket is not polled again), found
// by file descriptor in a slice, and, with Options.Raw, read with raw
// system calls on a locked thread, so that Go's scheduler is not asked to
// hand the thread's P over at each wait. docs/benchmarks.md ("A cheaper
// load client") has the numbers.
//
// The handshake is the caller's (a library's, or its own over a raw
// socket): Add takes the connected socket over afterwards, with the bytes
// read past the handshake. Frames are parsed by internal/wsframe's Parser;
// a Handler gets whole messages (fragments joined) and control frames.
package wsload

import (
	"errors"

	"github.com/presenced/presenced/internal/wsframe"
)

// Handler receives one connection's messages. Its methods are called on
// the goroutine that runs the Reader, one at a time for all the Reader's
// connections.
type Handler interface {
	// Message is a whole data message (wsframe.Text or wsframe.Binary,
	// its fragments joined) or a control frame (wsframe.Ping, Pong or
	// Close) as the server sent it. payload is valid only during the call.
	// Returning false closes the connection (then Closed is called with a
	// nil error).
	Message(c *Conn, opcode byte, payload []byte) bool
	// Closed tells that the Reader closed the connection's socket (or,
	// for a socket lent by Reader.Lend, stopped reading it) and forgot it:
	// err is io.EOF when the server ended the stream, nil when
	// Message returned false, wsframe.ErrBadFrame for bytes that are not
	// server frames, an error that wraps ErrAttach when the socket could
	// not be added to epoll, else the read's error. It is not called for
	// the connections Stop closes.
	Closed(c *Conn, err error)
}

// ErrAttach wraps the error of a socket that could not be made
// non-blocking or added to the Reader's epoll set.
var ErrAttach = errors.New("wsload: the socket could not be added")

// Conn is one connection of a Reader. Its state is the Reader's goroutine's
// alone.
type Conn struct {
	fd     int
	h      Handler
	parser wsframe.Parser
	// msg is the fragmented message read so far, op its opcode (0 while
	// no fragmented message is open).
	msg    []byte
	op     byte
	owned  bool // the Reader closes fd (Add, not Lend)
	closed bool
}

// frame handles one frame: a whole message or control frame goes to the
// handler, a fragment is joined to the message it belongs to. It is
// lenient, as a client of a trusted server may be: a data frame that
// starts a message while one is open is joined to it as a continuation,
// and a continuation with no message open starts a text message. Frames of
// reserved opcodes are ignored. It returns what the handler returned.
func (c *Conn) frame(fin bool, opcode byte, payload []byte) bool {
	switch opcode {
	case wsframe.Text, wsframe.Binary, wsframe.Continuation:
		if c.op == 0 && fin && opcode != wsframe.Continuation {
			return c.h.Message(c, opcode, payload)
		}
		if c.op == 0 {
			c.op = opcode
			if opcode == wsframe.Continuation {
				c.op = wsframe.Text
			}
		}
		c.msg = append(c.msg, payload...)
		if !fin {
			return true
		}
		op, msg := c.op, c.msg
		c.op, c.msg = 0, c.msg[:0]
		return c.h.Message(c, op, msg)
	case wsframe.Ping, wsframe.Pong, wsframe.Close:
		return c.h.Message(c, opcode, payload)
	}
	return true
}

// feed parses data read off the socket, carrying an incomplete frame over
// to the next read. It returns false and why when the connection is to be
// closed: the handler asked (nil) or the bytes are not server frames.
func (c *Conn) feed(data []byte) (bool, error) {
	open := true
	if err := c.parser.Feed(data, func(fin bool, opcode byte, payload []byte) bool {
		open = c.frame(fin, opcode, payload)
		return open
	}); err != nil {
		return false, err
	}
	return open, nil
}

// appendPong appends a pong frame carrying payload (cut to the 125 bytes a
// control frame may carry), masked with mask as a client must.
func appendPong(dst, payload []byte, mask [4]byte) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	dst = append(dst, 0x80|wsframe.Pong, 0x80|byte(len(payload)))
	dst = append(dst, mask[:]...)
	for i, b := range payload {
		dst = append(dst, b^mask[i&3])
	}
	return dst
}
