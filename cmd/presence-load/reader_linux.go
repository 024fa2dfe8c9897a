//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/presenced/presenced/internal/wsframe"
)

// reader reads many subscribers' sockets from one goroutine with epoll:
// one epoll_wait for many readable sockets and one read each, no goroutine
// per connection to wake. The sockets are plain non-blocking file
// descriptors that Go's own poller never sees (dialStream makes them with
// system calls), so the runtime gets no wake-ups for them either.
type reader struct {
	s    *streams
	ep   int
	subs []*wsSub
	adds chan attach
	quit chan struct{}
	done chan struct{}
}

type attach struct {
	sub  *wsSub
	fd   int
	rest []byte // bytes read past the HTTP response: the first frames
}

func newReader(s *streams) (*reader, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return &reader{s: s, ep: ep, adds: make(chan attach, 4096), quit: make(chan struct{}), done: make(chan struct{})}, nil
}

// add hands a connected socket to the reader.
func (r *reader) add(sub *wsSub, fd int, rest []byte) {
	select {
	case <-r.quit:
		syscall.Close(fd)
		return
	default:
	}
	select {
	case r.adds <- attach{sub, fd, rest}:
	case <-r.quit:
		syscall.Close(fd)
	}
}

func (r *reader) stop() {
	select {
	case <-r.quit:
	default:
		close(r.quit)
	}
	<-r.done
}

func (r *reader) run() {
	defer close(r.done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 256<<10)
	for {
		select {
		case <-r.quit:
			r.closeAll()
			return
		default:
		}
	attach:
		for {
			select {
			case a := <-r.adds:
				r.attach(a)
			default:
				break attach
			}
		}
		n, err := syscall.EpollWait(r.ep, events, 20)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			logf("epoll_wait: %v: the stream reader stops", err)
			r.closeAll()
			<-r.quit
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Pad) >= len(r.subs) {
				continue
			}
			sub := r.subs[ev.Pad]
			if sub.fd != int(ev.Fd) {
				continue // an event of a socket closed earlier in this batch
			}
			r.read(sub, buf)
		}
	}
}

func (r *reader) attach(a attach) {
	sub := a.sub
	sub.fd, sub.attached = a.fd, time.Now()
	sub.parser, sub.frag, sub.fragging = wsframe.Parser{}, sub.frag[:0], false
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(a.fd), Pad: int32(sub.id)}
	if err := syscall.EpollCtl(r.ep, syscall.EPOLL_CTL_ADD, a.fd, &ev); err != nil {
		logf("subscriber %d: epoll_ctl: %v", sub.num, err)
		syscall.Close(a.fd)
		sub.fd = -1
		r.s.dropped(sub)
		return
	}
	if len(a.rest) > 0 && !sub.consume(a.rest) {
		r.drop(sub)
	}
}

// read reads what sub's socket holds (level-triggered: what is left makes
// the next epoll_wait report it again).
func (r *reader) read(sub *wsSub, buf []byte) {
	for {
		k, err := syscall.Read(sub.fd, buf)
		switch {
		case k > 0:
			if !sub.consume(buf[:k]) {
				r.drop(sub)
				return
			}
			if k < len(buf) {
				return
			}
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.EAGAIN):
			return
		default: // end of stream or an error
			r.drop(sub)
			return
		}
	}
}

func (r *reader) drop(sub *wsSub) {
	_ = syscall.EpollCtl(r.ep, syscall.EPOLL_CTL_DEL, sub.fd, nil)
	syscall.Close(sub.fd)
	sub.fd = -1
	r.s.dropped(sub)
}

func (r *reader) closeAll() {
	for _, sub := range r.subs {
		if sub.fd >= 0 {
			syscall.Close(sub.fd)
			sub.fd = -1
		}
	}
	for {
		select {
		case a := <-r.adds:
			syscall.Close(a.fd)
		default:
			syscall.Close(r.ep)
			return
		}
	}
}

// pong answers a ping: a masked control frame, as a client must send.
// A full socket buffer (EAGAIN) loses it; the server pings again.
func (r *reader) pong(sub *wsSub, payload []byte) {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	frame := make([]byte, 0, 6+len(payload))
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	frame = append(frame, 0x8a, 0x80|byte(len(payload)))
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	_, _ = syscall.Write(sub.fd, frame)
}

// dialStream opens a WebSocket to u (resuming after seq if not 0) with
// blocking system calls bounded by timeout, and returns the socket, made
// non-blocking, with whatever was read past the HTTP response.
func dialStream(ctx context.Context, u *url.URL, token string, seq uint64, timeout time.Duration) (int, []byte, error) {
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, "80"
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return -1, nil, fmt.Errorf("bad port in %q", u.Host)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	ips, err := net.DefaultResolver.LookupIPAddr(rctx, host)
	cancel()
	if err != nil || len(ips) == 0 {
		return -1, nil, fmt.Errorf("resolve %s: %v", host, err)
	}
	var (
		sa     syscall.Sockaddr
		family = syscall.AF_INET
	)
	if ip4 := ips[0].IP.To4(); ip4 != nil {
		a := &syscall.SockaddrInet4{Port: p}
		copy(a.Addr[:], ip4)
		sa = a
	} else {
		a := &syscall.SockaddrInet6{Port: p}
		copy(a.Addr[:], ips[0].IP.To16())
		sa, family = a, syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			syscall.Close(fd)
		}
	}()
	tv := syscall.NsecToTimeval(int64(timeout))
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if err := connectRetry(fd, sa); err != nil {
		return -1, nil, fmt.Errorf("connect %s: %w", u.Host, err)
	}

	var kb [16]byte
	_, _ = rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	var req strings.Builder
	req.WriteString("GET " + streamQuery(u, seq) + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key +
		"\r\nUser-Agent: presence-load\r\n")
	if token != "" {
		req.WriteString("Authorization: Bearer " + token + "\r\n")
	}
	req.WriteString("\r\n")
	if err := writeAll(fd, []byte(req.String())); err != nil {
		return -1, nil, fmt.Errorf("send upgrade: %w", err)
	}
	br := bufio.NewReaderSize(fdReader(fd), 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return -1, nil, fmt.Errorf("read upgrade answer: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		var body []byte
		if resp.ContentLength > 0 && resp.ContentLength < 4096 {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, resp.ContentLength))
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			secs, _ := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64)
			return -1, nil, rateLimited{after: time.Duration(secs * float64(time.Second))}
		}
		return -1, nil, fmt.Errorf("upgrade refused: %s %s", resp.Status, strings.TrimSpace(string(body)))
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return -1, nil, errors.New("upgrade answer has a wrong Sec-WebSocket-Accept")
	}
	rest, _ := br.Peek(br.Buffered())
	rest = append([]byte(nil), rest...)
	if err := syscall.SetNonblock(fd, true); err != nil {
		return -1, nil, err
	}
	ok = true
	return fd, rest, nil
}

// connectRetry connects a blocking socket. A signal (the Go runtime's
// preemption) may interrupt connect(2) while the handshake goes on in the
// kernel: then wait for it to finish.
func connectRetry(fd int, sa syscall.Sockaddr) error {
	for i := 0; ; i++ {
		err := syscall.Connect(fd, sa)
		switch {
		case err == nil, errors.Is(err, syscall.EISCONN):
			return nil
		case errors.Is(err, syscall.EINTR), errors.Is(err, syscall.EALREADY):
			if i >= 30000 {
				return errors.New("timed out")
			}
			time.Sleep(time.Millisecond)
		default:
			return err
		}
	}
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// fdReader reads a blocking socket (SO_RCVTIMEO bounds each read).
type fdReader int

func (f fdReader) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(f), p)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return 0, errors.New("timed out")
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// raiseFileLimit lifts the open-files limit to its hard maximum: thousands
// of XMPP and WebSocket connections do not fit the usual 1,024.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
