package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/bridge"
	"github.com/presenced/presenced/presence"
)

func TestParseMarker(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"pl/1/123", 123, true},
		{"pl/18446744073709551615/0", 0, true},
		{"pl/7/9223372036854775806", math.MaxInt64 - 1, true},
		{"pl/7/9223372036854775807", 0, false}, // not below MaxInt64
		{"pl/7/99999999999999999999", 0, false},
		{"pl/7/", 0, false},
		{"pl/7", 0, false},
		{"pl/7/12x", 0, false},
		{"pl/7/-1", 0, false},
		{"away", 0, false},
		{"", 0, false},
		{"xpl/1/2", 0, false},
	} {
		got, ok := parseMarker([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseMarker(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestScanners(t *testing.T) {
	f := []byte(`{"type":"change","seq":42,"event":"changed","jid":"a@b","resource":{"resource":"pc","status":"pl/1/5"},"user":{"status":"u"}}`)
	for _, tt := range []struct {
		key  []byte
		want string
		ok   bool
	}{
		{keyEvent, "changed", true},
		{keyJID, "a@b", true},
		{keyStatus, "pl/1/5", true},
		{[]byte(`"missing":"`), "", false},
	} {
		if got, ok := strAfter(f, tt.key); ok != tt.ok || string(got) != tt.want {
			t.Errorf("strAfter(%s) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
	if got, ok := strAfter([]byte(`"jid":"cut`), keyJID); ok {
		t.Errorf("strAfter of an unterminated string = %q, true", got)
	}
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{`"seq":42,`, 42, true},
		{`"seq":0}`, 0, true},
		{`"seq":9999999999999999999}`, 9999999999999999999, true},
		{`"seq":18446744073709551615}`, 0, false},   // 20 digits: refused
		{`"seq":1844674407370955161500}`, 0, false}, // over 19 digits
		{`"seq":}`, 0, false},
		{`"seq":-1`, 0, false},
		{`"seq":"3"`, 0, false},
		{`{}`, 0, false},
	} {
		if got, ok := uintAfter([]byte(tt.in), keySeq); ok != tt.ok || got != tt.want {
			t.Errorf("uintAfter(%s) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestStreamQuery(t *testing.T) {
	for _, tt := range []struct {
		url  string
		seq  uint64
		want string
	}{
		{"ws://h:1/v1/stream", 0, "/v1/stream"},
		{"ws://h:1/v1/stream", 17, "/v1/stream?resume=17"},
		{"ws://h:1/v1/stream?domains=a", 17, "/v1/stream?domains=a&resume=17"},
		{"ws://h:1", 0, "/"},
		{"ws://h:1/v1/stream?resume=3", 9, "/v1/stream?resume=9"},
	} {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := streamQuery(u, tt.seq); got != tt.want {
			t.Errorf("streamQuery(%s, %d) = %s, want %s", tt.url, tt.seq, got, tt.want)
		}
	}
}

// fakeSub is a subscriber with what message needs, and no connection.
func fakeSub(users ...string) (*wsSub, *streams) {
	index := &userIndex{byJID: map[string]int32{}, logoutAt: make([]atomic.Int64, len(users))}
	for i, u := range users {
		index.byJID[u] = int32(i)
	}
	lat := newLatency()
	lat.windowStart.Store(1)
	now := int64(1000)
	s := &streams{st: &streamStats{}, index: index, lat: lat, mono: func() int64 { return now }}
	r := &reader{s: s}
	return &wsSub{r: r, seen: make([]int64, len(users))}, s
}

// TestMessage feeds messages of the bridge's shapes to a subscriber and
// checks what it counts.
func TestMessage(t *testing.T) {
	change := func(seq int, event, jid, status string) string {
		return fmt.Sprintf(`{"type":"change","seq":%d,"event":%q,"time":"2026-01-01T00:00:00Z","jid":%q,"resource":{"resource":"pc","show":"available","status":%q,"priority":0,"since":"2026-01-01T00:00:00Z"},"user":{"online":true,"show":"available","status":"agg","priority":0}}`,
			seq, event, jid, status)
	}
	sub, s := fakeSub("a@x", "b@x")
	st, lat := s.st, s.lat
	s.index.logoutAt[1].Store(400) // b logged out at 400

	sub.message([]byte(`{"type":"snapshot","seq":10,"users":[{"jid":"a@x","online":true,"show":"available","status":"","priority":0,"resources":[]}]}`))
	if !sub.ready || st.ready.Load() != 1 || sub.lastSeq != 10 {
		t.Fatalf("after the snapshot: ready %v (%d), seq %d", sub.ready, st.ready.Load(), sub.lastSeq)
	}
	sub.message([]byte(change(11, "changed", "a@x", "pl/1/900")))
	sub.message([]byte(`{"type":"changes","frames":[` + change(12, "online", "a@x", "pl/2/800") + "," +
		change(15, "offline", "b@x", "") + "," + change(16, "changed", "a@x", "not a marker") + "]}"))
	sub.message([]byte(change(17, "offline", "b@x", "")))  // b's logout again: a repeat
	sub.message([]byte(change(18, "offline", "zz@x", ""))) // not one of ours
	sub.message([]byte(`{"type":"error","code":"bad_message","message":"not a JSON object"}`))
	sub.message([]byte(`{"type":"snapshot","seq":30,"users":[]}`)) // a resync

	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"messages", st.messages.Load(), 7},
		{"frames", st.frames.Load(), 6},
		{"gaps (13, 14)", st.gaps.Load(), 2},
		{"stale (no marker, a repeat, a stranger)", st.stale.Load(), 3},
		{"error frames", st.errorFrames.Load(), 1},
		{"resyncs", st.resyncs.Load(), 1},
		{"status samples", int64(lat.status.snap().total()), 1},
		{"login samples", int64(lat.login.snap().total()), 1},
		{"logout samples", int64(lat.logout.snap().total()), 1},
		{"in window", lat.inWindow.Load(), 3},
		{"last seq", int64(sub.lastSeq), 30},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
	// Latency is receipt (1000) minus the marker's send time.
	for _, c := range []struct {
		name string
		h    *hist
		want time.Duration
	}{{"status", &lat.status, 100}, {"login", &lat.login, 200}, {"logout", &lat.logout, 600}} {
		if got := c.h.snap().pct(0.5); got != c.want {
			t.Errorf("%s latency %v, want %v", c.name, got, c.want)
		}
	}

	// A resumed stream starts without a snapshot: its first change makes
	// the subscriber ready.
	sub2, s2 := fakeSub("a@x")
	sub2.message([]byte(change(5, "changed", "a@x", "pl/1/900")))
	if !sub2.ready || s2.st.ready.Load() != 1 || s2.st.frames.Load() != 1 {
		t.Fatalf("resumed: ready %v, frames %d", sub2.ready, s2.st.frames.Load())
	}
}

func TestLatencyWindow(t *testing.T) {
	l := newLatency()
	l.observe(&l.status, 5, 10) // no window yet
	l.windowStart.Store(100)
	l.observe(&l.status, 99, 200)  // sent before it
	l.observe(&l.status, 100, 200) // counted
	l.windowEnd.Store(300)
	l.observe(&l.login, 300, 400)  // counted: at its end
	l.observe(&l.login, 301, 400)  // sent after it
	l.observe(&l.logout, 150, 120) // negative: counted as 0
	if n := l.inWindow.Load(); n != 3 {
		t.Fatalf("%d samples in the window, want 3", n)
	}
	all := l.all()
	if all.total() != 3 || all.max != 100 || all.pct(0.01) != 0 || all.pct(1) != 100 {
		t.Fatalf("all: %d samples, max %d, p1 %v, p100 %v", all.total(), all.max, all.pct(0.01), all.pct(1))
	}
}

// wireFrame is a change frame decoded properly: what the tool's scanners
// must find.
type wireFrame struct {
	Type     string `json:"type"`
	Seq      uint64 `json:"seq"`
	Event    string `json:"event"`
	JID      string `json:"jid"`
	Resource struct {
		Status string `json:"status"`
	} `json:"resource"`
	Frames []json.RawMessage `json:"frames"`
}

// wireServer is a real bridge over httptest on a tracker, as presenced
// serves it (bridge/stream_test.go does the same).
func wireServer(t *testing.T, cfg bridge.Config) (*presence.Tracker, *httptest.Server) {
	t.Helper()
	tr := presence.New(presence.Options{})
	cfg.Tracker = tr
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.RatePerSecond, cfg.RateBurst = 1e6, 1e6
	b := bridge.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b.Start(ctx)
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return tr, srv
}

// TestWireContract pins what the tool's frame scanners (stream.go:
// message, frame) rely on in the bridge's encoding (bridge/wire.go
// snapshotFrame, changeFrame, errorFrame, appendChanges),
// on real frames of a real bridge:
//   - a snapshot message starts with {"type":"snapshot", an error message
//     with {"type":"error", and its first "seq": is the snapshot's seq;
//   - every change frame starts with {"type":"change", (also inside a
//     "changes" batch, which the tool splits at that prefix), and within
//     it the first "seq": is the change's seq, the first "event":" its
//     event, the first "jid":" its user's bare JID, and the first
//     "status":" after "resource":{ the resource's status (the tool's
//     marker), not the aggregate user's;
//   - resume=<seq> on /v1/stream continues after seq, without a snapshot.
//
// If this fails, the bridge's wire format changed under the tool: fix the
// scanners before trusting its numbers.
func TestWireContract(t *testing.T) {
	// A long flush interval: a change after a quiet spell goes out alone,
	// the ones right after it as one "changes" batch.
	tr, srv := wireServer(t, bridge.Config{StreamFlushInterval: 300 * time.Millisecond})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/stream"
	tr.Apply(presence.Update{User: "a@x", Resource: "pc", Available: true, Status: "first"})
	c, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	next := func() []byte {
		t.Helper()
		op, m, err := c.ReadMessage()
		if err != nil || op != websocket.TextMessage {
			t.Fatalf("read: %d %v", op, err)
		}
		return m
	}

	snap := next()
	var sv struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(snap, &sv); err != nil {
		t.Fatal(err)
	}
	if seq, ok := uintAfter(snap, keySeq); !bytes.HasPrefix(snap, keySnapshot) || !ok || seq != sv.Seq {
		t.Fatalf("snapshot: prefix %v, seq read %d %v, want %d: %.300s", bytes.HasPrefix(snap, keySnapshot), seq, ok, sv.Seq, snap)
	}

	// check compares what the scanners read in a message with its JSON,
	// and returns its changes' seqs.
	singles, batches := 0, 0
	check := func(m []byte) []uint64 {
		t.Helper()
		var v wireFrame
		if err := json.Unmarshal(m, &v); err != nil {
			t.Fatalf("%v: %s", err, m)
		}
		var frames []wireFrame
		switch v.Type {
		case "change":
			singles++
			frames = []wireFrame{v}
		case "changes":
			batches++
			for _, f := range v.Frames {
				var fv wireFrame
				if err := json.Unmarshal(f, &fv); err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(f, keyChange) {
					t.Errorf("a frame of a batch does not start with %s: %s", keyChange, f)
				}
				frames = append(frames, fv)
			}
		default:
			t.Fatalf("message of type %q: %s", v.Type, m)
		}
		// Split as message does.
		var split [][]byte
		eachFrame(m, func(f []byte) { split = append(split, f) })
		if len(split) != len(frames) {
			t.Fatalf("the scanner splits %d frames out of a message of %d: %s", len(split), len(frames), m)
		}
		var seqs []uint64
		for i, f := range split {
			w := frames[i]
			seq, _ := uintAfter(f, keySeq)
			event, _ := strAfter(f, keyEvent)
			jid, _ := strAfter(f, keyJID)
			var status []byte
			if k := bytes.Index(f, keyResource); k >= 0 {
				status, _ = strAfter(f[k:], keyStatus)
			}
			if seq != w.Seq || string(event) != w.Event || string(jid) != w.JID || string(status) != w.Resource.Status {
				t.Errorf("scanned seq %d event %q jid %q status %q; the frame has %d %q %q %q: %s",
					seq, event, jid, status, w.Seq, w.Event, w.JID, w.Resource.Status, f)
			}
			seqs = append(seqs, w.Seq)
		}
		return seqs
	}

	// online (b), changed (a, whose aggregate status differs from the
	// resource's: its other resource has a higher priority), offline (b).
	tr.Apply(presence.Update{User: "a@x", Resource: "phone", Available: true, Priority: 5, Status: "aggregate"})
	check(next())
	changes := []presence.Update{
		{User: "b@x", Resource: "pc", Available: true, Status: "pl/1/100"},
		{User: "a@x", Resource: "pc", Available: true, Status: "pl/2/200"},
		{User: "b@x", Resource: "pc"},
	}
	var seen []uint64
	for try := 0; batches == 0 && try < 5; try++ { // a stalled machine sends them alone: again
		for _, u := range changes {
			tr.Apply(u)
		}
		for n := 0; n < len(changes); {
			s := check(next())
			seen = append(seen, s...)
			n += len(s)
		}
	}
	if singles == 0 || batches == 0 {
		t.Fatalf("%d single changes and %d batches: the test did not see both encodings", singles, batches)
	}

	// An error frame.
	if err := c.WriteMessage(websocket.TextMessage, []byte("nonsense")); err != nil {
		t.Fatal(err)
	}
	if m := next(); !bytes.HasPrefix(m, keyError) {
		t.Fatalf("error message: %s", m)
	}

	// resume=<seq>: the changes after seq, no snapshot.
	after := seen[len(seen)-3]
	q, _ := url.Parse(wsURL)
	rc, _, err := websocket.DefaultDialer.Dial("ws://"+q.Host+streamQuery(q, after), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, m, err := rc.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(m, keySnapshot) {
		t.Fatalf("resume=%d answered with a snapshot", after)
	}
	if seq, _ := uintAfter(m, keySeq); seq != after+1 {
		t.Fatalf("resume=%d: first seq %d: %.300s", after, seq, m)
	}
}

// TestStreams runs the tool's whole WebSocket side (dialStream, the epoll
// reader, the scanners, the latency histograms) against a real bridge:
// two subscribers, marked changes of each kind, and pings the subscribers
// must answer.
func TestStreams(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatal("the stream readers need Linux, as the tool does")
	}
	tr, srv := wireServer(t, bridge.Config{PingInterval: 100 * time.Millisecond})
	users := []string{"u0@x", "u1@x", "u2@x"}
	index := &userIndex{byJID: map[string]int32{}, logoutAt: make([]atomic.Int64, len(users))}
	for i, u := range users {
		index.byJID[u] = int32(i)
	}
	start := time.Now()
	mono := func() int64 { return int64(time.Since(start)) }
	lat := newLatency()
	o := &options{Stream: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/stream", Subscribers: 2, Readers: 2, ConnectConcurrency: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ss, err := newStreams(ctx, o, mono, index, lat)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.close()
	ss.connectAll(ctx)
	if !waitUntil(ctx, 10*time.Second, func() bool { return ss.st.ready.Load() == 2 }) {
		t.Fatalf("%d subscribers ready", ss.st.ready.Load())
	}
	lat.windowStart.Store(mono())
	seq := 0
	marker := func() string { seq++; return "pl/" + strconv.Itoa(seq) + "/" + strconv.FormatInt(mono(), 10) }
	for _, u := range users { // logins: online
		tr.Apply(presence.Update{User: u, Resource: "pc", Available: true, Status: marker()})
	}
	for range 3 { // status changes: changed
		for _, u := range users {
			tr.Apply(presence.Update{User: u, Resource: "pc", Available: true, Status: marker()})
		}
		time.Sleep(20 * time.Millisecond)
	}
	index.logoutAt[2].Store(mono()) // a logout: offline
	tr.Apply(presence.Update{User: users[2], Resource: "pc"})
	const changes = 3 + 9 + 1
	if !waitUntil(ctx, 10*time.Second, func() bool { return lat.inWindow.Load() >= 2*changes }) {
		t.Fatalf("%d samples of %d", lat.inWindow.Load(), 2*changes)
	}
	time.Sleep(300 * time.Millisecond) // pings: unanswered, the bridge would drop them by now
	st := ss.st
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"frames", st.frames.Load(), 2 * changes},
		{"samples", lat.inWindow.Load(), 2 * changes},
		{"logins", int64(lat.login.snap().total()), 2 * 3},
		{"status changes", int64(lat.status.snap().total()), 2 * 9},
		{"logouts", int64(lat.logout.snap().total()), 2},
		{"stale", st.stale.Load(), 0},
		{"gaps", st.gaps.Load(), 0},
		{"disconnects", st.disconnects.Load(), 0},
		{"resyncs", st.resyncs.Load(), 0},
		{"connect failures", st.connectFails.Load(), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
	if all := lat.all(); all.pct(0.5) <= 0 || all.pct(1) > 10*time.Second {
		t.Errorf("latency p50 %v max %v", all.pct(0.5), all.pct(1))
	}
}
