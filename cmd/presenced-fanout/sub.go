package main

import (
	"bytes"
	"math/rand/v2"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/presenced/presenced/internal/wsframe"
	"github.com/presenced/presenced/internal/wsload"
)

// rawSub is one subscriber's socket as the epoll reader (internal/wsload)
// sees it: the client's side of the WebSocket after the handshake and the
// snapshot. Its methods run on the reader's goroutine.
type rawSub struct {
	frames int64      // change frames received
	lat    *latencies // shared by every subscriber of the reader
	closed bool
}

// latencies are the sampled latencies of every subscriber: one HDR
// histogram in nanoseconds (3 significant digits: 0.1%), and the exact
// maximum. The reader's one goroutine records them, and the client reads
// them once the reader has stopped.
type latencies struct {
	h   *hdrhistogram.Histogram
	max time.Duration
}

// maxLatency is the histogram's highest value; a longer latency (none is
// expected) counts as that.
const maxLatency = time.Hour

func newLatencies() *latencies {
	return &latencies{h: hdrhistogram.New(1, int64(maxLatency), 3)}
}

func (l *latencies) record(d time.Duration) {
	d = min(max(d, 0), maxLatency)
	_ = l.h.RecordValue(int64(d))
	l.max = max(l.max, d)
}

// pct is the p-quantile (0 < p <= 1); 1 is the maximum; 0 when empty.
func (l *latencies) pct(p float64) time.Duration {
	if p >= 1 {
		return l.max
	}
	return min(time.Duration(l.h.ValueAtQuantile(100*p)), l.max)
}

func (l *latencies) count() int64 { return l.h.TotalCount() }

// Message counts the change frames of one text message.
func (s *rawSub) Message(_ *wsload.Conn, opcode byte, payload []byte) bool {
	if opcode == wsframe.Text {
		s.message(payload)
	}
	return true
}

func (s *rawSub) Closed(*wsload.Conn, error) { s.closed = true }

var (
	timeKey   = []byte(`"time":"`)
	changeKey = []byte(`"type":"change"`)
)

// message counts the change frames of one message and, in one message in
// 8 chosen at random, samples the latency of each of its frames: all of
// them, since the first frame of a batch waited longest and the last
// least, and at random, since a flush of several messages would otherwise
// always be sampled at the same one. It relies on the bridge's encoding
// (TestWireContract): every change frame has "type":"change" (a "changes"
// batch has "type":"changes", which does not match), and "time" is the
// change's time, the only field of that name.
func (s *rawSub) message(data []byte) {
	k := bytes.Count(data, changeKey)
	s.frames += int64(k)
	if k == 0 || rand.IntN(8) != 0 {
		return
	}
	now := time.Now()
	eachTime(data, func(t time.Time) { s.lat.record(now.Sub(t)) })
}

// eachTime calls f with the "time" of every change frame in data.
func eachTime(data []byte, f func(time.Time)) {
	for {
		i := bytes.Index(data, timeKey)
		if i < 0 {
			return
		}
		data = data[i+len(timeKey):]
		if j := bytes.IndexByte(data, '"'); j > 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(data[:j])); err == nil {
				f(t)
			}
		}
	}
}
