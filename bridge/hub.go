package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/presenced/presenced/presence"
)

// hubEvent is one change, encoded once for every connection.
type hubEvent struct {
	seq   uint64
	user  string
	show  string // the user's aggregate show after the change, on the wire
	frame []byte // the change frame, JSON
	// wire is frame as a WebSocket text message, framed once for all the
	// connections that get it alone.
	wire []byte
}

// hub follows the tracker with one subscription, encodes each event once,
// keeps the most recent ones for clients that resume, and hands them to
// every connection's bounded queue. Connections filter for themselves.
type hub struct {
	tracker  *presence.Tracker
	log      *slog.Logger
	queue    int // per-connection queue length
	writers  *writerPool
	nwriters int

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
	last  uint64        // seq of the last event handed out
	ready []*streamConn // publish's scratch list, kept for the next event
}

func newHub(t *presence.Tracker, log *slog.Logger, window, writers int, flush time.Duration) *hub {
	return &hub{tracker: t, log: log, writers: newWriterPool(flush), nwriters: writers, index: map[*streamConn]int{},
		ring: make([]*hubEvent, window)}
}

// start subscribes to the tracker now, so that connections joining from
// now on miss nothing, and follows it in a goroutine until ctx ends.
func (h *hub) start(ctx context.Context) {
	sub := h.subscribe()
	h.writers.run(ctx, h.nwriters)
	go h.run(ctx, sub)
}

// subscribe takes a new subscription; if the hub missed events (first
// start, or a lag), its window is no longer contiguous and every connection
// is told to start over from a snapshot.
func (h *hub) subscribe() *presence.Subscription {
	_, seq, sub := h.tracker.Subscribe(presence.Filter{}, 1<<16)
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
	}
}

func (h *hub) publish(ev *presence.Event) {
	frame, err := json.Marshal(toChange(ev))
	if err != nil {
		h.log.Error("bridge: encoding a change", "err", err)
		return
	}
	he := &hubEvent{seq: ev.Seq, user: ev.User, show: wireShow(ev.Aggregate.Online, ev.Aggregate.Show),
		frame: frame, wire: textFrame(frame)}
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
	ready := h.ready[:0]
	for _, c := range h.conns {
		if c.push(he) {
			ready = append(ready, c)
		}
	}
	h.writers.add(ready)
	clear(ready)
	h.ready = ready
}

// join registers a connection. If resume is positive and the window still
// holds every event after it, those are queued and replayed is true;
// otherwise snapshot runs, with the hub locked so that no event slips
// between it and the queue (events the snapshot already holds are skipped
// by their seq).
func (h *hub) join(c *streamConn, resume uint64, snapshot func()) (replayed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.index[c] = len(h.conns)
	h.conns = append(h.conns, c)
	if resume > 0 && resume <= h.last && h.count > 0 {
		oldest := h.ring[h.head].seq
		if resume+1 >= oldest {
			// Everything missed is still in the window: replay it all,
			// however long (a client closed with 4008 missed at least a
			// queue's worth), and let its queue hold the replay on top of
			// its usual bound until it has caught up.
			for i := 0; i < h.count; i++ {
				if he := h.ring[(h.head+i)%len(h.ring)]; he.seq > resume {
					c.queue = append(c.queue, he)
				}
			}
			c.limit += len(c.queue)
			return true
		}
	}
	if resume > 0 && resume == h.last {
		return true // nothing missed
	}
	snapshot()
	return false
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
