package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/presenced/presenced/internal/wsframe"
	"github.com/presenced/presenced/presence"
)

// maxClientFrame bounds what a client may send; the stream protocol has no
// client messages yet beyond control frames.
const maxClientFrame = 4096

// maxBatch bounds how many changes one "changes" message carries.
const maxBatch = 64

// Close codes of the stream (docs/api.md).
const (
	// closeSlowConsumer: the client read too slowly and its queue filled;
	// reconnect with resume=<last seq> to continue.
	closeSlowConsumer = 4008
)

// clientMessage is what a client may send on the stream: "subscribe" (a
// new filter) or "presence" (its own web presence, as POST /v1/webpresence).
type clientMessage struct {
	Type    string   `json:"type"`
	Domains []string `json:"domains"`
	Users   []string `json:"users"`
	// Show is the filter's show values for "subscribe".
	Show     json.RawMessage `json:"show"`
	JID      string          `json:"jid"`
	Resource string          `json:"resource"`
	Status   string          `json:"status"`
	Priority int             `json:"priority"`
	TTL      int             `json:"ttl"`
}

// stream serves GET /v1/stream: a snapshot frame (or, with resume=<seq>
// within the hub's window, the missed changes), then a change frame per
// event that the client's filter and token let through, in sequence order.
// See docs/api.md.
func (b *Bridge) stream(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r, true) {
		return
	}
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
	// idle connection would otherwise keep (docs/benchmarks.md). From here
	// on the bridge alone reads and writes the socket; gorilla's Conn is
	// dropped (reader.go).
	go b.serveStream(ws.NetConn(), r.RemoteAddr, clientKey(r, access), access, filter, resume)
}

// streamConn is one WebSocket client. Besides its reader goroutine it has
// no goroutine while idle: changes are queued here, and a writer goroutine
// runs only while there is something to write (drain), so an idle
// connection costs one goroutine stack and a few small structs
// (docs/benchmarks.md, memory per idle connection).
type streamConn struct {
	b      *Bridge
	conn   net.Conn
	remote string
	access Access
	limit  int // most changes queued

	mu sync.Mutex // guards what follows
	// queue is the batches not yet written, from the change at qpos of
	// the first; queued counts their changes, which limit bounds.
	queue   []*hubBatch
	qpos    int
	queued  int
	inbox   []any // from the reader: *viewFilter, controlFrame or errorFrame
	filter  *viewFilter
	seq     uint64          // changes up to seq are in what the client has
	visible map[string]bool // users the client holds, for a show filter
	running bool            // a writer (pool worker or drain) owns the writing
	resync  bool            // the hub lost events: send a new snapshot
	slow    bool            // the queue overflowed
	pingDue bool            // the pinger asked for a ping
	closed  bool
	// closeMsg is the close frame (whole, header included) to send
	// before closing (close).
	closeMsg []byte

	// raw is the socket, for the pool's non-blocking writes (nil: every
	// write goes through drain). pending is what such a write left unsent,
	// for drain to finish; only the writer touches it.
	raw     syscall.RawConn
	pending []byte
}

// ping asks for a ping; like push, it reports whether c needs a writer.
func (c *streamConn) ping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pingDue = true
	return c.claimLocked()
}

// claimLocked marks c running, for the pool, unless a writer already runs.
func (c *streamConn) claimLocked() bool {
	if c.running || c.closed {
		return false
	}
	c.running = true
	return true
}

func (c *streamConn) requestResync() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resync = true
	c.kickLocked()
}

// post hands the writer a message from the reader (bounded: a client
// flooding messages loses some answers, not the stream).
func (c *streamConn) post(m any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.inbox) < 8 {
		c.inbox = append(c.inbox, m)
		c.kickLocked()
	}
}

// kickLocked starts a drain goroutine unless one runs.
func (c *streamConn) kickLocked() {
	if !c.running && !c.closed {
		c.running = true
		go c.drain()
	}
}

// fail ends the connection if err is not nil, and reports whether it may
// go on.
func (c *streamConn) fail(err error) bool {
	if err == nil {
		return true
	}
	if !errors.Is(err, context.Canceled) && !isClosed(err) {
		c.b.log.Info("bridge: stream ended", "remote", c.remote, "err", err)
		c.b.metrics.streamClosed("write_error")
	}
	c.mu.Lock()
	c.closed, c.running = true, false
	c.mu.Unlock()
	c.conn.Close()
	return false
}

// snapshot sends the users the filter selects, as of now.
func (c *streamConn) snapshot() bool {
	v := c.b.cfg.Tracker.View() // O(domains) under the tracker's lock
	c.mu.Lock()
	c.seq = v.Seq()
	return c.fail(c.sendSnapshotLocked(v))
}

// sendSnapshotLocked encodes and writes a snapshot frame of the users of
// v the filter selects, for this connection alone; it unlocks c.mu first,
// so that the hub's pushes never wait for an encoding.
func (c *streamConn) sendSnapshotLocked(v *presence.View) error {
	f := c.filter
	c.visible = nil
	if len(f.shows) > 0 {
		// Filled by the encoding without c.mu: only the connection's
		// writer, which this is, reads it.
		c.visible = map[string]bool{}
	}
	visible := c.visible
	c.mu.Unlock()
	data, err := encodeSnapshot(v, f, visible)
	c.b.snapshots.encodes.Add(1)
	if err != nil {
		return err
	}
	return c.writeText(data)
}

// close ends the connection for good; the hub forgets it. msg, if not
// nil, is a close frame (wsframe.AppendClose) to send first: by the
// writer, if one runs, after the frame it is writing, so that it never
// lands in the middle of one. Closing the socket is the reader's
// (hangUp), once the client had its chance to read the close frame.
func (c *streamConn) close(msg []byte) {
	c.b.hub.leave(c)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.closeMsg = true, msg
	if c.running {
		c.mu.Unlock()
		return // the writer finishes
	}
	c.running = true
	c.mu.Unlock()
	c.finish()
}

// finish sends the close frame close asked for, if any, and ends the
// sending side; without one it closes the socket. The writer that sees
// closed calls it.
func (c *streamConn) finish() {
	c.mu.Lock()
	msg := c.closeMsg
	c.closeMsg = nil
	c.mu.Unlock()
	if msg == nil {
		c.conn.Close()
		return
	}
	c.writeClose(msg, time.Second)
}

// serveStream sends the first snapshot (or the replay), then becomes the
// connection's reader until the client leaves or the connection ends.
func (b *Bridge) serveStream(conn net.Conn, remote, key string, access Access, filter *viewFilter, resume uint64) {
	c := &streamConn{b: b, conn: conn, remote: remote, access: access, limit: b.cfg.StreamQueue, filter: filter,
		running: true} // this goroutine writes first; the hub only queues
	if sc, ok := conn.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	var view *presence.View
	// Under the hub's lock, so that no event slips in: O(domains), not
	// O(users) (presence.Tracker.View).
	takeView := func() { view = b.cfg.Tracker.View(); c.seq = view.Seq() }
	// A client of the full feed shares the snapshot other connects
	// encoded a moment ago, or the one being encoded (snapshot.go),
	// unless it resumes within the window. Any other encodes its own from
	// a View of at most a second ago that connects share (a View makes the
	// updates after it copy the index nodes they touch: one a second, not
	// one per connect), followed by the changes after it as for a resume
	// (recent: the View's position, without bytes).
	var shared, recent *sharedSnapshot
	var own bool // this connect encoded the shared snapshot
	if !b.hub.canResume(resume) {
		if filter.all {
			shared, own, _ = b.snapshots.get(nil) // on an error, its own snapshot below
		} else {
			view = b.cfg.Tracker.RecentView(snapshotMaxAge)
			recent = &sharedSnapshot{seq: view.Seq()}
			shared = recent
		}
	}
	mode := b.hub.join(c, resume, shared, takeView)
	for tries := 0; mode == joinStale; tries++ {
		// The window no longer holds what followed the shared snapshot:
		// a new one, once (not for a recent View: a new one is what
		// takeView takes); then this connection's own.
		stale := shared
		if shared = nil; tries == 0 && recent == nil {
			shared, own, _ = b.snapshots.get(stale)
		}
		recent = nil
		mode = b.hub.join(c, resume, shared, takeView)
	}
	switch mode {
	case joinReplayed:
		c.mu.Lock()
		c.seq = resume
		if len(c.filter.shows) > 0 {
			c.visible = map[string]bool{}
		}
		c.mu.Unlock()
	case joinShared:
		if recent != nil {
			// Its own snapshot of the recent View; the replay queued by
			// join follows it.
			c.mu.Lock()
			c.seq = recent.seq
			if err := c.sendSnapshotLocked(view); !c.fail(err) {
				c.close(nil)
				c.hangUp(false)
				return
			}
			break
		}
		if !own {
			b.snapshots.shared.Add(1)
		}
		c.mu.Lock()
		c.seq = shared.seq // the replay queued by join follows it
		c.mu.Unlock()
		// The cached bytes themselves, written as they are (writeText:
		// header and payload in one writev, no copy).
		if err := c.writeText(shared.payload); !c.fail(err) {
			c.close(nil)
			c.hangUp(false)
			return
		}
	default:
		c.mu.Lock()
		if err := c.sendSnapshotLocked(view); !c.fail(err) {
			c.close(nil)
			c.hangUp(false)
			return
		}
	}
	shared, recent = nil, nil
	view = nil
	_ = conn.SetWriteDeadline(time.Time{}) // see drain
	c.mu.Lock()
	if c.closed {
		// close ran while this goroutine was the writer: the close
		// frame is this writer's to send.
		c.mu.Unlock()
		c.finish()
		c.hangUp(true)
		return
	}
	c.running = false
	c.kickLocked() // whatever queued meanwhile
	c.mu.Unlock()

	msg := c.read(key)
	c.close(msg)
	c.hangUp(msg != nil)
}

// pingAll pings every stream client every PingInterval until ctx ends; the
// readers' deadlines drop clients that stop answering. One goroutine for
// all connections instead of a timer each.
func (b *Bridge) pingAll(ctx context.Context) {
	t := time.NewTicker(b.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			var due []*streamConn
			b.hub.each(func(c *streamConn) {
				if c.ping() {
					due = append(due, c)
				}
			})
			b.hub.writers.add(due)
		}
	}
}

// closeAll tells every stream client the server goes away (1001) and
// closes the connections.
func (b *Bridge) closeAll() {
	msg := wsframe.AppendClose(nil, closeGoingAway, "server shutting down")
	b.hub.each(func(c *streamConn) { c.close(msg) })
}
