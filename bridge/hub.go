package bridge

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/presenced/presenced/presence"
)

// hubEvent is one change, encoded once for every connection. It holds
// what the connections filter by and the change message's JSON, not its
// WebSocket frame: framing is the transport's (framed.go).
type hubEvent struct {
	seq   uint64
	user  string
	show  string // the user's aggregate show after the change, on the wire
	frame []byte // the change message (marshalChange)
}

// hubBatch is the changes of one flush, in seq order, handed to every
// connection at once: one queue entry per connection per flush instead of
// one per change.
type hubBatch struct {
	events []*hubEvent
	// framed is the transport's, which fills it once for all the
	// connections that get the batch whole (hubBatch.wire, framed.go).
	framed framedBatch
}

// last is the seq of the batch's last change.
func (b *hubBatch) last() uint64 { return b.events[len(b.events)-1].seq }

// hub follows the tracker with one subscription, encodes each event once,
// keeps the most recent ones for clients that resume, and hands them to
// every connection's bounded queue, a batch per flush. Connections filter
// for themselves.
type hub struct {
	tracker  *presence.Tracker
	log      *slog.Logger
	writers  *writerPool
	nwriters int
	// base is the least time between two flushes (Config.
	// StreamFlushInterval); 0: a flush per read from the tracker.
	base  time.Duration
	timer *time.Timer // flushes what waits for the interval to pass

	mu sync.Mutex
	// conns lists the connections in a stable order, so that each pass of
	// the writers reaches every connection at the same point: a change
	// then waits at most one pass (in map order, a connection last in one
	// pass could be last in the next too). index finds a connection in it.
	conns []*streamConn
	index map[*streamConn]int
	ring  []*hubEvent // recent events, oldest first within the window
	head  int         // index of the oldest in ring when full
	count int
	last  uint64        // seq of the last event published
	ready []*streamConn // flush's scratch list, kept for the next flush
	// pending is what was published since the last flush; flushed is
	// when that was, and timerSet that the timer will flush pending.
	pending  []*hubEvent
	flushed  time.Time
	timerSet bool
	// interval is the least time between two flushes now: base, longer
	// under a heavy fan-out (stretch). delivered counts the changes times
	// the connections handed out since since.
	interval  time.Duration
	delivered int
	since     time.Time
	// flushes counts the flushes since since, and late those that found
	// the writers still busy with the one before after the base interval.
	flushes, late int
}

// The flush interval stretches with the fan-out: at more than
// stretchFrom deliveries a second (changes × connections) it grows in
// proportion, up to stretchMax times the configured one. A write costs
// about the same whatever it carries (docs/benchmarks.md), so at 1,000
// dashboards × 1,000 changes/s four times fewer writes save half of the
// fan-out's CPU, for at most 75 ms more latency on a stream no one reads
// change by change; at a lower fan-out nothing waits longer (the interval
// follows the fan-out of the last second or so), and a change after a
// quiet spell goes out at once. It does not stretch while the writers take longer than the
// configured interval over one flush (10,000 connections): they batch by
// themselves then, each connection getting what queued during their pass,
// and a longer interval would only add its wait.
const (
	stretchFrom = 250_000
	stretchMax  = 4
)

// stretch sets the interval from the deliveries of the last second or
// more; h.mu is held.
func (h *hub) stretch(now time.Time) {
	elapsed := now.Sub(h.since)
	if elapsed < time.Second {
		return
	}
	rate := float64(h.delivered) / elapsed.Seconds()
	factor := min(stretchMax, max(1, rate/stretchFrom))
	if h.late*2 > h.flushes {
		factor = 1
	}
	h.interval = time.Duration(float64(h.base) * factor)
	h.delivered, h.since, h.flushes, h.late = 0, now, 0, 0
}

func newHub(t *presence.Tracker, log *slog.Logger, window, writers int, flush time.Duration) *hub {
	h := &hub{tracker: t, log: log, writers: newWriterPool(), nwriters: writers, base: flush, interval: flush,
		index: map[*streamConn]int{}, ring: make([]*hubEvent, window), since: time.Now()}
	h.timer = time.AfterFunc(time.Hour, h.flushTimer)
	h.timer.Stop()
	return h
}

// start subscribes to the tracker now, so that connections joining from
// now on miss nothing, and follows it in a goroutine until ctx ends.
func (h *hub) start(ctx context.Context) {
	sub := h.subscribe()
	h.writers.run(ctx, h.nwriters)
	context.AfterFunc(ctx, func() { h.timer.Stop() })
	go h.run(ctx, sub)
}

// subscribe takes a new subscription; if the hub missed events (first
// start, or a lag), its window is no longer contiguous and every connection
// is told to start over from a snapshot.
func (h *hub) subscribe() *presence.Subscription {
	// SubscribeView: the hub needs the position, not a copy of everyone.
	v, sub := h.tracker.SubscribeView(presence.Filter{}, 1<<16)
	seq := v.Seq()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last != seq {
		h.count, h.head, h.last = 0, 0, seq
		for _, c := range h.conns {
			c.requestResync()
		}
	}
	return sub
}

func (h *hub) run(ctx context.Context, sub *presence.Subscription) {
	buf := make([]presence.Event, 256)
	for {
		n, err := sub.Read(ctx, buf)
		if err != nil {
			sub.Close()
			if !errors.Is(err, presence.ErrLagged) {
				return
			}
			h.log.Warn("bridge: the hub fell behind the tracker; clients resync")
			sub = h.subscribe()
			continue
		}
		for i := range buf[:n] {
			h.publish(&buf[i])
		}
		h.mu.Lock()
		h.flushLocked()
		h.mu.Unlock()
	}
}

// flushLocked hands what was published since the last flush to every
// connection as one batch: now if the interval has passed since the last
// flush, else when it passes. At a high change rate every connection gets
// one write per interval whatever the rate, and a lone change after a
// quiet spell goes out at once. h.mu is held.
//
// Alternatives measured (docs/benchmarks.md): a change per queue entry,
// with the interval kept per connection by the writers, cost a lock and a
// queue entry per change per connection and a "changes" message built per
// connection; a batch shares one entry and, for connections that see
// everything, one encoding.
func (h *hub) flushLocked() {
	if len(h.pending) == 0 {
		return
	}
	now := time.Now()
	if wait := h.flushed.Add(h.interval).Sub(now); wait > 0 {
		if !h.timerSet {
			h.timerSet = true
			h.timer.Reset(wait)
		}
		return
	}
	busy, idleAt, done := h.writers.state()
	if done {
		h.pending = nil // shut down: no writer would take the connections
		return
	}
	if busy || idleAt.Sub(h.flushed) > h.base {
		h.late++
	}
	h.flushes++
	h.flushed = now
	h.delivered += len(h.pending) * len(h.conns)
	h.stretch(now)
	// In batches of at most maxFlush changes, so that the bytes of one
	// (built whole) stay small after the hub catches up on a backlog.
	ready := h.ready[:0]
	for len(h.pending) > 0 {
		n := min(len(h.pending), maxFlush)
		b := &hubBatch{events: h.pending[:n:n]}
		h.pending = h.pending[n:]
		for _, c := range h.conns {
			if c.push(b) {
				ready = append(ready, c)
			}
		}
	}
	h.pending = nil
	h.writers.add(ready)
	clear(ready)
	h.ready = ready
}

// maxFlush bounds the changes of one batch: 16 "changes" messages.
const maxFlush = 16 * maxBatch

func (h *hub) flushTimer() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.timerSet = false
	h.flushLocked()
}

func (h *hub) publish(ev *presence.Event) {
	frame, err := marshalChange(ev)
	if err != nil {
		h.log.Error("bridge: encoding a change", "err", err)
		return
	}
	he := &hubEvent{seq: ev.Seq, user: ev.User, show: wireShow(ev.Aggregate.Online, ev.Aggregate.Show), frame: frame}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ring) > 0 {
		if h.count < len(h.ring) {
			h.ring[(h.head+h.count)%len(h.ring)] = he
			h.count++
		} else {
			h.ring[h.head] = he
			h.head = (h.head + 1) % len(h.ring)
		}
	}
	h.last = ev.Seq
	h.pending = append(h.pending, he)
}

// joinMode is how a connection joined the hub: what its first frames are.
type joinMode int

const (
	// joinSnapshot: the snapshot func ran (a View taken); the connection
	// sends that View's snapshot.
	joinSnapshot joinMode = iota
	// joinReplayed: a resume within the window; what the client missed
	// is queued.
	joinReplayed
	// joinShared: the shared snapshot goes first, and the events after
	// its seq are queued, as for a resume from that seq.
	joinShared
	// joinStale: the shared snapshot is too far behind the window; the
	// connection was not registered.
	joinStale
)

// canResume reports whether a connect with resume=seq would be replayed
// from the window now, so that it needs no snapshot. The window only moves
// forward, so a false stays false; a true may turn false before join,
// which then takes a snapshot.
func (h *hub) canResume(resume uint64) bool {
	if resume == 0 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resumableLocked(resume)
}

// resumableLocked reports whether a connection resuming after resume can
// be served from the window alone. h.mu is held.
func (h *hub) resumableLocked(resume uint64) bool {
	return resume > 0 && (resume == h.last || resume < h.last && h.coversLocked(resume))
}

// coversLocked reports whether the window holds every event after seq
// up to the last published (seq < h.last). h.mu is held.
func (h *hub) coversLocked(seq uint64) bool {
	return h.count > 0 && seq+1 >= h.ring[h.head].seq
}

// afterLocked returns the window's events after seq, in order;
// coversLocked(seq) said the window holds them. The window holds
// consecutive seqs (a lag empties it, see subscribe), so the first is
// found by arithmetic: O(events returned). h.mu is held.
func (h *hub) afterLocked(seq uint64) []*hubEvent {
	start := int(seq + 1 - h.ring[h.head].seq)
	if start >= h.count {
		return nil
	}
	out := make([]*hubEvent, 0, h.count-start)
	for i := start; i < h.count; i++ {
		out = append(out, h.ring[(h.head+i)%len(h.ring)])
	}
	return out
}

// join registers a connection and tells what it sends first. If resume is
// positive and the window still holds every event after it, those are
// queued (as batches of the connection's own): joinReplayed. Else, with a
// shared snapshot whose following events the window holds, those are
// queued the same way (in batches shared by the snapshot's connects):
// joinShared; joinStale, without registering, when the window lost some.
// Otherwise snapshot runs, with the hub locked so that no event slips
// between it and the queue: joinSnapshot. Events queued and then flushed
// again, or already in the snapshot, are skipped by their seq.
// O(events replayed); the window's events are shared, not copied.
func (h *hub) join(c *streamConn, resume uint64, shared *sharedSnapshot, snapshot func()) joinMode {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.resumableLocked(resume):
		h.register(c)
		if resume < h.last { // else nothing was missed
			h.replayLocked(c, resume)
		}
		return joinReplayed
	case shared != nil && shared.seq >= h.last:
		// The hub has not read up to the snapshot yet: everything after
		// it comes with the flushes, the rest skipped by seq.
		h.register(c)
		return joinShared
	case shared != nil:
		if !h.coversLocked(shared.seq) {
			return joinStale
		}
		h.register(c)
		h.replaySharedLocked(c, shared)
		return joinShared
	}
	h.register(c)
	snapshot()
	return joinSnapshot
}

// replaySharedLocked queues for c the window's events after the shared
// snapshot s, as replayLocked does, but in batches shared by every connect
// of s: the full ones (maxBatch changes) are kept in s.replay, built once
// with their bytes, and only the last, partial one is c's own. h.mu is
// held, and coversLocked(s.seq) said the window holds the events.
func (h *hub) replaySharedLocked(c *streamConn, s *sharedSnapshot) {
	after := s.seq
	if n := len(s.replay); n > 0 {
		kept := s.replay[n-1].events
		after = kept[len(kept)-1].seq
	}
	rest := h.afterLocked(after)
	for len(rest) >= maxBatch {
		s.replay = append(s.replay, &hubBatch{events: rest[:maxBatch:maxBatch]})
		rest = rest[maxBatch:]
	}
	n := len(s.replay)*maxBatch + len(rest)
	c.mu.Lock()
	c.queue = append(c.queue, s.replay...)
	if len(rest) > 0 {
		c.queue = append(c.queue, &hubBatch{events: rest})
	}
	c.queued += n
	c.limit += n
	c.mu.Unlock()
}

// register adds c to the connections the flushes reach. h.mu is held.
func (h *hub) register(c *streamConn) {
	h.index[c] = len(h.conns)
	h.conns = append(h.conns, c)
}

// replayLocked queues for c the window's events after seq, which
// coversLocked(seq) said it holds. h.mu is held; c is not yet written to
// by anyone but its own goroutine (running).
func (h *hub) replayLocked(c *streamConn, seq uint64) {
	// Everything missed is still in the window: replay it all, however
	// long (a client closed with 4008 missed at least a queue's worth),
	// and let its queue hold the replay on top of its usual bound until
	// it has caught up. Those still pending come again with the next
	// flush; the connection skips them by seq.
	missed := h.afterLocked(seq)
	// In batches of one message each: a batch's bytes are built whole,
	// and a replay is this connection's alone.
	c.mu.Lock()
	for i := 0; i < len(missed); i += maxBatch {
		c.queue = append(c.queue, &hubBatch{events: missed[i:min(i+maxBatch, len(missed))]})
	}
	c.queued += len(missed)
	c.limit += len(missed)
	c.mu.Unlock()
}

func (h *hub) leave(c *streamConn) {
	h.mu.Lock()
	if i, ok := h.index[c]; ok {
		last := len(h.conns) - 1
		h.conns[i] = h.conns[last]
		h.index[h.conns[i]] = i
		h.conns[last] = nil
		h.conns = h.conns[:last]
		delete(h.index, c)
	}
	h.mu.Unlock()
}

// each calls f for every connection, outside the hub's lock.
func (h *hub) each(f func(*streamConn)) {
	h.mu.Lock()
	conns := slices.Clone(h.conns)
	h.mu.Unlock()
	for _, c := range conns {
		f(c)
	}
}
