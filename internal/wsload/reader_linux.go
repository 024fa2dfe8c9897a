//go:build linux

package wsload

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Options configure a Reader.
type Options struct {
	// Raw makes the Reader use raw system calls (epoll_wait, read,
	// nanosleep) on its locked thread: the thread keeps its P while it
	// waits, and Go's scheduler is not asked to hand the P over and take it
	// back at each wait, the cheapest wake-up there is. The P is then held
	// by a waiting thread, so it suits a process whose work is reading
	// (presenced-fanout's client); a process with other goroutines to run
	// (presence-load's XMPP users) leaves it false, so that they get the P
	// while the Reader waits.
	Raw bool
	// Nap, if positive, makes the Reader poll instead of waiting for each
	// frame: it handles every ready socket, then sleeps Nap. That is at
	// most one wake-up per Nap for any number of frames, and at most Nap
	// added to each latency measured. Zero waits in epoll_wait, woken by
	// the kernel for nearly every frame the server writes.
	Nap time.Duration
}

// waitMillis bounds one epoll_wait, so that Add and Stop are seen soon (and
// a raw wait does not hold off the garbage collector's stop for long).
const waitMillis = 10

// Buffer sizes: events per epoll_wait and bytes per read.
const (
	maxEvents = 1024
	readSize  = 256 << 10
)

const epollET = 1 << 31 // syscall.EPOLLET, which is a negative int there

// Reader reads many connections from one goroutine (Run) with epoll.
type Reader struct {
	ep    int
	o     Options
	conns []*Conn // by fd

	mu       sync.Mutex
	pending  []attach // added, not attached yet (Run attaches them)
	started  bool     // Run was called
	closed   bool     // everything is closed: Add closes what it gets, Lend ignores it
	quitOnce sync.Once
	quit     chan struct{}
	done     chan struct{} // Run returned, or Stop cleaned up without it
	// adds tells Run that pending is not empty, without taking mu on each
	// pass.
	adds atomic.Bool
}

type attach struct {
	fd    int
	rest  []byte
	h     Handler
	owned bool // the Reader closes fd (Add), or the caller does (Lend)
}

// New returns a Reader with its epoll set; Run reads it.
func New(o Options) (*Reader, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return &Reader{ep: ep, o: o, quit: make(chan struct{}), done: make(chan struct{})}, nil
}

// Add hands a connected socket, the WebSocket handshake done, to the
// Reader, which from then on owns fd: Run makes it non-blocking, reads it
// from its next pass (within 10 ms), and closes it when the connection
// ends or the Reader stops; after Stop, Add closes it at once. rest is
// what was read past the handshake (the first frames), handled before the
// socket is read; the Reader keeps it. Safe for concurrent use.
func (r *Reader) Add(fd int, rest []byte, h Handler) { r.add(attach{fd, rest, h, true}) }

// Lend is Add for a socket the caller keeps open (as an *os.File, say):
// the Reader reads it the same way, but never closes it. When the
// connection ends, or at Stop, it only takes fd out of its epoll set
// (after Stop, Lend ignores fd); the caller closes fd once Closed was
// called or Stop returned.
func (r *Reader) Lend(fd int, rest []byte, h Handler) { r.add(attach{fd, rest, h, false}) }

func (r *Reader) add(a attach) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		if a.owned {
			syscall.Close(a.fd)
		}
		return
	}
	r.pending = append(r.pending, a)
	r.adds.Store(true)
	r.mu.Unlock()
}

// Run reads the connections until Stop, calling their handlers; it locks
// its goroutine to its thread meanwhile. It returns nil after Stop (at
// once if Stop came first), or the error of an epoll_wait that failed
// (then every connection is closed, as by Stop, with no Closed call). It
// is called once.
func (r *Reader) Run() error {
	r.mu.Lock()
	switch {
	case r.started:
		r.mu.Unlock()
		return errors.New("wsload: Run called twice")
	case r.closed:
		r.mu.Unlock()
		return nil
	}
	r.started = true
	r.mu.Unlock()
	defer close(r.done)
	defer func() {
		r.mu.Lock()
		r.closeLocked()
		r.mu.Unlock()
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	events := make([]syscall.EpollEvent, maxEvents)
	buf := make([]byte, readSize)
	timeout := waitMillis
	if r.o.Nap > 0 {
		timeout = 0
	}
	nap := syscall.NsecToTimespec(int64(r.o.Nap))
	for {
		select {
		case <-r.quit:
			return nil
		default:
		}
		if r.adds.Load() {
			r.attachPending()
		}
		n, errno := r.syscall6(syscall.SYS_EPOLL_PWAIT, uintptr(r.ep), uintptr(unsafe.Pointer(&events[0])),
			uintptr(len(events)), uintptr(timeout), 0, 0) // no signal mask: epoll_wait
		switch errno {
		case 0:
		case syscall.EINTR:
			n = 0
		default:
			return os.NewSyscallError("epoll_wait", errno)
		}
		for _, ev := range events[:n] {
			if fd := int(ev.Fd); fd < len(r.conns) {
				if c := r.conns[fd]; c != nil {
					r.read(c, ev.Events, buf)
				}
			}
		}
		if r.o.Nap > 0 && n < len(events) {
			r.syscall6(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&nap)), 0, 0, 0, 0, 0)
		}
	}
}

// Stop ends Run and closes every connection (no Closed call; a lent
// socket is only taken out of the epoll set) and the epoll set, and
// returns once Run has returned; a Reader whose Run never started
// is cleaned up at once. Safe to call more than once.
func (r *Reader) Stop() {
	r.quitOnce.Do(func() { close(r.quit) })
	r.mu.Lock()
	if !r.started && !r.closed {
		r.closeLocked()
		close(r.done)
	}
	r.mu.Unlock()
	<-r.done
}

// closeLocked closes every socket and the epoll set; r.mu is held, and Run
// is not reading (it is the caller, or it never started).
func (r *Reader) closeLocked() {
	if r.closed {
		return
	}
	r.closed = true
	for _, c := range r.conns {
		if c != nil {
			c.release(r.ep)
		}
	}
	r.conns = nil
	for _, a := range r.pending {
		if a.owned {
			syscall.Close(a.fd)
		}
	}
	r.pending = nil
	syscall.Close(r.ep)
}

// syscall6 makes a system call, raw when Options.Raw says so.
func (r *Reader) syscall6(trap, a1, a2, a3, a4, a5, a6 uintptr) (int, syscall.Errno) {
	var n uintptr
	var errno syscall.Errno
	if r.o.Raw {
		n, _, errno = syscall.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	} else {
		n, _, errno = syscall.Syscall6(trap, a1, a2, a3, a4, a5, a6)
	}
	return int(n), errno
}

func (r *Reader) attachPending() {
	r.mu.Lock()
	pending := r.pending
	r.pending = nil
	r.adds.Store(false)
	r.mu.Unlock()
	for _, a := range pending {
		r.attach(a)
	}
}

// attach adds one socket to the epoll set and handles the bytes read past
// its handshake. Edge-triggered, the socket is reported once if it holds
// data already, and again only when more arrives: read drains it.
func (r *Reader) attach(a attach) {
	c := &Conn{fd: a.fd, h: a.h, owned: a.owned}
	if err := syscall.SetNonblock(a.fd, true); err != nil {
		r.fail(c, fmt.Errorf("%w: %w", ErrAttach, os.NewSyscallError("fcntl", err)))
		return
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(a.fd)}
	if err := syscall.EpollCtl(r.ep, syscall.EPOLL_CTL_ADD, a.fd, &ev); err != nil {
		r.fail(c, fmt.Errorf("%w: %w", ErrAttach, os.NewSyscallError("epoll_ctl", err)))
		return
	}
	if a.fd >= len(r.conns) {
		r.conns = append(r.conns, make([]*Conn, a.fd+1-len(r.conns))...)
	}
	r.conns[a.fd] = c
	if len(a.rest) > 0 {
		if ok, err := c.feed(a.rest); !ok {
			r.drop(c, err)
		}
	}
}

// read reads what c's socket holds until the socket is empty
// (edge-triggered: what is left would not be reported again).
func (r *Reader) read(c *Conn, events uint32, buf []byte) {
	// After a hang-up or an error, read until the end or the error shows:
	// no further event would come for it.
	hup := events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
	for !c.closed {
		k, errno := r.syscall6(syscall.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
		switch {
		case errno == syscall.EAGAIN:
			return
		case errno == syscall.EINTR:
			continue
		case errno != 0:
			r.drop(c, os.NewSyscallError("read", errno))
			return
		case k == 0:
			r.drop(c, io.EOF)
			return
		}
		if ok, err := c.feed(buf[:k]); !ok {
			r.drop(c, err)
			return
		}
		if k < len(buf) && !hup {
			return // drained: more data makes a new edge
		}
	}
}

// drop releases c's socket, forgets it, and tells its handler.
func (r *Reader) drop(c *Conn, err error) {
	r.conns[c.fd] = nil
	r.fail(c, err)
}

func (r *Reader) fail(c *Conn, err error) {
	c.release(r.ep)
	c.h.Closed(c, err)
}

// release takes c's socket out of the epoll set ep (closing it would not,
// while a duplicate of it is open) and closes it unless it was lent.
func (c *Conn) release(ep int) {
	_ = syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, c.fd, nil)
	if c.owned {
		syscall.Close(c.fd)
	}
	c.closed = true
}

// Pong answers a ping with payload: a masked control frame, as a client
// must send, written at once. A full socket buffer (EAGAIN) loses it; the
// server pings again. Call it from the connection's handler only.
func (c *Conn) Pong(payload []byte) error {
	if c.closed {
		return errors.New("wsload: pong on a closed connection")
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	frame := appendPong(make([]byte, 0, 6+min(len(payload), 125)), payload, mask)
	_, err := syscall.Write(c.fd, frame)
	return err
}
