package main

import (
	"bytes"
	"errors"
	"runtime"
	"syscall"
	"time"

	"github.com/presenced/presenced/internal/wsframe"
)

// rawSub is one subscriber's socket as the epoll reader sees it: the
// client's side of the WebSocket after the handshake and the snapshot.
type rawSub struct {
	fd     int
	frames int64           // change frames received
	msgs   int             // messages received, for sampling
	lat    []time.Duration // sampled latencies
	parser wsframe.Parser  // an incomplete frame carried to the next read
	closed bool
}

// epollReader reads many subscribers' sockets from one goroutine: one
// epoll_wait for many readable sockets and one read each, no goroutine
// per connection to wake. The load client shares the cores with the
// server, so every microsecond it spends per frame is taken from the
// server's latency.
type epollReader struct {
	ep   int
	subs map[int32]*rawSub
}

func newEpollReader(subs []*rawSub) (*epollReader, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	r := &epollReader{ep: ep, subs: make(map[int32]*rawSub, len(subs))}
	for _, s := range subs {
		if err := syscall.SetNonblock(s.fd, true); err != nil {
			return nil, err
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(s.fd)}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
			return nil, err
		}
		r.subs[int32(s.fd)] = s
	}
	return r, nil
}

// run reads until stop is closed.
func (r *epollReader) run(stop <-chan struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	events := make([]syscall.EpollEvent, 512)
	buf := make([]byte, 256<<10)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, err := syscall.EpollWait(r.ep, events, 100)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return
		}
		for _, ev := range events[:max(n, 0)] {
			s := r.subs[ev.Fd]
			for !s.closed {
				k, err := syscall.Read(s.fd, buf)
				if k <= 0 {
					if err != syscall.EAGAIN && err != syscall.EINTR {
						s.closed = true
						syscall.EpollCtl(r.ep, syscall.EPOLL_CTL_DEL, s.fd, nil)
					}
					break
				}
				s.consume(buf[:k])
				if k < len(buf) {
					break
				}
			}
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

// message counts the change frames of one message and samples the latency
// of one message in 8: the first frame's time.
func (s *rawSub) message(data []byte) {
	k := bytes.Count(data, changeKey)
	s.frames += int64(k)
	if s.msgs++; k == 0 || s.msgs%8 != 0 {
		return
	}
	now := time.Now()
	if i := bytes.Index(data, timeKey); i >= 0 {
		rest := data[i+len(timeKey):]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
				s.lat = append(s.lat, now.Sub(t))
			}
		}
	}
}
