package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/procfs"
)

// hist is a latency histogram in nanoseconds: an HDR histogram
// (hdrhistogram-go, 3 significant digits: 0.1% resolution) and the exact
// maximum, behind a mutex, since the stream readers, the logins and the
// progress line use one from several goroutines. The zero value is empty
// and ready.
type hist struct {
	mu  sync.Mutex
	h   *hdrhistogram.Histogram // nil until the first record
	max int64
}

// histMax is the highest value a histogram holds; longer ones (none is
// expected: logins time out after -login-timeout) count as that, the
// maximum excepted.
const histMax = int64(time.Hour)

func newHDR() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMax, 3) }

func (h *hist) record(d int64) {
	v := min(max(d, 0), histMax)
	h.mu.Lock()
	if h.h == nil {
		h.h = newHDR()
	}
	_ = h.h.RecordValue(v)
	h.max = max(h.max, d)
	h.mu.Unlock()
}

// histSnap is a copy of a histogram, to subtract and read percentiles
// from. The zero value is empty.
type histSnap struct {
	h   *hdrhistogram.Histogram // nil: empty
	max int64
}

func (h *hist) snap() histSnap {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h == nil {
		return histSnap{max: h.max}
	}
	return histSnap{h: hdrhistogram.Import(h.h.Export()), max: h.max}
}

// combine is a's counts plus sign times b's (histograms made by newHDR,
// whose counts have one layout; nil is empty).
func combine(a, b *hdrhistogram.Histogram, sign int64) *hdrhistogram.Histogram {
	if a == nil && b == nil {
		return nil
	}
	var out *hdrhistogram.Snapshot
	if a != nil {
		out = a.Export()
	} else {
		out = newHDR().Export()
	}
	if b != nil {
		for i, c := range b.Export().Counts {
			out.Counts[i] += sign * c
		}
	}
	return hdrhistogram.Import(out)
}

// since is the histogram of what was recorded after old (max excepted:
// it stays the overall one).
func (s histSnap) since(old histSnap) histSnap {
	return histSnap{h: combine(s.h, old.h, -1), max: s.max}
}

func (s histSnap) add(o histSnap) histSnap {
	return histSnap{h: combine(s.h, o.h, 1), max: max(s.max, o.max)}
}

func (s histSnap) total() uint64 {
	if s.h == nil {
		return 0
	}
	return uint64(s.h.TotalCount())
}

// pct is the p-quantile (0 < p <= 1) as the highest value of its HDR
// bucket, at most the maximum; 0 when empty.
func (s histSnap) pct(p float64) time.Duration {
	if s.total() == 0 {
		return 0
	}
	return time.Duration(min(s.h.ValueAtQuantile(100*p), max(s.max, 0)))
}

// ms formats a duration in milliseconds with a sensible precision.
func ms(d time.Duration) string {
	v := float64(d) / 1e6
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// --- CPU of other processes ------------------------------------------------

// cpuTarget is a process whose CPU time is measured over the load window,
// with its descendants (PostgreSQL's backends, the Erlang VM's helpers).
type cpuTarget struct {
	name string
	pid  int
}

func parseCPUTargets(s string) ([]cpuTarget, error) {
	var out []cpuTarget
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, p, ok := strings.Cut(part, "=")
		pid, err := strconv.Atoi(p)
		if !ok || name == "" || err != nil || pid <= 0 {
			return nil, fmt.Errorf("-cpu: %q is not name=pid", part)
		}
		out = append(out, cpuTarget{name, pid})
	}
	return out, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports (procfs assumes the same).
const clockTicks = 100

// procFS is /proc, through github.com/prometheus/procfs.
var procFS = sync.OnceValues(procfs.NewDefaultFS)

func proc(pid int) (procfs.Proc, bool) {
	fs, err := procFS()
	if err != nil {
		return procfs.Proc{}, false
	}
	p, err := fs.Proc(pid)
	return p, err == nil
}

// procTicks is utime+stime of pid (/proc/PID/stat).
func procTicks(pid int) (uint64, bool) {
	p, ok := proc(pid)
	if !ok {
		return 0, false
	}
	st, err := p.Stat()
	if err != nil {
		return 0, false
	}
	return uint64(st.UTime) + uint64(st.STime), true
}

// treeTicks sums procTicks over pid and its living descendants, per pid.
// The children are read from /proc/PID/task/*/children, which procfs has
// no reader for (finding them by every process's parent would read all
// of /proc at each sample).
func treeTicks(pid int, into map[int]uint64) {
	t, ok := procTicks(pid)
	if !ok {
		return
	}
	into[pid] = t
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(data)) {
			if cp, err := strconv.Atoi(c); err == nil {
				if _, seen := into[cp]; !seen {
					treeTicks(cp, into)
				}
			}
		}
	}
}

// cpuSample is the CPU ticks of every process of each target's tree.
type cpuSample map[string]map[int]uint64

func sampleCPU(targets []cpuTarget) cpuSample {
	out := cpuSample{}
	for _, t := range targets {
		m := map[int]uint64{}
		treeTicks(t.pid, m)
		out[t.name] = m
		w := map[int]uint64{}
		for pid := range m {
			w[pid] = procWrites(pid)
		}
		out[t.name+".writes"] = w
	}
	self := map[int]uint64{}
	if t, ok := procTicks(os.Getpid()); ok {
		self[os.Getpid()] = t
	}
	out["load"] = self
	out["machine"] = map[int]uint64{0: machineBusy()}
	return out
}

// machineBusy is the CPU time processes of the whole machine used (user,
// nice and system in /proc/stat; not interrupts, which the kernel may not
// charge to any process), in clock ticks.
func machineBusy() uint64 {
	fs, err := procFS()
	if err != nil {
		return 0
	}
	st, err := fs.Stat()
	if err != nil {
		return 0
	}
	c := st.CPUTotal // in seconds: ticks / clockTicks
	return uint64(math.Round((c.User + c.Nice + c.System) * clockTicks))
}

// procWrites is the write system calls pid made (syscw in /proc/PID/io).
func procWrites(pid int) uint64 {
	p, ok := proc(pid)
	if !ok {
		return 0
	}
	pio, err := p.IO()
	if err != nil {
		return 0
	}
	return pio.SyscW
}

// growth is how much a counter of key's processes grew between a and b:
// per process alive at b, minus what it had at a (all of it for processes
// born meanwhile).
func growth(a, b cpuSample, key string) uint64 {
	var n uint64
	for pid, vb := range b[key] {
		if va, ok := a[key][pid]; ok && va <= vb {
			n += vb - va
		} else if !ok {
			n += vb
		}
	}
	return n
}

// cpuSeconds is the CPU a target used between a and b.
func cpuSeconds(a, b cpuSample, name string) float64 {
	return float64(growth(a, b, name)) / clockTicks
}

// --- presenced's Prometheus endpoint ------------------------------------------

// promCounts are the presenced counters the tool reads around the window.
type promCounts struct {
	ok         bool
	presenceIn float64 // presence_component_stanzas_total{stanza="presence"}, all types
	events     float64 // presence_tracker_events_total
	limited    float64 // presence_component_presence_limited_total
}

func scrape(ctx context.Context, url string) promCounts {
	var pc promCounts
	if url == "" {
		return pc
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return pc
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return pc
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return pc
	}
	return parseProm(io.LimitReader(resp.Body, 64<<20))
}

// parseProm reads the counters out of Prometheus's text format
// (expfmt's parser); ok is false when the text does not parse.
func parseProm(r io.Reader) promCounts {
	var pc promCounts
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return pc
	}
	for _, m := range families["presence_component_stanzas_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "stanza" && l.GetValue() == "presence" {
				pc.presenceIn += value(m)
			}
		}
	}
	for _, m := range families["presence_tracker_events_total"].GetMetric() {
		pc.events += value(m)
	}
	for _, m := range families["presence_component_presence_limited_total"].GetMetric() {
		pc.limited += value(m)
	}
	pc.ok = true
	return pc
}

// value is a sample's value, whatever its family's type.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}
