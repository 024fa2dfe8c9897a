package bridge

import (
	"net"
	"time"

	"github.com/presenced/presenced/internal/wsframe"
)

// The waiting write path: a goroutine of the connection's own that writes
// with a deadline while the client's socket is full, and the rarer frames.

// drain writes, waiting for the client when it must, until nothing is
// left, then ends. It runs as the connection's only writer (running): a
// drainFast that could not finish starts it, and so does work that is not
// a plain change (snapshot, error frame, close, pong).
func (c *streamConn) drain() {
	if c.pending != nil {
		data := c.pending
		c.pending = nil
		if !c.writeWait(data) {
			return
		}
	}
	var buf []byte
	var whole net.Buffers
	for {
		c.mu.Lock()
		var data []byte
		switch {
		case c.closed:
			c.mu.Unlock()
			c.finish()
			return
		case c.slow:
			c.closed, c.running = true, false
			c.mu.Unlock()
			c.b.metrics.streamClosed("slow")
			// The close frame queues behind the data the client has not
			// read yet: give it the write timeout to get there.
			c.writeClose(wsframe.AppendClose(nil, closeSlowConsumer, "too slow: reconnect with resume=<last seq>"), c.b.cfg.WriteTimeout)
			return
		case c.resync:
			c.resync = false
			c.mu.Unlock()
			if !c.snapshot() {
				return
			}
			continue
		case len(c.inbox) > 0:
			m := c.inbox[0]
			c.inbox = c.inbox[1:]
			c.mu.Unlock()
			var err error
			switch m := m.(type) {
			case *viewFilter:
				c.mu.Lock()
				c.filter = m
				c.mu.Unlock()
				if !c.snapshot() {
					return
				}
				continue
			case controlFrame:
				if !c.writeWait(wsframe.AppendFrame(nil, m.kind, m.data)) {
					return
				}
				continue
			case errorFrame:
				var data []byte
				if data, err = marshalError(m); err == nil {
					err = c.writeText(data)
				}
			}
			if !c.fail(err) {
				return
			}
			continue
		case c.pingDue:
			c.pingDue = false
			data = pingFrame
		case len(c.queue) == 0:
			// Back to the workers' non-blocking writes, which a deadline
			// left on the socket (drain's writes set one) would fail once
			// it passes.
			_ = c.conn.SetWriteDeadline(time.Time{})
			c.running = false
			c.queue = nil                 // an idle connection keeps no backing array
			c.limit = c.b.cfg.StreamQueue // caught up: the usual bound again
			c.mu.Unlock()
			return
		default:
			if whole = c.takeWholeLocked(whole[:0]); len(whole) > 1 {
				c.mu.Unlock()
				if !c.writeBuffers(whole) {
					return
				}
				continue
			} else if len(whole) == 1 {
				data = whole[0]
				break
			}
			buf, data = c.takeLocked(buf)
		}
		c.mu.Unlock()
		if data != nil && !c.writeWait(data) {
			return
		}
	}
}

// writeBuffers writes bufs (consumed) in one writev, waiting up to the
// write timeout, and reports whether the connection goes on.
func (c *streamConn) writeBuffers(bufs net.Buffers) bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.b.cfg.WriteTimeout))
	_, err := bufs.WriteTo(c.conn)
	return c.fail(err)
}

// writeWait writes data, waiting up to the write timeout, and reports
// whether the connection goes on.
func (c *streamConn) writeWait(data []byte) bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.b.cfg.WriteTimeout))
	_, err := c.conn.Write(data)
	return c.fail(err)
}

// controlFrame is a control message the reader asks the writer to send
// (a pong): written in turn with the rest, never in the middle of a frame.
// kind is its opcode (wsframe.Pong), data its payload (at most 125 bytes,
// as the client's ping had it).
type controlFrame struct {
	kind byte
	data []byte
}

// writeText writes payload as one text message, waiting up to the write
// timeout; the header and the payload go out in one writev, without
// copying the payload (a snapshot may be megabytes).
func (c *streamConn) writeText(payload []byte) error {
	var hdr [wsframe.MaxHeader]byte
	bufs := net.Buffers{wsframe.AppendHeader(hdr[:0], wsframe.Text, len(payload)), payload}
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.b.cfg.WriteTimeout))
	_, err := bufs.WriteTo(c.conn)
	return err
}

// writeClose writes a close frame, waiting up to timeout, then ends the
// sending side (shutdown). Only the connection's writer calls it, as its
// last write.
func (c *streamConn) writeClose(msg []byte, timeout time.Duration) {
	_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.conn.Write(msg); err != nil {
		c.conn.Close()
		return
	}
	c.shutdown()
}
