package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/presenced/presenced/internal/wsframe"
)

// The write side of the stream: who writes a connection's frames, and how.
//
// A connection has one writer at a time (streamConn.running). Changes from
// the hub and pings are written by a small pool of workers, one per CPU,
// with non-blocking writes straight to the socket: a worker never waits for
// a client. When a write would block (the client's socket buffer is full),
// or there is rarer work (a snapshot, an error frame, a close), the
// connection gets a goroutine of its own, drain, which writes with a
// deadline until the queue is empty and then ends.
//
// Alternatives measured (docs/benchmarks.md, WebSocket fan-out): a writer
// goroutine per connection started for every change spends, at 10,000
// subscribers, more time creating, scheduling and deadline-arming
// goroutines than in the write itself; a long-lived writer per connection
// costs a goroutine stack per idle client.

// pingFrame is a server ping with no payload, the same bytes for every
// connection.
var pingFrame = wsframe.AppendFrame(nil, wsframe.Ping, nil)

// textFrame returns payload framed as one text message.
func textFrame(payload []byte) []byte {
	return wsframe.AppendFrame(make([]byte, 0, wsframe.MaxHeader+len(payload)), wsframe.Text, payload)
}

// writerPool runs the workers that write for connections with something to
// send. Each connection is in ready at most once (its running flag), so
// ready is bounded by the number of connections.
type writerPool struct {
	mu    sync.Mutex
	cond  sync.Cond
	ready []*streamConn
	head  int
	done  bool
	// working counts the workers writing a batch of connections; idleAt
	// is when the last one finished with nothing left.
	working int
	idleAt  time.Time
}

// state reports whether the workers are writing or have connections
// waiting, when they were last done with everything, and whether they
// have stopped for good.
func (p *writerPool) state() (busy bool, idleAt time.Time, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.working > 0 || p.head < len(p.ready), p.idleAt, p.done
}

func newWriterPool() *writerPool {
	p := &writerPool{}
	p.cond.L = &p.mu
	return p
}

// add hands connections, each already marked running, to the workers.
func (p *writerPool) add(cs []*streamConn) {
	if len(cs) == 0 {
		return
	}
	p.mu.Lock()
	p.ready = append(p.ready, cs...)
	p.mu.Unlock()
	p.cond.Broadcast()
}

// run starts n workers until ctx ends.
func (p *writerPool) run(ctx context.Context, n int) {
	for range n {
		go p.work()
	}
	go func() {
		<-ctx.Done()
		p.mu.Lock()
		p.done = true
		p.mu.Unlock()
		p.cond.Broadcast()
	}()
}

// work takes connections a few at a time, oldest first, and writes what
// each has.
func (p *writerPool) work() {
	w := &fastWriter{}
	w.fn = w.write
	var batch []*streamConn
	for {
		p.mu.Lock()
		if len(batch) > 0 {
			if p.working--; p.working == 0 && p.head == len(p.ready) {
				p.idleAt = time.Now()
			}
		}
		for p.head == len(p.ready) && !p.done {
			p.cond.Wait()
		}
		if p.done {
			p.mu.Unlock()
			return
		}
		k := min(len(p.ready)-p.head, 32)
		batch = append(batch[:0], p.ready[p.head:p.head+k]...)
		clear(p.ready[p.head : p.head+k])
		if p.head += k; p.head == len(p.ready) {
			p.ready, p.head = p.ready[:0], 0
		}
		p.working++
		p.mu.Unlock()
		for _, c := range batch {
			c.drainFast(w)
		}
	}
}

// fastWriter is a worker's state for non-blocking writes; fn is its write
// method, bound once so that a write allocates nothing.
type fastWriter struct {
	buf  []byte
	data []byte
	n    int
	err  error
	fn   func(fd uintptr) bool
}

func (w *fastWriter) write(fd uintptr) bool {
	// A raw system call: the socket is non-blocking, so the call never
	// waits, and telling Go's scheduler about it (syscall.Write) costs more
	// than the call when the writers make tens of thousands a second: the
	// scheduler's monitor then wakes up every 20 µs to take the writer's P
	// away (docs/benchmarks.md).
	r, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(w.data))), uintptr(len(w.data)))
	if w.n, w.err = int(r), nil; errno != 0 {
		w.n, w.err = 0, errno
	}
	return true // done whatever happened: never wait for the socket
}

// drainFast writes c's pings and queued changes without blocking, until
// nothing is left or a write would block; then, or for any other kind of
// work, it hands c to a drain goroutine. c is marked running.
func (c *streamConn) drainFast(w *fastWriter) {
	for {
		c.mu.Lock()
		var data []byte
		switch {
		case c.closed:
			c.mu.Unlock()
			go c.finish() // it may wait for the client
			return
		case c.raw == nil || c.slow || c.resync || len(c.inbox) > 0:
			c.mu.Unlock()
			go c.drain()
			return
		case c.pingDue:
			c.pingDue = false
			data = pingFrame
		case len(c.queue) == 0:
			c.running = false
			c.queue, c.limit = nil, c.b.cfg.StreamQueue // caught up: the usual bound again
			c.mu.Unlock()
			return
		default:
			w.buf, data = c.takeLocked(w.buf)
		}
		c.mu.Unlock()
		if data == nil {
			continue
		}
		w.data, w.n, w.err = data, 0, nil
		if err := c.raw.Write(w.fn); err != nil {
			w.n, w.err = 0, err
		}
		w.data = nil
		switch {
		case w.err == nil && w.n == len(data):
			continue
		case w.err == nil, errors.Is(w.err, syscall.EAGAIN), errors.Is(w.err, syscall.EINTR),
			errors.Is(w.err, os.ErrDeadlineExceeded):
			// The client's socket buffer is full: the rest is written by a
			// goroutine that may wait for it.
			c.pending = data[max(w.n, 0):]
			if len(w.buf) > 0 && unsafe.SliceData(data) == unsafe.SliceData(w.buf) {
				// Built in this worker's buffer: copy. Anything else
				// (a batch's shared bytes, a change's frame, a ping)
				// never changes and is kept as it is, not copied once
				// per stalled client.
				c.pending = append([]byte(nil), c.pending...)
			}
			go c.drain()
			return
		default:
			c.fail(w.err)
			return
		}
	}
}

// maxJoin bounds the bytes of the batches joined into one write for a
// client that is behind.
const maxJoin = 256 << 10

// wholeLocked reports whether the first queued batch goes to c whole, as
// its shared bytes: c sees every change, has begun none of the batch and
// has none of its changes yet. The queue is not empty; c.mu is held.
func (c *streamConn) wholeLocked() bool {
	return c.filter.all && c.qpos == 0 && c.queue[0].events[0].seq > c.seq
}

// takeLocked removes queued changes and returns the bytes that carry those
// the client wants. A client that sees every change gets each batch it has
// none of as the batch's shared bytes, built once for all such clients
// (several batches joined in buf when it is behind). Any other client gets
// the changes it wants, up to maxBatch, as the change's own message or as
// a "changes" message built in buf. data is nil when the client wants none
// of the changes looked at. c.mu is held.
func (c *streamConn) takeLocked(buf []byte) (_ []byte, data []byte) {
	if c.wholeLocked() {
		b := c.popLocked()
		if len(c.queue) == 0 || !c.wholeLocked() {
			return buf, b.shared()
		}
		buf = append(buf[:0], b.shared()...)
		for len(c.queue) > 0 && c.wholeLocked() && len(buf) < maxJoin {
			buf = append(buf, c.popLocked().shared()...)
		}
		return buf, buf
	}
	var frames [maxBatch][]byte
	var single *hubEvent
	k := 0
	for looked := 0; len(c.queue) > 0 && k < maxBatch && looked < 4*maxBatch; looked++ {
		b := c.queue[0]
		he := b.events[c.qpos]
		if c.qpos++; c.qpos == len(b.events) {
			c.popLocked()
		}
		c.queued--
		if he.seq <= c.seq || !c.filter.user(he.user) {
			continue
		}
		want := c.filter.show(he.show)
		if !want && !c.visible[he.user] {
			continue
		}
		// A user leaving the client's show filter gets one last frame, so
		// the client can drop it.
		if c.visible != nil {
			c.visible[he.user] = want
		}
		c.seq = he.seq
		frames[k], single = he.frame, he
		k++
	}
	switch k {
	case 0:
		return buf, nil
	case 1:
		return buf, single.wire
	}
	buf = appendChanges(buf[:0], frames[:k])
	return buf, buf
}

// popLocked removes the first queued batch and returns it; c.mu is held.
// From a batch partly taken (qpos), it counts only what was left.
func (c *streamConn) popLocked() *hubBatch {
	b := c.queue[0]
	if c.qpos == 0 {
		c.queued -= len(b.events)
		c.seq = max(c.seq, b.last())
	}
	c.queue[0] = nil
	c.queue, c.qpos = c.queue[1:], 0
	return b
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
			default:
				var data []byte
				if data, err = json.Marshal(m); err == nil {
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

// takeWholeLocked removes the batches at the head of the queue that the
// client gets whole (it sees every change and has none of the batch's),
// up to about maxJoin bytes, and appends their shared bytes to bufs. drain
// writes them with one writev instead of joining them in a buffer of its
// own: a client behind by a replay (a resume, a shared snapshot) would
// otherwise cost a copy of its backlog. c.mu is held.
func (c *streamConn) takeWholeLocked(bufs net.Buffers) net.Buffers {
	for n := 0; n < maxJoin && len(c.queue) > 0 && c.wholeLocked(); {
		w := c.popLocked().shared()
		bufs = append(bufs, w)
		n += len(w)
	}
	return bufs
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
