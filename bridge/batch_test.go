package bridge

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/poll"
	"github.com/presenced/presenced/internal/wsframe"
	"github.com/presenced/presenced/presence"
)

// testEvent is a change of user with seq and show, encoded as the hub does.
func testEvent(seq uint64, user, show string) *hubEvent {
	frame := fmt.Appendf(nil, `{"type":"change","seq":%d,"jid":%q,"user":{"show":%q}}`, seq, user, show)
	return &hubEvent{seq: seq, user: user, show: show, frame: frame}
}

// messages parses server frames (as a client reads them off the socket)
// into their payloads.
func messages(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	var p wsframe.Parser
	if err := p.Feed(data, func(_ bool, opcode byte, payload []byte) bool {
		if opcode != wsframe.Text {
			t.Errorf("opcode %d", opcode)
		}
		out = append(out, string(payload))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// seqs lists the seq of every change in messages, expanding "changes".
func seqs(t *testing.T, msgs []string) []uint64 {
	t.Helper()
	var out []uint64
	for _, m := range msgs {
		var v struct {
			Type   string            `json:"type"`
			Seq    uint64            `json:"seq"`
			Frames []json.RawMessage `json:"frames"`
		}
		if err := json.Unmarshal([]byte(m), &v); err != nil {
			t.Fatalf("%v: %s", err, m)
		}
		if v.Type == "change" {
			out = append(out, v.Seq)
			continue
		}
		if len(v.Frames) > maxBatch {
			t.Errorf("a changes message of %d changes", len(v.Frames))
		}
		for _, f := range v.Frames {
			out = append(out, seqs(t, []string{string(f)})...)
		}
	}
	return out
}

func span(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestBatchShared(t *testing.T) {
	for _, n := range []int{1, 2, maxBatch, maxBatch + 1, 3*maxBatch + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b := &hubBatch{}
			for i := range n {
				b.events = append(b.events, testEvent(uint64(i+1), "u@x", "available"))
			}
			msgs := messages(t, b.wire())
			if want := (n + maxBatch - 1) / maxBatch; len(msgs) != want {
				t.Errorf("%d messages, want %d", len(msgs), want)
			}
			if n == 1 && msgs[0] != string(b.events[0].frame) {
				t.Error("a lone change is not sent as its own message")
			}
			if first, again := b.wire(), b.wire(); &first[0] != &again[0] {
				t.Error("the batch is framed again at every call")
			}
			if got := seqs(t, msgs); fmt.Sprint(got) != fmt.Sprint(span(1, uint64(n))) {
				t.Errorf("seqs %v", got)
			}
		})
	}
}

// TestTakeLocked drains queues of batches through takeLocked, as the
// writers do, for clients that see everything and for filtered ones,
// including a client whose snapshot already holds part of a batch.
func TestTakeLocked(t *testing.T) {
	batch := func(from, to uint64, user func(uint64) string) *hubBatch {
		b := &hubBatch{}
		for s := from; s <= to; s++ {
			b.events = append(b.events, testEvent(s, user(s), "available"))
		}
		return b
	}
	one := func(uint64) string { return "a@x" }
	alternate := func(s uint64) string { return []string{"a@x", "b@y"}[s%2] }
	all, _ := newViewFilter(nil, nil, nil, nil)
	onlyA, _ := newViewFilter(nil, []string{"a@x"}, nil, nil)
	for _, tc := range []struct {
		name    string
		filter  *viewFilter
		seq     uint64 // what the client has
		batches []*hubBatch
		want    []uint64
		writes  int // takeLocked results with data
	}{
		{"all, one batch", all, 0, []*hubBatch{batch(1, 10, one)}, span(1, 10), 1},
		{"all, behind: joined", all, 0, []*hubBatch{batch(1, 10, one), batch(11, 200, one), batch(201, 201, one)}, span(1, 201), 1},
		{"all, snapshot inside the first batch", all, 5, []*hubBatch{batch(1, 10, one), batch(11, 12, one)}, span(6, 12), 1},
		{"filtered", onlyA, 0, []*hubBatch{batch(1, 10, alternate)}, []uint64{2, 4, 6, 8, 10}, 1},
		{"filtered, many batches", onlyA, 0, []*hubBatch{batch(1, 300, alternate), batch(301, 302, alternate)},
			func() (s []uint64) {
				for i := uint64(2); i <= 302; i += 2 {
					s = append(s, i)
				}
				return s
			}(), 3},
		{"filtered, none wanted", onlyA, 0, []*hubBatch{batch(1, 1000, func(uint64) string { return "b@y" })}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &streamConn{filter: tc.filter, seq: tc.seq, limit: 1 << 20}
			for _, b := range tc.batches {
				c.queue = append(c.queue, b)
				c.queued += len(b.events)
			}
			var got []uint64
			var buf, data []byte
			writes := 0
			for len(c.queue) > 0 {
				if buf, data = c.takeLocked(buf); data != nil {
					writes++
					got = append(got, seqs(t, messages(t, data))...)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
			if writes != tc.writes {
				t.Errorf("%d writes, want %d", writes, tc.writes)
			}
			if c.queued != 0 || c.qpos != 0 {
				t.Errorf("queued %d, qpos %d after draining", c.queued, c.qpos)
			}
		})
	}
}

func TestFlushIntervalStretches(t *testing.T) {
	base := 25 * time.Millisecond
	for _, tc := range []struct {
		perSecond     int
		flushes, late int // the writers took longer than base over late of the flushes
		want          time.Duration
	}{
		{0, 0, 0, base},
		{stretchFrom, 40, 0, base},
		{2 * stretchFrom, 40, 0, 2 * base},
		{1_000_000, 40, 20, 4 * base},
		{100_000_000, 40, 0, stretchMax * base},
		{1_000_000, 40, 21, base}, // the writers batch by themselves
	} {
		now := time.Now()
		h := &hub{base: base, interval: base, since: now.Add(-2 * time.Second), delivered: 2 * tc.perSecond,
			flushes: tc.flushes, late: tc.late}
		h.stretch(now)
		if h.interval != tc.want {
			t.Errorf("%d deliveries/s, %d of %d flushes late: interval %v, want %v", tc.perSecond, tc.late, tc.flushes, h.interval, tc.want)
		}
	}
}

// TestStreamFlushPacing: a lone change goes out at once; what comes within
// the interval after it goes out as one message when the interval ends.
func TestStreamFlushPacing(t *testing.T) {
	tr := presence.New(presence.Options{})
	srv := httptest.NewServer(New(Config{Tracker: tr, StreamFlushInterval: 500 * time.Millisecond}))
	defer srv.Close()
	conn, _ := subscribe(t, srv, "")
	began := time.Now()
	up(tr, "a@x", presence.ShowNone, "1")
	_, data, err := conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(t, []string{string(data)}); len(got) != 1 {
		t.Fatalf("first message %s", data)
	}
	up(tr, "a@x", presence.ShowNone, "2")
	up(tr, "b@x", presence.ShowNone, "3")
	up(tr, "c@x", presence.ShowNone, "4")
	_, data, err = conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(t, []string{string(data)}); fmt.Sprint(got) != "[2 3 4]" {
		t.Fatalf("second message %s", data)
	}
	if waited := time.Since(began); waited < 500*time.Millisecond {
		t.Errorf("the second message came %v after the first change, before the interval", waited)
	}
}

// TestStreamResumeWhileFlushPending resumes while changes wait for the
// flush: the replay has them, the flush brings them again, and the client
// gets each once.
func TestStreamResumeWhileFlushPending(t *testing.T) {
	tr := presence.New(presence.Options{})
	b := New(Config{Tracker: tr, StreamFlushInterval: 2 * time.Second})
	srv := httptest.NewServer(b)
	defer srv.Close()
	conn, _ := subscribe(t, srv, "")
	up(tr, "a@x", presence.ShowNone, "1") // flushed at once
	var f changeFrame
	if err := readInto(conn, &f); err != nil || f.Seq != 1 {
		t.Fatalf("first change %+v, %v", f, err)
	}
	up(tr, "a@x", presence.ShowNone, "2") // pending for the interval
	up(tr, "a@x", presence.ShowNone, "3")
	poll.True(t, "the hub to have them", 5*time.Second, func() bool {
		b.hub.mu.Lock()
		defer b.hub.mu.Unlock()
		return b.hub.last == 3
	})
	c2, _, err := dialQuery(t, srv, "?resume=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for len(got) < 3 {
		_, data, err := c2.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, seqs(t, []string{string(data)})...)
		if len(got) == 2 {
			up(tr, "a@x", presence.ShowNone, "4")
		}
	}
	if fmt.Sprint(got) != "[2 3 4]" {
		t.Fatalf("resumed client got %v", got)
	}
}

// TestStreamResumeReplaysInMessages: a long replay goes out in messages of
// at most maxBatch changes, in order, each once.
func TestStreamResumeReplaysInMessages(t *testing.T) {
	tr := presence.New(presence.Options{})
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	conn, _ := subscribe(t, srv, "")
	for i := range 200 {
		up(tr, fmt.Sprintf("u%d@x", i%7), presence.ShowNone, fmt.Sprint(i))
	}
	var f changeFrame
	for f.Seq != 200 {
		if err := readInto(conn, &f); err != nil {
			t.Fatal(err)
		}
	}
	c2, _, err := dialQuery(t, srv, "?resume=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for len(got) < 199 {
		_, data, err := c2.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, seqs(t, []string{string(data)})...) // fails a message over maxBatch
	}
	if fmt.Sprint(got) != fmt.Sprint(span(2, 200)) {
		t.Fatalf("replay %v", got)
	}
}

// TestFlushSplitsLargeBatches: after a backlog, one flush hands out
// batches of at most maxFlush changes, in order.
func TestFlushSplitsLargeBatches(t *testing.T) {
	h := newHub(presence.New(presence.Options{}), nil, 16, 1, 0)
	all, _ := newViewFilter(nil, nil, nil, nil)
	c := &streamConn{filter: all, limit: 1 << 20}
	h.conns = []*streamConn{c}
	n := 2*maxFlush + 452
	for i := range n {
		h.pending = append(h.pending, testEvent(uint64(i+1), "u@x", "available"))
	}
	h.flushLocked()
	var sizes []int
	var next uint64 = 1
	for _, b := range c.queue {
		sizes = append(sizes, len(b.events))
		for _, he := range b.events {
			if he.seq != next {
				t.Fatalf("seq %d, want %d", he.seq, next)
			}
			next++
		}
	}
	if fmt.Sprint(sizes) != fmt.Sprint([]int{maxFlush, maxFlush, 452}) || c.queued != n {
		t.Fatalf("batches %v, queued %d", sizes, c.queued)
	}
}
