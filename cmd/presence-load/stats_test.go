package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestHist(t *testing.T) {
	ms := int64(time.Millisecond)
	// within is v at the HDR histogram's 3 significant digits, never
	// above the maximum.
	within := func(got time.Duration, want int64, s histSnap) bool {
		return int64(got) <= s.max && int64(got) >= want-want/1000 && int64(got) <= want+want/1000
	}
	for _, tt := range []struct {
		name               string
		in                 []int64
		p50, p90, p99, max int64
	}{
		{"empty", nil, 0, 0, 0, 0},
		{"one", []int64{3 * ms}, 3 * ms, 3 * ms, 3 * ms, 3 * ms},
		{"1..1000 ms", func() (v []int64) {
			for i := int64(1000); i >= 1; i-- {
				v = append(v, i*ms)
			}
			return
		}(), 500 * ms, 900 * ms, 990 * ms, 1000 * ms},
		{"small values are exact", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 5, 9, 10, 10},
		{"negative counts as 0", []int64{-5, -5, -5, 7}, 0, 7, 7, 7},
		{"over an hour: an hour, the maximum exact", []int64{2 * int64(time.Hour)}, int64(time.Hour), int64(time.Hour), int64(time.Hour), 2 * int64(time.Hour)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h hist
			for _, v := range tt.in {
				h.record(v)
			}
			s := h.snap()
			if s.total() != uint64(len(tt.in)) || s.max != tt.max {
				t.Fatalf("total %d max %d, want %d %d", s.total(), s.max, len(tt.in), tt.max)
			}
			for _, c := range []struct {
				p    float64
				want int64
			}{{0.5, tt.p50}, {0.9, tt.p90}, {0.99, tt.p99}} {
				if got := s.pct(c.p); !within(got, c.want, s) {
					t.Errorf("p%v = %d, want %d", 100*c.p, got, c.want)
				}
			}
		})
	}
}

func TestHistSinceAndAdd(t *testing.T) {
	ms := int64(time.Millisecond)
	var a, b hist
	for i := int64(1); i <= 100; i++ {
		a.record(i * ms) // 1..100 ms
	}
	old := a.snap()
	for range 100 {
		a.record(500 * ms)
	}
	iv := a.snap().since(old)
	if iv.total() != 100 || iv.pct(0.5) < time.Duration(499*ms) || iv.pct(0.5) > time.Duration(501*ms) || iv.max != 500*ms {
		t.Fatalf("interval: %d samples, p50 %v, max %d", iv.total(), iv.pct(0.5), iv.max)
	}
	if z := a.snap().since(a.snap()); z.total() != 0 || z.pct(0.5) != 0 {
		t.Fatalf("nothing since itself: %d samples", z.total())
	}
	if whole := a.snap().since(histSnap{}); whole.total() != 200 {
		t.Fatalf("since nothing: %d samples", whole.total())
	}
	b.record(2000 * ms)
	sum := a.snap().add(b.snap()).add(histSnap{})
	if sum.total() != 201 || sum.max != 2000*ms || sum.pct(1) != time.Duration(2000*ms) {
		t.Fatalf("sum: %d samples, max %d, p100 %v", sum.total(), sum.max, sum.pct(1))
	}
	if e := (histSnap{}).add(histSnap{}); e.total() != 0 || e.pct(0.99) != 0 {
		t.Fatal("empty + empty is not empty")
	}
}

// Readers record while the progress line takes snapshots.
func TestHistConcurrent(t *testing.T) {
	var h hist
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				h.record(int64(g*1000 + i))
			}
		}()
	}
	for range 20 {
		_ = h.snap().pct(0.99)
	}
	wg.Wait()
	if s := h.snap(); s.total() != 8000 || s.max != 4999 {
		t.Fatalf("%d samples, max %d", s.total(), s.max)
	}
}

func BenchmarkHistRecord(b *testing.B) {
	var h hist
	for i := range b.N {
		h.record(int64(i%100_000) * 1000)
	}
}

func TestMs(t *testing.T) {
	for _, tt := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0"}, {1234 * time.Microsecond, "1.23"}, {9999 * time.Microsecond, "10.00"},
		{12345 * time.Microsecond, "12.3"}, {123456 * time.Microsecond, "123"}, {13 * time.Second, "13000"},
	} {
		if got := ms(tt.in); got != tt.want {
			t.Errorf("ms(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestParseCPUTargets(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []cpuTarget
		err  bool
	}{
		{"", nil, false},
		{"presenced=12", []cpuTarget{{"presenced", 12}}, false},
		{" presenced=12 , ejabberd=34,", []cpuTarget{{"presenced", 12}, {"ejabberd", 34}}, false},
		{"presenced", nil, true},
		{"=12", nil, true},
		{"p=0", nil, true},
		{"p=-3", nil, true},
		{"p=x", nil, true},
	} {
		got, err := parseCPUTargets(tt.in)
		if (err != nil) != tt.err || len(got) != len(tt.want) {
			t.Errorf("parseCPUTargets(%q) = %v, %v", tt.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("parseCPUTargets(%q) = %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}

func TestGrowth(t *testing.T) {
	a := cpuSample{"x": {1: 100, 2: 50, 3: 10}}
	b := cpuSample{"x": {1: 150, 2: 40, 4: 30}} // 2 went back (a reused pid), 3 died, 4 was born
	if g := growth(a, b, "x"); g != 50+30 {
		t.Fatalf("growth %d, want 80", g)
	}
	if g := growth(a, b, "none"); g != 0 {
		t.Fatalf("growth of nothing %d", g)
	}
	if s := cpuSeconds(cpuSample{"x": {1: 0}}, cpuSample{"x": {1: 250}}, "x"); s != 2.5 {
		t.Fatalf("cpuSeconds %v, want 2.5 (USER_HZ 100)", s)
	}
}

// The /proc readers, on this process and a child of it.
func TestProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatal("no /proc: the tool reads it")
	}
	// Burn a little CPU, so that this process has ticks.
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
	}
	if ticks, ok := procTicks(os.Getpid()); !ok || ticks == 0 {
		t.Fatalf("procTicks(self) = %d, %v", ticks, ok)
	}
	if _, ok := procTicks(1 << 30); ok {
		t.Fatal("procTicks of no process: ok")
	}
	child := exec.Command("sleep", "5")
	if err := child.Start(); err != nil {
		t.Fatal("no sleep(1):", err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	tree := map[int]uint64{}
	treeTicks(os.Getpid(), tree)
	if _, ok := tree[child.Process.Pid]; !ok || len(tree) < 2 {
		t.Fatalf("treeTicks of this process lacks its child %d: %v", child.Process.Pid, tree)
	}
	f, err := os.CreateTemp(t.TempDir(), "w")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w0 := procWrites(os.Getpid())
	for range 3 {
		f.Write([]byte("x"))
	}
	if w1 := procWrites(os.Getpid()); w1-w0 < 3 {
		t.Fatalf("procWrites: %d then %d after 3 writes", w0, w1)
	}
	b0 := machineBusy()
	if b0 == 0 {
		t.Fatal("machineBusy is 0")
	}
	s := sampleCPU([]cpuTarget{{"self", os.Getpid()}})
	for _, k := range []string{"self", "self.writes", "load", "machine"} {
		if len(s[k]) == 0 {
			t.Errorf("sample lacks %s: %v", k, s)
		}
	}
}

// metricsText is presenced's /metrics as the tool sees it, with the
// counters it reads.
const metricsText = `# HELP presence_component_stanzas_total Stanzas received.
# TYPE presence_component_stanzas_total counter
presence_component_stanzas_total{stanza="presence",type="available"} 1500
presence_component_stanzas_total{stanza="presence",type="unavailable"} 75
presence_component_stanzas_total{stanza="iq",type="get"} 9
# HELP presence_tracker_events_total Changes published.
# TYPE presence_tracker_events_total counter
presence_tracker_events_total 1570
# HELP presence_component_presence_limited_total Presence a limit caught.
# TYPE presence_component_presence_limited_total counter
presence_component_presence_limited_total{reason="held"} 4
presence_component_presence_limited_total{reason="too_big"} 1
# HELP presence_tracker_users Known users.
# TYPE presence_tracker_users gauge
presence_tracker_users{domain="x",show="available"} 2000
`

func TestParseProm(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want promCounts
	}{
		{"presenced's counters", metricsText, promCounts{ok: true, presenceIn: 1575, events: 1570, limited: 5}},
		{"none of them", "# TYPE other_total counter\nother_total 3\n", promCounts{ok: true}},
		{"empty", "", promCounts{ok: true}},
		{"untyped", "presence_tracker_events_total 7\n", promCounts{ok: true, events: 7}},
		{"not the text format", "<html>oops</html>\n", promCounts{}},
		{"a broken line", metricsText + "presence_tracker_events_total{\n", promCounts{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseProm(strings.NewReader(tt.in)); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// scrape reads what a real client_golang registry serves, as presenced's
// /metrics does.
func TestScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	stanzas := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presence_component_stanzas_total", Help: "h"}, []string{"stanza", "type"})
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presence_component_presence_limited_total", Help: "h"}, []string{"reason"})
	events := prometheus.NewCounter(prometheus.CounterOpts{Name: "presence_tracker_events_total", Help: "h"})
	reg.MustRegister(stanzas, limited, events)
	stanzas.WithLabelValues("presence", "available").Add(10)
	stanzas.WithLabelValues("presence", "unavailable").Add(2)
	stanzas.WithLabelValues("message", "chat").Add(100)
	limited.WithLabelValues("held").Add(3)
	events.Add(11)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()

	if got, want := scrape(ctx, srv.URL+"/metrics"), (promCounts{ok: true, presenceIn: 12, events: 11, limited: 3}); got != want {
		t.Fatalf("scrape = %+v, want %+v", got, want)
	}
	if got := scrape(ctx, srv.URL+"/nothing"); got.ok {
		t.Fatalf("a 404 scraped: %+v", got)
	}
	if got := scrape(ctx, ""); got.ok {
		t.Fatal("no URL scraped")
	}
	if got := scrape(ctx, "http://127.0.0.1:1/metrics"); got.ok {
		t.Fatal("a closed port scraped")
	}
}
