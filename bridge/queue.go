package bridge

import "net"

// A connection's queue of the hub's batches, and how its writer takes from
// it what the client gets: whole batches for a client that sees every
// change, its own selection for a filtered one.

// push queues a batch of changes; called by the hub at every flush. It
// reports whether c needs a writer, which the caller hands to the writer
// pool (c is then marked running).
func (c *streamConn) push(b *hubBatch) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.slow {
		return false
	}
	// A batch larger than the whole bound still goes onto an empty
	// queue: the bound is for clients that fall behind, not for the size
	// of one flush.
	if len(c.queue) > 0 && c.queued+len(b.events) > c.limit {
		c.slow = true
	} else {
		c.queue = append(c.queue, b)
		c.queued += len(b.events)
	}
	return c.claimLocked()
}

// maxJoin bounds the bytes of the batches joined into one write for a
// client that is behind.
const maxJoin = 256 << 10

// wholeLocked reports whether the first queued batch goes to c whole, as
// its shared bytes (hubBatch.wire): c sees every change, has begun none
// of the batch and has none of its changes yet. The queue is not empty; c.mu is held.
func (c *streamConn) wholeLocked() bool {
	return c.filter.all && c.qpos == 0 && c.queue[0].events[0].seq > c.seq
}

// takeLocked removes queued changes and returns the bytes that carry those
// the client wants. A client that sees every change gets each batch it has
// none of as the batch's shared bytes, framed once for all such clients
// (several batches joined in buf when it is behind). Any other client gets
// the changes it wants, up to maxBatch, as the change's own message or as
// a "changes" message, framed in buf: a copy of a few hundred bytes next to
// a write(2) of about 10 µs, and buf is the writer's, so no allocation. data is nil when the client wants none
// of the changes looked at. c.mu is held.
func (c *streamConn) takeLocked(buf []byte) (_ []byte, data []byte) {
	if c.wholeLocked() {
		b := c.popLocked()
		if len(c.queue) == 0 || !c.wholeLocked() {
			return buf, b.wire()
		}
		buf = append(buf[:0], b.wire()...)
		for len(c.queue) > 0 && c.wholeLocked() && len(buf) < maxJoin {
			buf = append(buf, c.popLocked().wire()...)
		}
		return buf, buf
	}
	var frames [maxBatch][]byte
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
		frames[k] = he.frame
		k++
	}
	switch k {
	case 0:
		return buf, nil
	case 1:
		buf = appendText(buf[:0], frames[0])
	default:
		buf = appendChangesMessage(buf[:0], frames[:k])
	}
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

// takeWholeLocked removes the batches at the head of the queue that the
// client gets whole (it sees every change and has none of the batch's),
// up to about maxJoin bytes, and appends their shared bytes to bufs. drain
// writes them with one writev instead of joining them in a buffer of its
// own: a client behind by a replay (a resume, a shared snapshot) would
// otherwise cost a copy of its backlog. c.mu is held.
func (c *streamConn) takeWholeLocked(bufs net.Buffers) net.Buffers {
	for n := 0; n < maxJoin && len(c.queue) > 0 && c.wholeLocked(); {
		w := c.popLocked().wire()
		bufs = append(bufs, w)
		n += len(w)
	}
	return bufs
}
