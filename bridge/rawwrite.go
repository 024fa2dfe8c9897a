package bridge

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// The pool's writes: non-blocking raw write(2) calls straight to the
// socket, for the pings and changes of a connection whose socket has room.

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
				// (a batch's shared bytes, a ping) never changes and is
				// kept as it is, not copied once per stalled client.
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
