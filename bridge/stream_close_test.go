package bridge

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/wsframe"
	"github.com/presenced/presenced/presence"
)

// maskedFrame is a frame as a client sends it: b0 is its first byte (FIN,
// RSV, opcode); the payload is masked unless unmasked.
func maskedFrame(b0 byte, payload []byte, unmasked bool) []byte {
	bit := byte(0x80)
	if unmasked {
		bit = 0
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, bit|byte(n))
	case n <= 0xffff:
		out = append(out, bit|126, byte(n>>8), byte(n))
	default:
		out = append(out, bit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if unmasked {
		return append(out, payload...)
	}
	key := [4]byte{1, 2, 3, 4}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

// strictReader reads a server's frames off a raw socket and fails the
// test on anything that is not a well-formed frame: reserved bits, masks,
// unknown opcodes, text that is not JSON, continuation out of place.
type strictReader struct {
	t    *testing.T
	conn net.Conn
	p    wsframe.Parser
	msg  []byte // a fragmented text message (the server sends one frame a message; a client must take fragments all the same)
	frag bool
	buf  []byte
	// got is what was read and not yet returned by next.
	got []readMsg
	bad string
	// pause, if set, is slept after every read, for a client slower than
	// the stream.
	pause atomic.Int64
}

type readMsg struct {
	payload []byte
	close   bool
}

func (r *strictReader) frame(fin bool, op byte, p []byte) bool {
	switch {
	case op == wsframe.Text && !r.frag, op == wsframe.Continuation && r.frag:
		r.msg = append(r.msg, p...)
		r.frag = !fin
		if fin {
			if !json.Valid(r.msg) {
				r.bad = fmt.Sprintf("text message is not JSON: %.80q", r.msg)
			}
			r.got = append(r.got, readMsg{payload: r.msg})
			r.msg = nil
		}
	case op == wsframe.Close:
		r.got = append(r.got, readMsg{payload: bytes.Clone(p), close: true})
	case op == wsframe.Ping:
	default:
		r.bad = fmt.Sprintf("frame of opcode %#x (fragmented message: %v)", op, r.frag)
	}
	return true
}

// next returns the next message: a text message's JSON, or a close
// frame's payload (close true); err is the socket's.
func (r *strictReader) next() (payload []byte, close bool, err error) {
	for len(r.got) == 0 {
		n, err := r.conn.Read(r.buf)
		if err != nil {
			return nil, false, err
		}
		if err := r.p.Feed(r.buf[:n], r.frame); err != nil {
			r.t.Errorf("not a server frame: %v", err)
			return nil, false, err
		}
		if r.bad != "" {
			r.t.Error(r.bad)
			return nil, false, errors.New(r.bad)
		}
		if d := r.pause.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
	}
	m := r.got[0]
	r.got = r.got[1:]
	return m.payload, m.close, nil
}

// streamSeqs returns the seqs a stream message carries, and whether it is a
// snapshot.
func streamSeqs(t *testing.T, msg []byte) (out []uint64, snapshot bool) {
	var m struct {
		Type   string            `json:"type"`
		Seq    uint64            `json:"seq"`
		Frames []json.RawMessage `json:"frames"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Error(err) // not Fatal: called from the other client's goroutine
		return nil, false
	}
	switch m.Type {
	case "snapshot":
		return []uint64{m.Seq}, true
	case "change":
		return []uint64{m.Seq}, false
	case "changes":
		for _, f := range m.Frames {
			s, _ := streamSeqs(t, f)
			out = append(out, s...)
		}
		return out, false
	}
	t.Errorf("unexpected message %.100s", msg)
	return nil, false
}

// TestStreamBadClientFrameUnderLoad: a client that breaks the protocol
// while a heavy stream is being written to it gets only well-formed frames,
// then a close frame with the code for what it did, then the end of the
// stream (no reset that would drop the close frame); a client connected
// at the same time gets every change. The bridge alone writes the socket:
// gorilla/websocket, which writes close frames by itself from its read
// path, could put them inside a frame being written.
func TestStreamBadClientFrameUnderLoad(t *testing.T) {
	pad := strings.Repeat("p", 1000) // some payload behind a bad header, unread when the server gives up
	for _, tt := range []struct {
		name  string
		frame []byte
		code  int
	}{
		{"too big", maskedFrame(0x80|wsframe.Text, bytes.Repeat([]byte("x"), 64<<10), false), 1009},
		{"unmasked", maskedFrame(0x80|wsframe.Text, []byte(pad), true), 1002},
		{"reserved opcode", maskedFrame(0x80|0x3, []byte(pad), false), 1002},
		{"fragmented ping", append(maskedFrame(wsframe.Ping, []byte("p"), false), pad...), 1002},
		{"reserved bit", maskedFrame(0x80|0x40|wsframe.Text, []byte(`{"type":"subscribe"}`), false), 1002},
		{"invalid UTF-8", maskedFrame(0x80|wsframe.Text, []byte("{\"type\":\"\xff\"}"), false), 1007},
		{"binary", maskedFrame(0x80|wsframe.Binary, []byte(`{"type":"subscribe"}`), false), 1003},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := presence.New(presence.Options{})
			srv := httptest.NewServer(New(Config{Tracker: tr, Logger: quietLog, StreamQueue: 1 << 20}))
			defer srv.Close()
			addr := strings.TrimPrefix(srv.URL, "http://")
			var readers []*strictReader
			for range 2 {
				conn, rest, err := rawDial(addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
				r := &strictReader{t: t, conn: conn, buf: make([]byte, 16<<10)}
				if err := r.p.Feed(rest, r.frame); err != nil {
					t.Fatal(err)
				}
				readers = append(readers, r)
			}
			victim, other := readers[0], readers[1]

			// The other client checks that it gets every change, in order,
			// up to the last one (status "end").
			otherDone := make(chan error, 1)
			go func() {
				var last uint64
				for {
					msg, closed, err := other.next()
					switch {
					case err != nil:
						otherDone <- err
						return
					case closed:
						otherDone <- fmt.Errorf("closed: %q", msg)
						return
					}
					ss, snap := streamSeqs(t, msg)
					for _, s := range ss {
						if !snap && last != 0 && s != last+1 {
							otherDone <- fmt.Errorf("seq %d after %d", s, last)
							return
						}
						last = s
					}
					if bytes.Contains(msg, []byte(`"status":"end"`)) {
						otherDone <- nil
						return
					}
				}
			}()

			// A heavy stream: a few MB/s more than the victim reads, so
			// that the server has frames in flight when it stops reading.
			stop := make(chan struct{})
			var load sync.WaitGroup
			load.Go(func() {
				status := strings.Repeat("s", 900)
				for i := 0; ; i++ {
					select {
					case <-stop:
						tr.Apply(presence.Update{User: "u0@x", Resource: "r", Available: true, Status: "end"})
						return
					default:
					}
					tr.Apply(presence.Update{User: fmt.Sprintf("u%d@x", i%50), Resource: "r", Available: true, Status: fmt.Sprint(status, i)})
					if i%20 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			})
			victim.pause.Store(int64(2 * time.Millisecond))
			deadline := time.Now().Add(100 * time.Millisecond)
			for time.Now().Before(deadline) {
				if _, closed, err := victim.next(); err != nil || closed {
					t.Fatalf("before the bad frame: closed %v, %v", closed, err)
				}
			}
			if _, err := victim.conn.Write(tt.frame); err != nil {
				t.Fatal(err)
			}
			victim.pause.Store(0)
			for {
				msg, closed, err := victim.next()
				if err != nil {
					t.Fatalf("no close frame: %v", err)
				}
				if !closed {
					continue
				}
				if code, _, err := wsframe.ParseClose(msg); err != nil || code != tt.code {
					t.Fatalf("close %d (%v), want %d", code, err, tt.code)
				}
				break
			}
			// The close handshake: the client answers and the server ends
			// the stream (FIN, not a reset).
			_, _ = victim.conn.Write(maskedFrame(0x80|wsframe.Close, []byte{0x03, 0xe8}, false))
			if msg, closed, err := victim.next(); err != io.EOF {
				t.Fatalf("after the close frame: %q %v %v, want the end of the stream", msg, closed, err)
			}
			close(stop)
			load.Wait()
			if err := <-otherDone; err != nil {
				t.Fatalf("the other client: %v", err)
			}
		})
	}
}
