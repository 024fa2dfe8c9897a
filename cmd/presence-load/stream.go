package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/presenced/presenced/internal/wsframe"
	"github.com/presenced/presenced/internal/wsload"
)

// streamStats are the WebSocket side's counters.
type streamStats struct {
	ready        atomic.Int64 // subscribers that got their first snapshot
	frames       atomic.Int64 // change frames received (changes batches expanded), all phases
	messages     atomic.Int64 // WebSocket messages received
	bytes        atomic.Int64
	resyncs      atomic.Int64 // snapshots after the first: the subscriber fell behind the hub
	gaps         atomic.Int64 // changes missed: sum of seq gaps on the streams
	disconnects  atomic.Int64 // streams that ended while the run went on
	connectFails atomic.Int64 // failed connection attempts (each retry counts)
	errorFrames  atomic.Int64
	stale        atomic.Int64 // frames whose marker could not be read or matched

	mu     sync.Mutex
	closes map[int]int // close codes received
}

func (s *streamStats) closed(code int) {
	s.mu.Lock()
	if s.closes == nil {
		s.closes = map[int]int{}
	}
	s.closes[code]++
	s.mu.Unlock()
}

// latency holds the end-to-end samples of the changes sent in the load
// window, by kind. Samples of changes sent outside the window (the logins
// before it, stragglers after it) are not recorded.
type latency struct {
	status, login, logout hist
	windowStart           atomic.Int64 // mono ns; 0: no window yet
	windowEnd             atomic.Int64 // mono ns; MaxInt64 while it runs
	inWindow              atomic.Int64 // samples recorded
}

func newLatency() *latency {
	l := &latency{}
	l.windowEnd.Store(math.MaxInt64)
	return l
}

func (l *latency) observe(h *hist, sent, now int64) {
	if ws := l.windowStart.Load(); ws == 0 || sent < ws || sent > l.windowEnd.Load() {
		return
	}
	h.record(now - sent)
	l.inWindow.Add(1)
}

func (l *latency) all() histSnap {
	return l.status.snap().add(l.login.snap()).add(l.logout.snap())
}

// streams are the M dashboard subscribers: each opens /v1/stream, and
// one or a few epoll readers (reader_linux.go) read every socket, so that
// the tool takes as little as it can of the CPU it shares with the
// servers it measures.
type streams struct {
	ctx      context.Context // reconnects end with it: the run's, until close
	cancel   context.CancelFunc
	o        *options
	u        *url.URL
	mono     func() int64
	index    *userIndex
	lat      *latency
	st       *streamStats
	readers  []*reader
	subs     []*wsSub
	stopping atomic.Bool
	dials    chan struct{} // connect concurrency
	wg       sync.WaitGroup
}

// wsSub is one subscriber, the handler of its connections (wsload.Handler).
// Its fields are its reader's alone, but for attached, which connect sets
// before it hands a connection over.
type wsSub struct {
	r        *reader
	num      int // among all subscribers
	lastSeq  uint64
	haveSeq  bool
	ready    bool    // got its first snapshot
	seen     []int64 // per user: the logout already timed
	backoff  time.Duration
	attached time.Time // when the current (or last) connection was handed over
}

func newStreams(ctx context.Context, o *options, mono func() int64, index *userIndex, lat *latency) (*streams, error) {
	u, err := url.Parse(o.Stream)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("-stream %q: want ws://host:port/v1/stream (wss is not supported)", o.Stream)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &streams{ctx: ctx, cancel: cancel, o: o, u: u, mono: mono, index: index, lat: lat, st: &streamStats{}, dials: make(chan struct{}, o.ConnectConcurrency)}
	for range max(1, o.Readers) {
		r, err := newReader(s)
		if err != nil {
			for _, r := range s.readers { // none has subscribers yet
				r.stop()
			}
			cancel()
			return nil, err
		}
		s.readers = append(s.readers, r)
	}
	for i := range o.Subscribers {
		r := s.readers[i%len(s.readers)]
		sub := &wsSub{r: r, num: i, seen: make([]int64, len(index.logoutAt))}
		s.subs = append(s.subs, sub)
	}
	for _, r := range s.readers {
		go r.run()
	}
	return s, nil
}

// connectAll opens every subscriber's stream, -connect-concurrency at a
// time, and returns once each one is connected or has given up; the
// snapshots arrive after that (see st.ready).
func (s *streams) connectAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sub := range s.subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.connect(ctx, sub, 0, 5)
		}()
	}
	wg.Wait()
}

// rateLimited is a refused upgrade that says when to come back.
type rateLimited struct{ after time.Duration }

func (e rateLimited) Error() string { return "rate limited (429), retry after " + e.after.String() }

// connect dials sub's stream (resuming after seq when it is not 0) and
// hands the socket to its reader, trying up to attempts times (0: until the
// run stops) with a growing pause, or the pause a 429 answer asks for.
func (s *streams) connect(ctx context.Context, sub *wsSub, seq uint64, attempts int) {
	pause := time.Second
	for n := 1; attempts == 0 || n <= attempts; n++ {
		if s.stopping.Load() || ctx.Err() != nil {
			return
		}
		select {
		case s.dials <- struct{}{}:
		case <-ctx.Done():
			return
		}
		fd, rest, err := dialStream(ctx, s.u, s.o.Token, seq, 30*time.Second)
		<-s.dials
		if err == nil {
			sub.attached = time.Now()
			sub.r.add(sub, fd, rest)
			return
		}
		s.st.connectFails.Add(1)
		wait := pause
		var rl rateLimited
		if errors.As(err, &rl) {
			wait = min(max(rl.after, 100*time.Millisecond), 30*time.Second)
		} else {
			pause = min(2*pause, 10*time.Second)
			errorf("connect", "subscriber %d: %v (attempt %d)", sub.num, err, n)
		}
		if !sleepCtx(ctx, wait) {
			return
		}
	}
}

// dropped is called by a reader when sub's stream ended: it reconnects,
// resuming after the last seq the subscriber saw, after a pause that grows
// while reconnects keep failing.
func (s *streams) dropped(sub *wsSub) {
	if s.stopping.Load() {
		return
	}
	s.st.disconnects.Add(1)
	seq := sub.lastSeq
	if time.Since(sub.attached) > 30*time.Second { // it had been fine: start over
		sub.backoff = 0
	}
	sub.backoff = min(max(2*sub.backoff, time.Second), 10*time.Second)
	// Jitter: subscribers dropped together must not all come back at once.
	wait := sub.backoff/2 + rand.N(sub.backoff)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if sleepCtx(s.ctx, wait) {
			s.connect(s.ctx, sub, seq, 0)
		}
	}()
}

func (s *streams) close() {
	s.stopping.Store(true)
	s.cancel()
	for _, r := range s.readers {
		r.stop()
	}
	s.wg.Wait()
}

// streamQuery builds the request path with resume, if any.
func streamQuery(u *url.URL, seq uint64) string {
	q := u.Query()
	if seq > 0 {
		q.Set("resume", strconv.FormatUint(seq, 10))
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if enc := q.Encode(); enc != "" {
		p += "?" + enc
	}
	return p
}

// --- frames ----------------------------------------------------------------

// Message handles one message of sub's stream (wsload joined its
// fragments): a text message is a snapshot, a change or a changes batch;
// a close frame ends the stream, a ping is answered.
func (sub *wsSub) Message(c *wsload.Conn, opcode byte, payload []byte) bool {
	switch opcode {
	case wsframe.Text:
		sub.message(payload)
	case wsframe.Close:
		code := 1005
		if len(payload) >= 2 {
			code = int(payload[0])<<8 | int(payload[1])
		}
		sub.r.s.st.closed(code)
		return false
	case wsframe.Ping:
		_ = c.Pong(payload) // a full socket loses it; the server pings again
	}
	return true
}

// Closed is called by the reader when sub's stream ended (the reader
// closed its socket): it reconnects.
func (sub *wsSub) Closed(_ *wsload.Conn, err error) {
	switch {
	case errors.Is(err, wsframe.ErrBadFrame):
		sub.r.s.st.closed(-1) // nonsense: the connection was given up
	case errors.Is(err, wsload.ErrAttach):
		logf("subscriber %d: %v", sub.num, err)
	}
	sub.r.s.dropped(sub)
}

var (
	keyChange   = []byte(`{"type":"change",`)
	keySnapshot = []byte(`{"type":"snapshot"`)
	keyError    = []byte(`{"type":"error"`)
	keySeq      = []byte(`"seq":`)
	keyEvent    = []byte(`"event":"`)
	keyJID      = []byte(`"jid":"`)
	keyResource = []byte(`"resource":{`)
	keyStatus   = []byte(`"status":"`)
	markPrefix  = []byte("pl/")
)

// message handles one WebSocket message: a snapshot, a change, or a
// changes batch (its frames one by one). It reads the few fields it needs
// by scanning, not with encoding/json: at a million frames a second a
// full decode would cost more CPU than the server being measured.
func (sub *wsSub) message(m []byte) {
	st := sub.r.s.st
	st.messages.Add(1)
	st.bytes.Add(int64(len(m)))
	switch {
	case bytes.HasPrefix(m, keySnapshot):
		if seq, ok := uintAfter(m, keySeq); ok {
			sub.lastSeq, sub.haveSeq = seq, true
		}
		if sub.ready {
			st.resyncs.Add(1)
		} else {
			sub.ready = true
			st.ready.Add(1)
		}
		return
	case bytes.HasPrefix(m, keyError):
		st.errorFrames.Add(1)
		return
	}
	if !sub.ready { // a resumed stream starts without a snapshot
		sub.ready = true
		st.ready.Add(1)
	}
	now := sub.r.s.mono()
	st.frames.Add(int64(eachFrame(m, func(f []byte) { sub.frame(f, now) })))
}

// eachFrame calls fn with each change frame of a message (a lone change or
// a "changes" batch), without its leading type, and returns how many there
// were: a frame runs from one keyChange to the next. TestWireContract
// checks this split against the bridge's real messages.
func eachFrame(m []byte, fn func(f []byte)) int {
	n := 0
	for {
		i := bytes.Index(m, keyChange)
		if i < 0 {
			return n
		}
		m = m[i+len(keyChange):]
		f := m
		if j := bytes.Index(m, keyChange); j >= 0 {
			f = m[:j]
		}
		n++
		fn(f)
	}
}

// frame handles one change frame (without its leading type).
func (sub *wsSub) frame(f []byte, now int64) {
	s := sub.r.s
	if seq, ok := uintAfter(f, keySeq); ok {
		if sub.haveSeq && seq > sub.lastSeq+1 {
			s.st.gaps.Add(int64(seq - sub.lastSeq - 1))
		}
		if !sub.haveSeq || seq > sub.lastSeq {
			sub.lastSeq, sub.haveSeq = seq, true
		}
	}
	event, _ := strAfter(f, keyEvent)
	switch string(event) {
	case "online", "changed":
		var status []byte
		if i := bytes.Index(f, keyResource); i >= 0 {
			status, _ = strAfter(f[i:], keyStatus)
		}
		sent, ok := parseMarker(status)
		if !ok {
			s.st.stale.Add(1)
			return
		}
		h := &s.lat.status
		if event[0] == 'o' {
			h = &s.lat.login
		}
		s.lat.observe(h, sent, now)
	case "offline":
		j, _ := strAfter(f, keyJID)
		idx, ok := s.index.byJID[string(j)]
		if !ok {
			s.st.stale.Add(1)
			return
		}
		t := s.index.logoutAt[idx].Load()
		if t == 0 || t == sub.seen[idx] {
			s.st.stale.Add(1) // not a logout of ours (or a repeat)
			return
		}
		sub.seen[idx] = t
		s.lat.observe(&s.lat.logout, t, now)
	}
}

// parseMarker reads the send time out of a status "pl/<seq>/<ns>".
func parseMarker(b []byte) (int64, bool) {
	if !bytes.HasPrefix(b, markPrefix) {
		return 0, false
	}
	b = b[len(markPrefix):]
	i := bytes.IndexByte(b, '/')
	if i < 0 {
		return 0, false
	}
	v, ok := parseUint(b[i+1:])
	return int64(v), ok && v < math.MaxInt64
}

func uintAfter(b, key []byte) (uint64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return parseUint(b[:n])
}

func strAfter(b, key []byte) ([]byte, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return nil, false
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return nil, false
	}
	return b[:j], true
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
