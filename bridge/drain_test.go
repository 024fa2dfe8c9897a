package bridge

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/presence"
)

// TestStreamFramesSurviveAFullSocket has a client with a tiny receive
// buffer that reads nothing while changes pile up, then reads slowly,
// under frequent pings: the workers' non-blocking writes stop part way
// through frames and a drain goroutine finishes them. Then every frame
// must arrive whole, in order, with no ping in the middle of a frame.
//
// The client sends unsolicited pongs (RFC 6455, section 5.5.3) to keep
// the server's read deadline (two ping intervals) fresh: the pongs that
// answer the pings come only once the client has read what was queued
// ahead of each ping, up to a socket send buffer and a joined write of
// frames, which at this reading speed can take longer than the deadline;
// the server then hung up before the last frames were out.
func TestStreamFramesSurviveAFullSocket(t *testing.T) {
	tr := presence.New(presence.Options{})
	srv := httptest.NewServer(New(Config{Tracker: tr, StreamQueue: 100000, PingInterval: 300 * time.Millisecond}))
	defer srv.Close()
	dialer := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		})
	}}).DialContext}
	conn, _, err := dialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for t := time.NewTicker(100 * time.Millisecond); ; {
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
				_ = conn.WriteControl(websocket.PongMessage, nil, time.Now().Add(time.Second))
			}
		}
	}()
	var snap snapshotFrame
	if err := readInto(conn, &snap); err != nil {
		t.Fatal(err)
	}
	const n = 500
	status := strings.Repeat("s", 2000) // 1 MB in all, frames of several segments
	for i := range n {
		up(tr, "a@x", presence.ShowNone, status+string(rune('a'+i%26)))
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	last := snap.Seq
	for last < snap.Seq+n {
		data, err := nextFrame(conn)
		if err != nil {
			t.Fatalf("after seq %d: %v", last, err)
		}
		var f changeFrame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("after seq %d, a broken frame: %v", last, err)
		}
		if f.Seq != last+1 {
			t.Fatalf("seq %d after %d", f.Seq, last)
		}
		last = f.Seq
		time.Sleep(2 * time.Millisecond) // the socket stays full while pings queue
	}
}

// TestStreamAnswersPingAndClose: the client's ping gets a pong and its
// close a close frame, both through the connection's writer.
func TestStreamAnswersPingAndClose(t *testing.T) {
	tr := presence.New(presence.Options{})
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	conn, _ := subscribe(t, srv, "")
	pong := make(chan string, 1)
	conn.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := conn.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// The pong comes in turn with the changes; reading runs the handler.
	for i := 0; ; i++ {
		select {
		case data := <-pong:
			if data != "hi" {
				t.Fatalf("pong %q", data)
			}
		default:
			if i == 100 {
				t.Fatal("no pong")
			}
			up(tr, "a@x", presence.ShowNone, "change "+string(rune('a'+i%26)))
			var f changeFrame
			if err := readInto(conn, &f); err != nil {
				t.Fatal(err)
			}
			continue
		}
		break
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	conn.SetCloseHandler(func(code int, _ string) error { got <- code; return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	select {
	case code := <-got:
		if code != websocket.CloseNormalClosure {
			t.Fatalf("close echo %d", code)
		}
	default:
		t.Fatal("no close frame echoed")
	}
}
