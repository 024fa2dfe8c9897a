package bridge

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/bridge/auth"
	"github.com/presenced/presenced/presence"
)

func dialQuery(t *testing.T, srv *httptest.Server, query string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/stream" + query
	conn, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if conn != nil {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		t.Cleanup(func() { conn.Close() })
	}
	return conn, resp, err
}

// subscribe opens a stream with the query and reads its snapshot.
func subscribe(t *testing.T, srv *httptest.Server, query string) (*websocket.Conn, snapshotFrame) {
	t.Helper()
	conn, _, err := dialQuery(t, srv, query, nil)
	if err != nil {
		t.Fatal(err)
	}
	var snap snapshotFrame
	if err := readInto(conn, &snap); err != nil {
		t.Fatal(err)
	}
	return conn, snap
}

func up(tr *presence.Tracker, user string, show presence.Show, status string) {
	tr.Apply(presence.Update{User: user, Resource: "r", Available: true, Show: show, Status: status})
}

func TestStreamFilters(t *testing.T) {
	tr := presence.New(presence.Options{})
	up(tr, "a@one", presence.ShowAway, "")
	up(tr, "b@two", presence.ShowAway, "")
	up(tr, "c@one", presence.ShowDND, "")
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	conn, snap := subscribe(t, srv, "?domains=one&show=away")
	if len(snap.Users) != 1 || snap.Users[0].JID != "a@one" {
		t.Fatalf("filtered snapshot %+v", snap.Users)
	}
	up(tr, "b@two", presence.ShowNone, "x")                // other domain: not sent
	up(tr, "c@one", presence.ShowDND, "still dnd")         // show not wanted, not held: not sent
	up(tr, "c@one", presence.ShowAway, "now away")         // enters the filter: sent
	up(tr, "a@one", presence.ShowChat, "leaves")           // leaves the filter: one last frame
	up(tr, "a@one", presence.ShowChat, "gone from filter") // then nothing
	up(tr, "c@one", presence.ShowAway, "end")              // marker
	var got []string
	for len(got) < 3 {
		var f changeFrame
		if err := readInto(conn, &f); err != nil {
			t.Fatal(err)
		}
		got = append(got, f.JID+":"+f.User.Status)
	}
	if want := "c@one:now away a@one:leaves c@one:end"; strings.Join(got, " ") != want {
		t.Fatalf("frames %v, want %s", got, want)
	}
}

func TestStreamSubscribeMessageAndErrors(t *testing.T) {
	tr := presence.New(presence.Options{})
	up(tr, "a@one", presence.ShowNone, "")
	up(tr, "b@two", presence.ShowNone, "")
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	conn, snap := subscribe(t, srv, "")
	if len(snap.Users) != 2 {
		t.Fatalf("snapshot %+v", snap)
	}
	for _, tt := range []struct{ msg, code string }{
		{`nonsense`, "bad_message"},
		{`{"type":"dance"}`, "unknown_type"},
		{`{"type":"subscribe","show":["sleepy"]}`, "bad_filter"},
		{`{"type":"subscribe","users":["no-at-sign"]}`, "bad_filter"},
	} {
		conn.WriteMessage(websocket.TextMessage, []byte(tt.msg))
		var e errorFrame
		if err := readInto(conn, &e); err != nil || e.Type != "error" || e.Code != tt.code {
			t.Fatalf("after %s: %+v %v, want error %s", tt.msg, e, err, tt.code)
		}
	}
	conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","domains":["two"]}`))
	if err := readInto(conn, &snap); err != nil || snap.Type != "snapshot" || len(snap.Users) != 1 || snap.Users[0].JID != "b@two" {
		t.Fatalf("after subscribe: %+v %v", snap, err)
	}
}

func TestStreamResume(t *testing.T) {
	tr := presence.New(presence.Options{})
	b := New(Config{Tracker: tr, ResumeWindow: 8})
	srv := httptest.NewServer(b)
	defer srv.Close()
	conn, _, _ := dialQuery(t, srv, "", nil) // starts the hub
	var snap snapshotFrame
	readInto(conn, &snap)
	for i := range 5 {
		up(tr, "a@x", presence.ShowNone, string(rune('a'+i)))
	}
	var f changeFrame
	for f.Seq != 5 {
		readInto(conn, &f)
	}
	// A client that saw up to seq 3 resumes: seq 4 and 5, no snapshot.
	c2, _, _ := dialQuery(t, srv, "?resume=3", nil)
	var first map[string]any
	readInto(c2, &first)
	if first["type"] != "change" || first["seq"].(float64) != 4 {
		t.Fatalf("resumed stream starts with %v", first)
	}
	// Too old for the window (8 events): a snapshot instead.
	for i := range 10 {
		up(tr, "a@x", presence.ShowNone, string(rune('k'+i)))
	}
	for f.Seq != 15 {
		readInto(conn, &f)
	}
	c3, _, _ := dialQuery(t, srv, "?resume=2", nil)
	readInto(c3, &first)
	if first["type"] != "snapshot" || first["seq"].(float64) != 15 {
		t.Fatalf("a resume beyond the window must start with a snapshot, got %v", first)
	}
	if _, resp, err := dialQuery(t, srv, "?resume=abc", nil); err == nil || resp.StatusCode != 400 {
		t.Fatalf("resume=abc: %v", err)
	}
}

func TestSlowConsumerIsClosed(t *testing.T) {
	tr := presence.New(presence.Options{})
	srv := httptest.NewServer(New(Config{Tracker: tr, StreamQueue: 4}))
	defer srv.Close()
	slow, _, _ := dialQuery(t, srv, "", nil)
	fast, _, _ := dialQuery(t, srv, "", nil)
	var snap snapshotFrame
	readInto(slow, &snap)
	readInto(fast, &snap)
	// A client whose socket is not read fills its queue once the socket
	// buffers are full: send enough large frames.
	big := strings.Repeat("x", 60000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 300; i++ {
			up(tr, "a@x", presence.ShowNone, big+string(rune('a'+i%26)))
			var f changeFrame
			if readInto(fast, &f) != nil {
				return
			}
		}
	}()
	<-done
	_ = slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	var err error
	for err == nil {
		_, _, err = slow.ReadMessage()
	}
	if !websocket.IsCloseError(err, closeSlowConsumer) {
		t.Fatalf("the slow client read %v, want close %d", err, closeSlowConsumer)
	}
}

func TestStreamAuthAndOrigin(t *testing.T) {
	tr := presence.New(presence.Options{})
	up(tr, "a@x", presence.ShowNone, "")
	up(tr, "b@x", presence.ShowNone, "")
	b := New(Config{Tracker: tr, AllowedOrigins: []string{"https://dash.example.org"},
		Authenticate: func(r *http.Request) (Access, error) {
			if r.URL.Query().Get("access_token") != "good" {
				return nil, errors.New("auth: token expired")
			}
			return &auth.Claims{Users: []string{"a@x"}}, nil
		}})
	srv := httptest.NewServer(b)
	defer srv.Close()
	if _, resp, err := dialQuery(t, srv, "?access_token=bad", nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("bad token: %v", err)
	}
	if _, resp, err := dialQuery(t, srv, "?access_token=good", http.Header{"Origin": {"https://evil.example"}}); err == nil || resp.StatusCode != 403 {
		t.Fatalf("foreign origin: %v", err)
	}
	conn, _, err := dialQuery(t, srv, "?access_token=good", http.Header{"Origin": {"https://dash.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	var snap snapshotFrame
	readInto(conn, &snap)
	if len(snap.Users) != 1 || snap.Users[0].JID != "a@x" {
		t.Fatalf("the token sees only a@x, got %+v", snap.Users)
	}
	up(tr, "b@x", presence.ShowAway, "hidden")
	up(tr, "a@x", presence.ShowAway, "visible")
	var f changeFrame
	readInto(conn, &f)
	if f.JID != "a@x" {
		t.Fatalf("a change of a user the token may not see was sent: %+v", f)
	}
	_ = json.Marshal
}

func TestStreamMessageFloodIsLimited(t *testing.T) {
	tr := presence.New(presence.Options{})
	up(tr, "a@x", presence.ShowNone, "")
	srv := httptest.NewServer(New(Config{Tracker: tr, RatePerSecond: 1, RateBurst: 5}))
	defer srv.Close()
	flood, _, err := dialQuery(t, srv, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var snap snapshotFrame
	readInto(flood, &snap)
	for range 50 {
		flood.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe"}`))
	}
	limited := false
	for range 8 {
		var m map[string]any
		if err := readInto(flood, &m); err != nil {
			t.Fatal(err)
		}
		if m["type"] == "error" && m["code"] == "rate_limited" {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("a flood of messages was never rate limited")
	}
	// The flood costs its own key only; the stream itself goes on.
	up(tr, "a@x", presence.ShowAway, "after the flood")
	for {
		var m map[string]any
		if err := readInto(flood, &m); err != nil {
			t.Fatal(err)
		}
		if m["type"] == "change" {
			break
		}
	}
}

func TestStreamPublishesWebPresence(t *testing.T) {
	tr := presence.New(presence.Options{})
	up(tr, "a@x", presence.ShowAway, "xmpp")
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	conn, _ := subscribe(t, srv, "")
	conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"presence","jid":"a@x","resource":"tab","show":"chat","status":"web","priority":2,"ttl":30}`))
	var f changeFrame
	if err := readInto(conn, &f); err != nil || f.Event != "online" || f.Resource.Resource != "web/tab" || f.User.Show != "chat" {
		t.Fatalf("after a presence message: %+v %v", f, err)
	}
	conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"presence","jid":"a@x","resource":"tab","show":"sleepy"}`))
	var e errorFrame
	if err := readInto(conn, &e); err != nil || e.Code != "bad_show" {
		t.Fatalf("bad show: %+v %v", e, err)
	}
}
