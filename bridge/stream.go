package bridge

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/presence"
)

// maxClientFrame bounds what a client may send; the stream protocol has no
// client messages yet beyond control frames.
const maxClientFrame = 4096

var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 4096}

// stream serves GET /v1/stream: a snapshot frame, then a change frame per
// event, in sequence order. See docs/api.md.
func (b *Bridge) stream(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client with an HTTP error
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	// Reader: keeps control frames flowing and notices the client leaving.
	conn.SetReadLimit(maxClientFrame)
	wait := 2 * b.cfg.PingInterval
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wait)) })
	go func() {
		defer cancel()
		for {
			// Read each message to its end: the size limit is enforced on
			// the whole message, and a message split into frames would
			// escape it if skipped by the next NextReader.
			_, msg, err := conn.NextReader()
			if err == nil {
				_, err = io.Copy(io.Discard, msg)
			}
			if err != nil {
				return
			}
		}
	}()

	go b.pinger(ctx, conn)
	err = b.follow(ctx, conn)
	if err != nil && !errors.Is(err, context.Canceled) && !isClosed(err) {
		b.log.Info("bridge: stream ended", "remote", r.RemoteAddr, "err", err)
	}
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down")
	if r.Context().Err() != nil {
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	}
}

// follow writes the snapshot and then the feed until ctx ends or a write
// fails. A lag past the feed's ring sends a new snapshot.
func (b *Bridge) follow(ctx context.Context, conn *websocket.Conn) error {
	buf := make([]presence.Event, 64)
	for {
		users, seq, sub := b.cfg.Tracker.Subscribe(presence.Filter{}, 0)
		err := b.write(conn, snapshotFrame{Type: "snapshot", Seq: seq, Users: toUsers(users)})
		for err == nil {
			var n int
			n, err = sub.Read(ctx, buf)
			for i := 0; i < n && err == nil; i++ {
				err = b.write(conn, toChange(&buf[i]))
			}
		}
		sub.Close()
		if !errors.Is(err, presence.ErrLagged) {
			return err
		}
	}
}

// pinger pings the client every PingInterval until ctx ends; the reader's
// deadline drops a client that stops answering. WriteControl may run
// concurrently with the writer (gorilla/websocket documents it).
func (b *Bridge) pinger(ctx context.Context, conn *websocket.Conn) {
	t := time.NewTicker(b.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(b.cfg.WriteTimeout)) != nil {
				return
			}
		}
	}
}

func (b *Bridge) write(conn *websocket.Conn, v any) error {
	_ = conn.SetWriteDeadline(time.Now().Add(b.cfg.WriteTimeout))
	return conn.WriteJSON(v)
}
