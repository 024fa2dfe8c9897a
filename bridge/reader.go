package bridge

import (
	"errors"
	"time"

	"github.com/presenced/presenced/internal/wsframe"
)

// The read side of the stream, and why the bridge reads frames itself.
//
// Every byte written to a stream's socket goes through its one writer
// (pool.go, rawwrite.go, drain.go; finish). gorilla/websocket (v1.5.3) would
// break that from its read path: on a frame over the read limit and on
// protocol errors it writes a close frame itself (WriteControl from the
// reading goroutine), which can land inside a frame a writer is in the
// middle of (the pool writes with raw write(2), and a partial write is
// finished later by drain), and its default handlers answer pings and
// close frames themselves. So gorilla only does the handshake (Upgrade);
// the bridge keeps the net.Conn, drops gorilla's Conn, and reads the
// client's frames with wsframe.Reader, which never writes: what needs an
// answer (a pong, the close reply, a close for a protocol error) is handed
// to the writer like everything else.
//
// Alternatives considered: custom ping and close handlers leave the read
// limit and the protocol errors, where gorilla calls WriteControl on its
// Conn directly; wrapping the net.Conn gorilla writes to, to divert its
// writes into the writer, would have to recognize and re-queue whole frames
// from byte slices and still race with the raw writes; a writer lock
// around every write would make the pool's non-blocking writes wait for
// the reader. Reading the few frames a client sends (pongs, small JSON
// messages) is a hundred lines with every RFC 6455 check in one place.
//
// Ending a connection: the close frame goes out after the frame being
// written, then the writer shuts down the sending side (FIN) and the
// reader reads and drops what the client still sends until it closes or
// lingerTimeout passes, and only then closes the socket. Closing at once
// while unread bytes wait (the rest of a too-big frame) would make the
// kernel reset the connection and drop what is not yet delivered, the
// close frame with it.

// lingerTimeout bounds how long the reader waits for the client to close
// after the server's close frame went out.
const lingerTimeout = 2 * time.Second

// Close codes the bridge sends (docs/websocket.md); 4008 is closeSlowConsumer.
const (
	closeNormal      = wsframe.CloseNormal
	closeGoingAway   = 1001
	closeUnsupported = wsframe.CloseUnsupported
)

// read reads the client's messages until the connection ends, handing
// each to the bridge, and returns the close frame to answer with: the
// echo of the client's close, or one for a protocol error; nil when the
// client is gone (EOF, reset, read timeout).
func (c *streamConn) read(key string) []byte {
	wait := 2 * c.b.cfg.PingInterval
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	r := wsframe.NewReader(c.conn, maxClientFrame)
	for {
		op, data, err := r.Next()
		var ce *wsframe.CloseError
		switch {
		case errors.As(err, &ce):
			c.b.log.Info("bridge: stream client broke the protocol", "remote", c.remote, "err", err)
			c.b.metrics.streamClosed("protocol")
			return wsframe.AppendClose(nil, ce.Code, ce.Reason)
		case err != nil:
			return nil
		}
		switch op {
		case wsframe.Pong:
			_ = c.conn.SetReadDeadline(time.Now().Add(wait))
		case wsframe.Ping:
			c.post(controlFrame{wsframe.Pong, data})
		case wsframe.Close:
			code, _, _ := wsframe.ParseClose(data) // checked by Next
			if code == wsframe.CloseNoStatus {
				code = closeNormal
			}
			return wsframe.AppendClose(nil, code, "")
		case wsframe.Binary:
			c.b.metrics.streamClosed("protocol")
			return wsframe.AppendClose(nil, closeUnsupported, "binary messages are not accepted; send JSON text")
		default:
			ok, retry := c.b.limits.allow(key) // client messages count like requests
			if !ok {
				c.post(errorFrame{Type: "error", Code: "rate_limited", Message: "too many messages; retry after " + retry.Round(time.Millisecond).String()})
			} else if reply := c.b.clientReply(data, c.access); reply != nil {
				c.post(reply)
			}
		}
	}
}

// hangUp is the reader's last act: with a close frame on its way
// (lingering), it drops what the client still sends until the client
// closes or the writer's time to send the close frame and lingerTimeout
// have passed (finish shortens that once the frame is out); then it closes
// the socket.
func (c *streamConn) hangUp(lingering bool) {
	if lingering {
		_ = c.conn.SetReadDeadline(time.Now().Add(c.b.cfg.WriteTimeout + lingerTimeout))
		var buf [512]byte
		for {
			if _, err := c.conn.Read(buf[:]); err != nil {
				break
			}
		}
	}
	c.conn.Close()
}

// shutdown ends the sending side after the close frame and tells the
// reader, through its deadline, to stop lingering after lingerTimeout.
// Without a half-close (not TCP) the socket is closed at once.
func (c *streamConn) shutdown() {
	cw, ok := c.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		c.conn.Close()
		return
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
}
