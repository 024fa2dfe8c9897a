//go:build linux

package wsload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/wsframe"
)

const fin = 0x80

// serverFrame is a frame as a server sends it (RFC 6455, section 5.2:
// unmasked): b0 is its first byte (FIN, RSV, opcode).
func serverFrame(b0 byte, payload []byte) []byte {
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, byte(n))
	case n <= 0xffff:
		out = append(out, 126, byte(n>>8), byte(n))
	default:
		out = append(out, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, payload...)
}

func text(s string) []byte { return serverFrame(fin|wsframe.Text, []byte(s)) }

// msg is one message a recorder got.
type msg struct {
	op      byte
	payload string
}

func (m msg) String() string { return fmt.Sprintf("%#x %q", m.op, m.payload) }

// recorder is a Handler that keeps what it gets, answers pings, and ends
// the connection on a close frame.
type recorder struct {
	mu     sync.Mutex
	msgs   []msg
	got    chan struct{} // a message arrived
	closed chan error    // Closed's error
}

func newRecorder() *recorder {
	return &recorder{got: make(chan struct{}, 1), closed: make(chan error, 1)}
}

func (h *recorder) Message(c *Conn, op byte, payload []byte) bool {
	h.mu.Lock()
	h.msgs = append(h.msgs, msg{op, string(payload)})
	h.mu.Unlock()
	select {
	case h.got <- struct{}{}:
	default: // a wake-up is already due
	}
	switch op {
	case wsframe.Ping:
		if err := c.Pong(payload); err != nil {
			panic(err)
		}
	case wsframe.Close:
		return false
	}
	return true
}

func (h *recorder) Closed(_ *Conn, err error) { h.closed <- err }

// wait waits for n messages in all and returns them.
func (h *recorder) wait(t *testing.T, n int) []msg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		k := len(h.msgs)
		out := append([]msg(nil), h.msgs...)
		h.mu.Unlock()
		if k >= n {
			return out
		}
		select {
		case <-h.got:
		case <-deadline:
			t.Fatalf("got %d messages of %d: %v", k, n, out)
		}
	}
}

func (h *recorder) waitClosed(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.closed:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Closed was not called")
		return nil
	}
}

// modes are the Reader's ways of waiting, each test run in all of them.
var modes = []struct {
	name string
	o    Options
}{{"wait", Options{}}, {"raw", Options{Raw: true}}, {"nap", Options{Nap: time.Millisecond}}, {"raw nap", Options{Raw: true, Nap: time.Millisecond}}}

func forModes(t *testing.T, f func(t *testing.T, o Options)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { f(t, m.o) })
	}
}

// start runs a Reader until the test ends.
func start(t *testing.T, o Options) *Reader {
	t.Helper()
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- r.Run() }()
	t.Cleanup(func() {
		r.Stop()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// pair returns the two ends of a stream socket: the reader's fd and the
// server's end.
func pair(t *testing.T) (int, *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "server")
	t.Cleanup(func() { peer.Close() })
	return fds[0], peer
}

func write(t *testing.T, w io.Writer, b []byte) {
	t.Helper()
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestMessages(t *testing.T) {
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	big := strings.Repeat("x", 70000)
	for _, tt := range []struct {
		name string
		in   []byte
		want []msg
	}{
		{"text", text("hello"), []msg{{wsframe.Text, "hello"}}},
		{"empty text", text(""), []msg{{wsframe.Text, ""}}},
		{"binary", serverFrame(fin|wsframe.Binary, []byte{0, 1}), []msg{{wsframe.Binary, "\x00\x01"}}},
		{"16-bit length", text(strings.Repeat("y", 300)), []msg{{wsframe.Text, strings.Repeat("y", 300)}}},
		{"64-bit length", text(big), []msg{{wsframe.Text, big}}},
		{"back to back", cat(text("a"), text("b"), text("c")), []msg{{wsframe.Text, "a"}, {wsframe.Text, "b"}, {wsframe.Text, "c"}}},
		{"fragments joined around a ping", cat(serverFrame(wsframe.Text, []byte("he")), serverFrame(fin|wsframe.Ping, []byte("p")),
			serverFrame(wsframe.Continuation, []byte("ll")), serverFrame(fin|wsframe.Continuation, []byte("o")), text("next")),
			[]msg{{wsframe.Ping, "p"}, {wsframe.Text, "hello"}, {wsframe.Text, "next"}}},
		{"binary fragments", cat(serverFrame(wsframe.Binary, []byte("a")), serverFrame(fin|wsframe.Continuation, []byte("b"))),
			[]msg{{wsframe.Binary, "ab"}}},
		{"a continuation alone is text", serverFrame(fin|wsframe.Continuation, []byte("c")), []msg{{wsframe.Text, "c"}}},
		{"a text frame inside a message is joined", cat(serverFrame(wsframe.Text, []byte("a")), serverFrame(fin|wsframe.Text, []byte("b"))),
			[]msg{{wsframe.Text, "ab"}}},
		{"pong", serverFrame(fin|wsframe.Pong, []byte("q")), []msg{{wsframe.Pong, "q"}}},
		{"reserved opcodes ignored", cat(serverFrame(fin|0x3, []byte("x")), serverFrame(fin|0xB, nil), text("after")),
			[]msg{{wsframe.Text, "after"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			forModes(t, func(t *testing.T, o Options) {
				r := start(t, o)
				// The same bytes in one write, in pieces of 3 bytes, and
				// byte by byte: a frame split across reads is carried over.
				for _, piece := range []int{len(tt.in), 3, 1} {
					if piece == 1 && len(tt.in) > 1000 {
						piece = 997
					}
					fd, peer := pair(t)
					h := newRecorder()
					r.Add(fd, nil, h)
					for b := tt.in; len(b) > 0; b = b[min(piece, len(b)):] {
						write(t, peer, b[:min(piece, len(b))])
					}
					got := h.wait(t, len(tt.want))
					if fmt.Sprint(got) != fmt.Sprint(tt.want) {
						t.Fatalf("pieces of %d: got %v, want %v", piece, got, tt.want)
					}
				}
			})
		})
	}
}

func TestPong(t *testing.T) {
	forModes(t, func(t *testing.T, o Options) {
		r := start(t, o)
		fd, peer := pair(t)
		h := newRecorder()
		r.Add(fd, nil, h)
		long := strings.Repeat("p", 125)
		write(t, peer, bytes.Join([][]byte{serverFrame(fin|wsframe.Ping, []byte("ping 1")), serverFrame(fin|wsframe.Ping, []byte(long))}, nil))
		// The pongs are client frames: masked, as wsframe.Reader, a
		// server's reader, insists.
		cr := wsframe.NewReader(peer, 1<<10)
		for _, want := range []string{"ping 1", long} {
			op, p, err := cr.Next()
			if err != nil || op != wsframe.Pong || string(p) != want {
				t.Fatalf("pong: %#x %q %v, want %q", op, p, err, want)
			}
		}
	})
}

func TestAppendPongCuts(t *testing.T) {
	f := appendPong(nil, bytes.Repeat([]byte("z"), 200), [4]byte{1, 2, 3, 4})
	op, p, err := wsframe.NewReader(bytes.NewReader(f), 1<<10).Next()
	if err != nil || op != wsframe.Pong || len(p) != 125 {
		t.Fatalf("got %#x, %d bytes, %v; want a pong of 125 bytes", op, len(p), err)
	}
}

func TestClosed(t *testing.T) {
	for _, tt := range []struct {
		name string
		do   func(t *testing.T, peer *os.File)
		want error // errors.Is; nil: nil
	}{
		{"close frame: the handler ends it", func(t *testing.T, peer *os.File) {
			write(t, peer, wsframe.AppendClose(text("last"), 1000, "bye"))
		}, nil},
		{"end of stream", func(t *testing.T, peer *os.File) {
			write(t, peer, text("last"))
			peer.Close()
		}, io.EOF},
		{"a masked frame is not a server frame", func(t *testing.T, peer *os.File) {
			write(t, peer, text("last"))
			write(t, peer, []byte{fin | wsframe.Text, 0x81, 1, 2, 3, 4, 'x'})
		}, wsframe.ErrBadFrame},
	} {
		t.Run(tt.name, func(t *testing.T) {
			forModes(t, func(t *testing.T, o Options) {
				r := start(t, o)
				fd, peer := pair(t)
				h := newRecorder()
				r.Add(fd, nil, h)
				tt.do(t, peer)
				if err := h.waitClosed(t); (tt.want == nil && err != nil) || !errors.Is(err, tt.want) {
					t.Fatalf("Closed(%v), want %v", err, tt.want)
				}
				if got := h.wait(t, 1); got[0] != (msg{wsframe.Text, "last"}) {
					t.Fatalf("messages %v", got)
				}
				// The reader closed its end: the server's end reads EOF.
				if tt.want != io.EOF {
					peer.SetReadDeadline(time.Now().Add(5 * time.Second))
					if n, err := peer.Read(make([]byte, 1)); err != io.EOF {
						t.Fatalf("server end: read %d, %v; want EOF", n, err)
					}
				}
			})
		})
	}
}

func TestAttachError(t *testing.T) {
	r := start(t, Options{})
	h := newRecorder()
	f, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	r.Add(fd, nil, h) // a regular file: epoll refuses it
	if err := h.waitClosed(t); !errors.Is(err, ErrAttach) {
		t.Fatalf("Closed(%v), want ErrAttach", err)
	}
}

// The bytes read past the handshake come first, and a frame they cut is
// finished by what the socket brings next.
func TestRest(t *testing.T) {
	forModes(t, func(t *testing.T, o Options) {
		r := start(t, o)
		fd, peer := pair(t)
		h := newRecorder()
		second := text("second")
		r.Add(fd, append(text("first"), second[:4]...), h)
		write(t, peer, second[4:])
		if got := h.wait(t, 2); fmt.Sprint(got) != fmt.Sprint([]msg{{wsframe.Text, "first"}, {wsframe.Text, "second"}}) {
			t.Fatalf("got %v", got)
		}
	})
}

// A message several times the read buffer: edge-triggered, the reader
// must read on until the socket is empty.
func TestBigMessage(t *testing.T) {
	forModes(t, func(t *testing.T, o Options) {
		r := start(t, o)
		fd, peer := pair(t)
		h := newRecorder()
		r.Add(fd, nil, h)
		big := bytes.Repeat([]byte("0123456789abcdef"), 5*readSize/16+7)
		go peer.Write(bytes.Join([][]byte{serverFrame(fin|wsframe.Text, big), text("after")}, nil))
		got := h.wait(t, 2)
		if got[0].payload != string(big) || got[1].payload != "after" {
			t.Fatalf("got messages of %d and %d bytes", len(got[0].payload), len(got[1].payload))
		}
	})
}

// Many connections written at once, from other goroutines, over several
// reads each: every message arrives once, in order, to its connection.
func TestManyConnections(t *testing.T) {
	forModes(t, func(t *testing.T, o Options) {
		const conns, each = 200, 40
		r := start(t, o)
		hs := make([]*recorder, conns)
		peers := make([]*os.File, conns)
		for i := range hs {
			fd, peer := pair(t)
			hs[i], peers[i] = newRecorder(), peer
			r.Add(fd, nil, hs[i])
		}
		var wg sync.WaitGroup
		for i, peer := range peers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range each {
					peer.Write(text(fmt.Sprintf(`{"conn":%d,"n":%d}`, i, k)))
				}
			}()
		}
		wg.Wait()
		for i, h := range hs {
			got := h.wait(t, each)
			for k, m := range got {
				if want := fmt.Sprintf(`{"conn":%d,"n":%d}`, i, k); m.payload != want {
					t.Fatalf("connection %d, message %d: %q, want %q", i, k, m.payload, want)
				}
			}
		}
	})
}

// dupFD returns a duplicate of a net.Conn's descriptor, which the Reader
// can own while the Conn is closed.
func dupFD(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = syscall.Dup(int(s)) }); err != nil || derr != nil {
		t.Fatal(err, derr)
	}
	return fd
}

// Over loopback TCP, as the tools use it, with a hang-up at the end.
func TestLoopbackTCP(t *testing.T) {
	forModes(t, func(t *testing.T, o Options) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer server.Close()
		fd := dupFD(t, client)
		client.Close()
		r := start(t, o)
		h := newRecorder()
		r.Add(fd, nil, h)
		var all []byte
		var want []msg
		for k := range 1000 {
			p := fmt.Sprintf(`{"type":"change","seq":%d}`, k)
			all = append(all, text(p)...)
			want = append(want, msg{wsframe.Text, p})
		}
		write(t, server, all)
		if got := h.wait(t, len(want)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %d messages, not the ones sent", len(got))
		}
		server.Close()
		if err := h.waitClosed(t); err != io.EOF {
			t.Fatalf("Closed(%v), want EOF", err)
		}
	})
}

func TestStop(t *testing.T) {
	t.Run("without Run", func(t *testing.T) {
		r, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		fd, peer := pair(t)
		r.Add(fd, nil, newRecorder())
		r.Stop()
		r.Stop()
		if err := r.Run(); err != nil {
			t.Fatalf("Run after Stop: %v, want nil at once", err)
		}
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("a socket added before Stop: read %v, want EOF (closed)", err)
		}
	})
	t.Run("while running", func(t *testing.T) {
		r, err := New(Options{Raw: true})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- r.Run() }()
		fd, peer := pair(t)
		h := newRecorder()
		r.Add(fd, nil, h)
		write(t, peer, text("x"))
		h.wait(t, 1)
		if err := r.Run(); err == nil {
			t.Fatal("Run twice: no error")
		}
		r.Stop()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-h.closed:
			t.Fatalf("Closed(%v) called by Stop", err)
		default:
		}
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("after Stop: read %v, want EOF (closed)", err)
		}
		fd2, peer2 := pair(t)
		r.Add(fd2, nil, h) // after Stop: closed at once
		peer2.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := peer2.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("added after Stop: read %v, want EOF (closed)", err)
		}
	})
}

// counter counts messages, as a load tool's handler does, and takes the
// CPU time of the reader's thread at the first and the last one.
type counter struct {
	n          atomic.Int64
	last       int64
	start, end int64 // ns of CPU of the reader's thread
}

func threadCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func (h *counter) Message(_ *Conn, op byte, payload []byte) bool {
	switch h.n.Add(1) {
	case 1:
		h.start = threadCPU()
	case h.last:
		h.end = threadCPU()
	}
	return true
}
func (h *counter) Closed(*Conn, error) {}

// BenchmarkReader is the reader's cost per message: 1,000 connections, a
// 200-byte change message written to each in turn (as presenced's writers
// do), from another goroutine. reader-ns/msg is the CPU time of the
// reader's thread alone.
func BenchmarkReader(b *testing.B) {
	for _, m := range modes[:2] {
		b.Run(m.name, func(b *testing.B) {
			const conns = 1000
			r, err := New(m.o)
			if err != nil {
				b.Fatal(err)
			}
			h := &counter{last: int64(b.N)}
			peers := make([]int, conns)
			for i := range peers {
				fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
				if err != nil {
					b.Fatal(err)
				}
				r.Add(fds[0], nil, h)
				peers[i] = fds[1]
			}
			done := make(chan error, 1)
			go func() { done <- r.Run() }()
			frame := text(`{"type":"change","seq":123456,"event":"changed","time":"2026-11-27T07:10:22.123456789Z","jid":"user1@example.org",` +
				`"resource":{"resource":"pc","show":"available","status":"pl/1/123","priority":0}}`)
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			for i := range b.N {
				for {
					_, err := syscall.Write(peers[i%conns], frame)
					if err == nil {
						break
					}
					if err != syscall.EAGAIN && err != syscall.EINTR {
						b.Fatal(err)
					}
				}
				for int64(i)-h.n.Load() > 10*conns { // bounded backlog
					time.Sleep(10 * time.Microsecond)
				}
			}
			for h.n.Load() < int64(b.N) {
				time.Sleep(10 * time.Microsecond)
			}
			b.StopTimer()
			r.Stop()
			<-done
			for _, fd := range peers {
				syscall.Close(fd)
			}
			if b.N > 1 {
				b.ReportMetric(float64(h.end-h.start)/float64(b.N-1), "reader-ns/msg")
			}
		})
	}
}

// A lent socket is read like another, but stays open: when its
// connection ends and at Stop.
func TestLend(t *testing.T) {
	open := func(fd int) bool {
		_, err := unixFcntl(fd)
		return err == nil
	}
	forModes(t, func(t *testing.T, o Options) {
		r, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- r.Run() }()

		// Ended by the handler (a close frame): Closed, the socket open.
		fd1, peer1 := pair(t)
		defer syscall.Close(fd1)
		h1 := newRecorder()
		r.Lend(fd1, text("rest"), h1)
		write(t, peer1, wsframe.AppendClose(nil, 1000, ""))
		if err := h1.waitClosed(t); err != nil {
			t.Fatalf("Closed(%v)", err)
		}
		if got := h1.wait(t, 2); got[0] != (msg{wsframe.Text, "rest"}) {
			t.Fatalf("messages %v", got)
		}
		if !open(fd1) {
			t.Fatal("a lent socket was closed when its connection ended")
		}
		// No longer read: what comes stays in the socket.
		write(t, peer1, text("unread"))
		time.Sleep(30 * time.Millisecond)
		if n := len(h1.wait(t, 2)); n != 2 {
			t.Fatalf("%d messages from a connection that ended", n)
		}

		// Open at Stop: still open after it.
		fd2, peer2 := pair(t)
		defer syscall.Close(fd2)
		h2 := newRecorder()
		r.Lend(fd2, nil, h2)
		write(t, peer2, text("x"))
		h2.wait(t, 1)
		r.Stop()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !open(fd2) {
			t.Fatal("a lent socket was closed by Stop")
		}
		fd3, _ := pair(t)
		defer syscall.Close(fd3)
		r.Lend(fd3, nil, h2) // after Stop: left alone
		if !open(fd3) {
			t.Fatal("a socket lent after Stop was closed")
		}
	})
}

// unixFcntl is fcntl(fd, F_GETFD): an error when fd is not open.
func unixFcntl(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
