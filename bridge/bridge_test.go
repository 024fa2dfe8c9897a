package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/presence"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// fixedClock is a clock the test moves by hand; the server's goroutines
// read it (a View takes the time), so it is locked.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture returns a tracker with two users (one online with two resources,
// one offline) at fixed times, for stable golden files.
func fixture() (*presence.Tracker, *fixedClock) {
	clk := &fixedClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	tr := presence.New(presence.Options{Clock: clk})
	tr.Apply(presence.Update{User: "alice@example.org", Resource: "pc", Available: true, Priority: 5, Status: "at my desk"})
	clk.add(time.Minute)
	tr.Apply(presence.Update{User: "alice@example.org", Resource: "phone", Available: true, Show: presence.ShowAway, Priority: 1,
		Status: "out", Statuses: []presence.LangStatus{{Lang: "de", Text: "unterwegs"}}, Idle: clk.Now().Add(-time.Hour)})
	tr.Apply(presence.Update{User: "bob@example.org", Resource: "laptop", Available: true, Show: presence.ShowDND, Status: "focus"})
	clk.add(time.Minute)
	tr.Apply(presence.Update{User: "bob@example.org", Resource: "laptop"})
	return tr, clk
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %v: %s", name, err, got)
	}
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from golden file:\n got %s\nwant %s", name, buf.Bytes(), want)
	}
}

func TestREST(t *testing.T) {
	tr, _ := fixture()
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	tests := []struct {
		method, path string
		code         int
		golden       string // compare the body with testdata/<golden>
		errCode      string // or expect this error code
	}{
		{"GET", "/v1/presence", 200, "list.json", ""},
		{"GET", "/v1/presence/alice@example.org", 200, "user.json", ""},
		{"GET", "/v1/presence/Alice@Example.org/phone", 404, "", "not_found"}, // a full JID is not a path segment
		{"GET", "/v1/presence/Alice@Example.ORG", 200, "user.json", ""},
		{"GET", "/v1/presence/carol@example.org", 404, "", "unknown_user"},
		{"GET", "/v1/presence/example.org", 400, "", "bad_jid"},
		{"GET", "/v1/presence/a@b@c", 400, "", "bad_jid"},
		{"POST", "/v1/presence", 405, "", "method_not_allowed"},
		{"DELETE", "/v1/presence/alice@example.org", 405, "", "method_not_allowed"},
		{"GET", "/v1/nothing", 404, "", "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.code, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.code == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
			if tt.golden != "" {
				golden(t, tt.golden, body)
				return
			}
			var e errorJSON
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tt.errCode || e.Error.Message == "" {
				t.Fatalf("error body %s, want code %q", body, tt.errCode)
			}
		})
	}
}

func dial(t *testing.T, srv *httptest.Server) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/stream"
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	return conn
}

func readFrame(t *testing.T, conn *websocket.Conn) (map[string]any, []byte) {
	t.Helper()
	data, err := nextFrame(conn)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("frame is not JSON: %s", data)
	}
	return m, data
}

func TestDashboardIsMounted(t *testing.T) {
	srv := httptest.NewServer(New(Config{Tracker: presence.New(presence.Options{})}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestStreamSnapshotThenChanges(t *testing.T) {
	tr, clk := fixture()
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	conn := dial(t, srv)
	defer conn.Close()

	snap, data := readFrame(t, conn)
	if snap["type"] != "snapshot" || snap["seq"].(float64) != 4 {
		t.Fatalf("first frame %s", data)
	}
	golden(t, "snapshot.json", data)

	clk.add(time.Minute)
	tr.Apply(presence.Update{User: "bob@example.org", Resource: "laptop", Available: true, Show: presence.ShowChat})
	tr.Apply(presence.Update{User: "alice@example.org", Resource: "pc", Available: true, Priority: 5, Status: "lunch"})
	tr.Apply(presence.Update{User: "alice@example.org", Resource: "pc"})

	wantSeq := []float64{5, 6, 7}
	for i, want := range wantSeq {
		f, data := readFrame(t, conn)
		if f["type"] != "change" || f["seq"].(float64) != want {
			t.Fatalf("frame %d: %s, want change seq %v", i, data, want)
		}
		if i == 2 {
			golden(t, "change_offline.json", data)
		}
	}
}

func TestStreamLagSendsSnapshot(t *testing.T) {
	tr := presence.New(presence.Options{FeedSize: 2})
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	conn := dial(t, srv)
	defer conn.Close()
	if f, data := readFrame(t, conn); f["type"] != "snapshot" {
		t.Fatalf("first frame %s", data)
	}
	// Many events at once may overrun a 2-event ring before the writer reads;
	// the client must then see a snapshot that includes the last state.
	for i := range 50 {
		tr.Apply(presence.Update{User: "a@x", Resource: "r", Available: true, Priority: i})
	}
	for {
		f, data := readFrame(t, conn)
		if f["seq"].(float64) == 50 {
			return // reached the head either way: in order, or through a snapshot
		}
		if f["type"] != "change" && f["type"] != "snapshot" {
			t.Fatalf("unexpected frame %s", data)
		}
	}
}

func TestServeShutdownClosesStreams(t *testing.T) {
	tr := presence.New(presence.Options{})
	b := New(Config{Tracker: tr})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.Serve(ctx, ln) }()

	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := conn.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, _, err = conn.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("after shutdown the client read %v, want a going-away close", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

func TestStreamRejectsOversizedClientFrame(t *testing.T) {
	tr := presence.New(presence.Options{})
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	conn := dial(t, srv)
	defer conn.Close()
	readFrame(t, conn)
	if err := conn.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), maxClientFrame+1)); err != nil {
		t.Fatal(err)
	}
	_, _, err := conn.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("after a huge frame the client read %v, want close 1009", err)
	}
	// Other clients are unaffected.
	other := dial(t, srv)
	defer other.Close()
	if f, _ := readFrame(t, other); f["type"] != "snapshot" {
		t.Fatal("a second client got no snapshot")
	}
}

func TestHealth(t *testing.T) {
	tr := presence.New(presence.Options{})
	var storeErr error
	b := New(Config{Tracker: tr, Checks: map[string]func() error{
		"store":     func() error { return storeErr },
		"component": func() error { return nil },
	}})
	srv := httptest.NewServer(b)
	defer srv.Close()
	get := func() map[string]any {
		resp, err := http.Get(srv.URL + "/v1/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	if m := get(); m["status"] != "ok" {
		t.Fatalf("%v", m)
	}
	storeErr = errors.New("pgstore: connection refused")
	m := get()
	if m["status"] != "degraded" || m["checks"].(map[string]any)["store"] != "pgstore: connection refused" {
		t.Fatalf("%v", m)
	}
}

// pendingFrames holds the frames of a "changes" message not yet returned,
// per connection.
var pendingFrames sync.Map // *websocket.Conn -> *[]json.RawMessage

// nextFrame returns the next single frame from conn, expanding "changes"
// messages (a backlog coalesced by the server) into their frames.
func nextFrame(conn *websocket.Conn) ([]byte, error) {
	v, _ := pendingFrames.LoadOrStore(conn, &[]json.RawMessage{})
	q := v.(*[]json.RawMessage)
	if len(*q) > 0 {
		f := (*q)[0]
		*q = (*q)[1:]
		return f, nil
	}
	_, data, err := conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	var bundle struct {
		Type   string            `json:"type"`
		Frames []json.RawMessage `json:"frames"`
	}
	if json.Unmarshal(data, &bundle) == nil && bundle.Type == "changes" {
		*q = append(*q, bundle.Frames[1:]...)
		return bundle.Frames[0], nil
	}
	return data, nil
}

// readInto decodes the next single frame into v.
func readInto(conn *websocket.Conn, v any) error {
	data, err := nextFrame(conn)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// TestIsClosed: the errors of a peer or server gone away are told by their
// errno, as a write or a read wraps it, not by their text.
func TestIsClosed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{net.ErrClosed, true},
		{&net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, true},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{fmt.Errorf("stream: %w", syscall.ECONNRESET), true},
		{errors.New("broken pipe"), false}, // only the text: not the errno
		{&net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}, false},
		{syscall.EAGAIN, false},
	} {
		if got := isClosed(tc.err); got != tc.want {
			t.Errorf("isClosed(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
