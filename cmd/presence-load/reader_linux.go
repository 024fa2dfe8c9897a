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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/presenced/presenced/internal/wsload"
)

// reader is one epoll loop (internal/wsload) reading its share of the
// subscribers' sockets: one epoll_wait for many readable sockets and one
// read each, no goroutine per connection to wake. The sockets are plain
// non-blocking file descriptors that Go's own poller never sees
// (dialStream makes them with system calls), so the runtime gets no
// wake-ups for them either. Its system calls are Go's, not raw ones: the
// XMPP users run in this process too, and get the P while the loop waits.
type reader struct {
	s  *streams
	ws *wsload.Reader
}

func newReader(s *streams) (*reader, error) {
	ws, err := wsload.New(wsload.Options{})
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return &reader{s: s, ws: ws}, nil
}

// add hands a connected socket to the reader, which owns it from then on.
func (r *reader) add(sub *wsSub, fd int, rest []byte) { r.ws.Add(fd, rest, sub) }

// stop ends run and closes every socket.
func (r *reader) stop() { r.ws.Stop() }

func (r *reader) run() {
	if err := r.ws.Run(); err != nil {
		logf("%v: the stream reader stops", err)
	}
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
