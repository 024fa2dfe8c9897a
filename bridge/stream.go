package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/presence"
)

// maxClientFrame bounds what a client may send; the stream protocol has no
// client messages yet beyond control frames.
const maxClientFrame = 4096

// Close codes of the stream (docs/api.md).
const (
	// closeSlowConsumer: the client read too slowly and its queue filled;
	// reconnect with resume=<last seq> to continue.
	closeSlowConsumer = 4008
)

// clientMessage is what a client may send on the stream.
type clientMessage struct {
	Type    string   `json:"type"` // "subscribe"
	Domains []string `json:"domains"`
	Users   []string `json:"users"`
	Show    []string `json:"show"`
}

// stream serves GET /v1/stream: a snapshot frame (or, with resume=<seq>
// within the hub's window, the missed changes), then a change frame per
// event that the client's filter and token let through, in sequence order.
// See docs/api.md.
func (b *Bridge) stream(w http.ResponseWriter, r *http.Request) {
	access, ok := b.authenticate(w, r)
	if !ok {
		return
	}
	if ok, wait := b.limits.allow(clientKey(r, access)); !ok {
		tooMany(w, wait)
		return
	}
	b.startHub(context.Background()) // a no-op once Serve or Start ran
	filter, err := filterFromQuery(r.URL.Query(), access)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	var resume uint64
	if v := r.URL.Query().Get("resume"); v != "" {
		if resume, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, "bad_resume", "resume must be a sequence number")
			return
		}
	}
	ws, err := b.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client with an HTTP error
	}
	// The connection lives on in its own goroutines and this handler
	// returns: net/http then drops its request state and buffers, which an
	// idle connection would otherwise keep (docs/benchmarks.md).
	go b.serveStream(ws, r.RemoteAddr, clientKey(r, access), access, filter, resume)
}

// serveStream runs one WebSocket connection until the client leaves, a
// write fails, or the bridge shuts down.
func (b *Bridge) serveStream(ws *websocket.Conn, remote, key string, access Access, filter *viewFilter, resume uint64) {
	defer ws.Close()
	ctx, cancel := context.WithCancel(b.baseContext())
	defer cancel()

	// Reader: control frames, subscribe messages, and the client leaving.
	ws.SetReadLimit(maxClientFrame)
	wait := 2 * b.cfg.PingInterval
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(wait)) })
	// What the reader learns goes to the writer (gorilla allows one data
	// writer): a new filter, or an error to tell the client.
	inbox := make(chan any, 8)
	go func() {
		defer cancel()
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var msg any
			var m clientMessage
			ok, wait := b.limits.allow(key) // client messages count like requests
			switch {
			case !ok:
				msg = errorFrame{Type: "error", Code: "rate_limited", Message: "too many messages; retry after " + wait.Round(time.Millisecond).String()}
			case json.Unmarshal(data, &m) != nil:
				msg = errorFrame{Type: "error", Code: "bad_message", Message: "not a JSON object"}
			case m.Type != "subscribe":
				msg = errorFrame{Type: "error", Code: "unknown_type", Message: fmt.Sprintf("unknown message type %q", m.Type)}
			default:
				f, err := newViewFilter(m.Domains, m.Users, m.Show, access)
				if err != nil {
					msg = errorFrame{Type: "error", Code: "bad_filter", Message: err.Error()}
				} else {
					msg = f
				}
			}
			select {
			case inbox <- msg:
			default: // a client flooding messages loses some answers, not the stream
			}
		}
	}()

	err := b.follow(ctx, ws, filter, resume, inbox)
	switch {
	case errors.Is(err, errSlowConsumer):
		// The close frame queues behind the data the client has not read
		// yet: give it the write timeout to get there.
		msg := websocket.FormatCloseMessage(closeSlowConsumer, "too slow: reconnect with resume=<last seq>")
		_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(b.cfg.WriteTimeout))
	case b.baseContext().Err() != nil:
		msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down")
		_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	case err != nil && !errors.Is(err, context.Canceled) && !isClosed(err):
		b.log.Info("bridge: stream ended", "remote", remote, "err", err)
	}
}

var errSlowConsumer = errors.New("bridge: slow consumer")

// follow writes the snapshot (or the replay) and then the hub's events
// until ctx ends or a write fails.
func (b *Bridge) follow(ctx context.Context, ws *websocket.Conn, f *viewFilter, resume uint64, inbox <-chan any) error {
	var (
		users []presence.User
		seq   uint64 // events up to seq are in what the client has
	)
	c, replayed := b.hub.join(resume, func() { users, seq = b.cfg.Tracker.Snapshot() })
	defer b.hub.leave(c)
	var visible map[string]bool // users the client holds, for a show filter
	// Pings go out from this loop: one goroutine less per connection.
	ping := time.NewTicker(b.cfg.PingInterval)
	defer ping.Stop()
	var (
		batch  []*hubEvent
		frames [][]byte
		buf    bytes.Buffer
	)
	sendSnapshot := func() error {
		visible = nil
		if len(f.shows) > 0 {
			visible = map[string]bool{}
		}
		out := make([]userJSON, 0, len(users))
		for i := range users {
			u := toUser(&users[i])
			if f.user(u.JID) && f.show(u.Show) {
				out = append(out, u)
				if visible != nil {
					visible[u.JID] = true
				}
			}
		}
		users = nil // an idle connection keeps no copy of the state
		return b.writeEncoded(ws, snapshotFrame{Type: "snapshot", Seq: seq, Users: out})
	}
	if replayed {
		seq = resume
	} else if err := sendSnapshot(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ping.C:
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(b.cfg.WriteTimeout)); err != nil {
				return err
			}
		case <-c.slow:
			return errSlowConsumer
		case msg := <-inbox:
			var err error
			switch m := msg.(type) {
			case *viewFilter:
				f = m
				users, seq = b.cfg.Tracker.Snapshot()
				err = sendSnapshot()
			default:
				err = b.write(ws, m)
			}
			if err != nil {
				return err
			}
		case <-c.resync:
			users, seq = b.cfg.Tracker.Snapshot()
			if err := sendSnapshot(); err != nil {
				return err
			}
		case he := <-c.queue:
			// Take what else is queued: a client that is behind gets the
			// backlog coalesced into one "changes" message (one write
			// instead of one per change), pre-encoded frames joined as is.
			batch = append(batch[:0], he)
		drain:
			for len(batch) < maxBatch {
				select {
				case more := <-c.queue:
					batch = append(batch, more)
				default:
					break drain
				}
			}
			select {
			case <-c.slow: // overflowed while this writer was blocked
				return errSlowConsumer
			default:
			}
			frames = frames[:0]
			for _, he := range batch {
				if he.seq <= seq || !f.user(he.user) {
					continue
				}
				want := f.show(he.show)
				if !want && !visible[he.user] {
					continue
				}
				// A user leaving the client's show filter gets one last frame,
				// so the client can drop it.
				if visible != nil {
					visible[he.user] = want
				}
				frames = append(frames, he.frame)
			}
			if len(frames) == 0 {
				continue
			}
			msg := frames[0]
			if len(frames) > 1 {
				buf.Reset()
				buf.WriteString(`{"type":"changes","frames":[`)
				for i, fr := range frames {
					if i > 0 {
						buf.WriteByte(',')
					}
					buf.Write(fr)
				}
				buf.WriteString("]}")
				msg = buf.Bytes()
			}
			_ = ws.SetWriteDeadline(time.Now().Add(b.cfg.WriteTimeout))
			if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				return err
			}
		}
	}
}

// maxBatch bounds how many changes one "changes" message carries.
const maxBatch = 64

// writeEncoded encodes v on a goroutine of its own, then writes it: JSON
// encoding a snapshot needs a deep stack, and the connection's long-lived
// writer goroutine would keep that stack while idle (docs/benchmarks.md,
// memory per idle connection).
func (b *Bridge) writeEncoded(conn *websocket.Conn, v any) error {
	done := make(chan struct{})
	var data []byte
	var err error
	go func() {
		data, err = json.Marshal(v)
		close(done)
	}()
	<-done
	if err != nil {
		return err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(b.cfg.WriteTimeout))
	return conn.WriteMessage(websocket.TextMessage, data)
}

func (b *Bridge) write(conn *websocket.Conn, v any) error {
	_ = conn.SetWriteDeadline(time.Now().Add(b.cfg.WriteTimeout))
	return conn.WriteJSON(v)
}
