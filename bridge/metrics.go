package bridge

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the bridge's Prometheus series; nil when no Registerer was
// configured.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	closed   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, b *Bridge) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presence_bridge_requests_total",
			Help: "HTTP requests to the bridge, by route pattern and status code (101 for WebSocket upgrades).",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "presence_bridge_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern (for the stream: until the upgrade).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}, []string{"route"}),
	}
	m.closed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "presence_bridge_stream_closed_total",
		Help: "WebSocket stream connections the server ended, by reason: slow (its queue filled, close 4008), write_error (a write failed or timed out), protocol (the client broke RFC 6455: close 1002, 1003, 1007 or 1009).",
	}, []string{"reason"})
	reg.MustRegister(m.requests, m.latency, m.closed, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "presence_bridge_websocket_connections",
		Help: "WebSocket stream clients connected now.",
	}, func() float64 {
		b.hub.mu.Lock()
		defer b.hub.mu.Unlock()
		return float64(len(b.hub.conns))
	}), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "presence_bridge_stream_flush_interval_seconds",
		Help: "The least time between two writes of changes to a stream client now: the configured interval, stretched under a heavy fan-out.",
	}, func() float64 {
		b.hub.mu.Lock()
		defer b.hub.mu.Unlock()
		return b.hub.interval.Seconds()
	}), prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "presence_bridge_snapshot_encodes_total",
		Help: "WebSocket snapshot frames encoded: for clients of the full feed, one shared by the connects of a second or so (or of as long as it took to encode); for others, one per connect, subscribe or resync.",
	}, func() float64 { return float64(b.snapshots.encodes.Load()) }), prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "presence_bridge_snapshot_shared_total",
		Help: "WebSocket connects that got a snapshot frame encoded for another connect (snapshot.go), with the changes after it replayed.",
	}, func() float64 { return float64(b.snapshots.shared.Load()) }))
	return m
}

// streamClosed counts a stream connection the server ended.
func (m *metrics) streamClosed(reason string) {
	if m != nil {
		m.closed.WithLabelValues(reason).Inc()
	}
}

// instrument counts and times the requests of one route.
func (m *metrics) instrument(route string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	latency := m.latency.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		latency.Observe(time.Since(began).Seconds())
		m.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
	})
}

// statusRecorder remembers the status code; it lets WebSocket upgrades
// hijack the connection (recorded as 101).
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("bridge: the connection cannot be hijacked")
	}
	s.code = http.StatusSwitchingProtocols
	return h.Hijack()
}
