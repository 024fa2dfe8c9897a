package main

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"github.com/presenced/presenced/internal/wsframe"
)

// rawSub is one subscriber's socket as the epoll reader sees it: the
// client's side of the WebSocket after the handshake and the snapshot.
type rawSub struct {
	fd     int
	frames int64           // change frames received
	lat    []time.Duration // sampled latencies
	parser wsframe.Parser  // an incomplete frame carried to the next read
	closed bool
}

// epollReader reads many subscribers' sockets from one goroutine: one
// epoll_wait for many readable sockets and one read each, no goroutine
// per connection to wake. The load client shares the cores with the
// server, so every microsecond it spends per frame is taken from the
// server's latency: the sockets are edge-triggered (a drained socket is
// not polled again), found by fd in a slice, and the system calls are raw
// (this goroutine keeps its thread and its P; Go's scheduler is not asked
// to hand the P over each time the thread waits).
type epollReader struct {
	ep   int
	subs []*rawSub // by fd
}

const epollET = 1 << 31 // syscall.EPOLLET, which is a negative int there

func newEpollReader(subs []*rawSub) (*epollReader, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	r := &epollReader{ep: ep}
	for _, s := range subs {
		if err := syscall.SetNonblock(s.fd, true); err != nil {
			return nil, err
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(s.fd)}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
			return nil, err
		}
		if s.fd >= len(r.subs) {
			r.subs = append(r.subs, make([]*rawSub, s.fd+1-len(r.subs))...)
		}
		r.subs[s.fd] = s
	}
	return r, nil
}

// run reads until stop is closed. With nap 0 it waits in epoll_wait, so
// the kernel wakes it for nearly every frame the server writes. With
// nap > 0 it polls, handles every socket that is ready, then sleeps nap:
// at most one wake-up per nap for any number of frames, and at most nap
// added to each latency it reports.
func (r *epollReader) run(stop <-chan struct{}, nap time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	events := make([]syscall.EpollEvent, 1024)
	buf := make([]byte, 256<<10)
	timeout := 10 // ms: a raw wait holds off the garbage collector's stop
	if nap > 0 {
		timeout = 0
	}
	ts := syscall.NsecToTimespec(int64(nap))
	for {
		select {
		case <-stop:
			return
		default:
		}
		r0, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(r.ep),
			uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(timeout), 0, 0)
		n := int(r0)
		if errno != 0 {
			if errno != syscall.EINTR {
				return
			}
			n = 0
		}
		for _, ev := range events[:n] {
			s := r.subs[ev.Fd]
			for !s.closed { // edge-triggered: read until the socket is empty
				k, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(s.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
				if errno == syscall.EAGAIN {
					break
				}
				if errno == syscall.EINTR {
					continue
				}
				if errno != 0 || k == 0 {
					s.closed = true
					syscall.EpollCtl(r.ep, syscall.EPOLL_CTL_DEL, s.fd, nil)
					break
				}
				s.consume(buf[:k])
				if int(k) < len(buf) && ev.Events&syscall.EPOLLRDHUP == 0 {
					break // drained: more data makes a new edge
				}
			}
		}
		if nap > 0 && n < len(events) {
			syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		}
	}
}

// consume parses server frames (wsframe) from data, carrying an incomplete
// one over.
func (s *rawSub) consume(data []byte) {
	if s.parser.Feed(data, func(_ bool, opcode byte, payload []byte) bool {
		if opcode == wsframe.Text {
			s.message(payload)
		}
		return true
	}) != nil {
		s.closed = true
	}
}

// message counts the change frames of one message and, in one message in
// 8 chosen at random, samples the latency of each of its frames: all of
// them, since the first frame of a batch waited longest and the last
// least, and at random, since a flush of several messages would otherwise
// always be sampled at the same one.
func (s *rawSub) message(data []byte) {
	k := bytes.Count(data, changeKey)
	s.frames += int64(k)
	if k == 0 || rand.IntN(8) != 0 {
		return
	}
	now := time.Now()
	for {
		i := bytes.Index(data, timeKey)
		if i < 0 {
			return
		}
		data = data[i+len(timeKey):]
		if j := bytes.IndexByte(data, '"'); j > 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(data[:j])); err == nil {
				s.lat = append(s.lat, now.Sub(t))
			}
		}
	}
}
