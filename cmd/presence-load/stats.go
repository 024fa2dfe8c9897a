package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// hist is a latency histogram in nanoseconds with about 1.6% resolution
// (64 sub-buckets per power of two, as HDR histograms do), safe for
// concurrent recording: every bucket is an atomic counter, so readers
// record without locks and the progress line can take a copy at any time.
type hist struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64
}

const (
	histSub     = 64
	histBuckets = 64 * histSub // up to 2^63 ns
)

func bucketOf(v int64) int {
	if v < 2*histSub {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - 7 // keep the 7 top bits: a value in [64, 128)
	return min((e+1)*histSub+int(uint64(v)>>e)-histSub, histBuckets-1)
}

// bucketHigh is the largest value bucket b holds.
func bucketHigh(b int) int64 {
	if b < 2*histSub {
		return int64(b)
	}
	e := b/histSub - 1
	m := int64(b%histSub + histSub)
	return (m+1)<<e - 1
}

func (h *hist) record(d int64) {
	h.counts[bucketOf(d)].Add(1)
	for {
		m := h.max.Load()
		if d <= m || h.max.CompareAndSwap(m, d) {
			return
		}
	}
}

// histSnap is a copy of a histogram, to subtract and read percentiles from.
type histSnap struct {
	counts []uint64
	max    int64
}

func (h *hist) snap() histSnap {
	s := histSnap{counts: make([]uint64, histBuckets), max: h.max.Load()}
	for i := range h.counts {
		s.counts[i] = h.counts[i].Load()
	}
	return s
}

// since is the histogram of what was recorded after old (max excepted:
// it stays the overall one).
func (s histSnap) since(old histSnap) histSnap {
	out := histSnap{counts: make([]uint64, len(s.counts)), max: s.max}
	for i := range s.counts {
		out.counts[i] = s.counts[i]
		if old.counts != nil {
			out.counts[i] -= old.counts[i]
		}
	}
	return out
}

func (s histSnap) add(o histSnap) histSnap {
	out := histSnap{counts: make([]uint64, histBuckets), max: max(s.max, o.max)}
	for i := range out.counts {
		if s.counts != nil {
			out.counts[i] += s.counts[i]
		}
		if o.counts != nil {
			out.counts[i] += o.counts[i]
		}
	}
	return out
}

func (s histSnap) total() uint64 {
	var n uint64
	for _, c := range s.counts {
		n += c
	}
	return n
}

// pct is the p-quantile (0 < p <= 1) as the upper bound of its bucket;
// 0 when empty.
func (s histSnap) pct(p float64) time.Duration {
	n := s.total()
	if n == 0 {
		return 0
	}
	rank := uint64(p*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i, c := range s.counts {
		if seen += c; seen >= rank {
			return time.Duration(min(bucketHigh(i), max(s.max, 0)))
		}
	}
	return time.Duration(s.max)
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
// Linux architecture Go supports.
const clockTicks = 100

// procTicks is utime+stime of pid (fields 14 and 15 of /proc/PID/stat).
func procTicks(pid int) (uint64, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	return u + st, err1 == nil && err2 == nil
}

// treeTicks sums procTicks over pid and its living descendants, per pid.
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
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy uint64
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i < 3 {
			busy += n
		}
	}
	return busy
}

// procWrites is the write system calls pid made (syscw in /proc/PID/io).
func procWrites(pid int) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
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
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		switch {
		case strings.HasPrefix(name, "presence_component_stanzas_total{") && strings.Contains(name, `stanza="presence"`):
			pc.presenceIn += v
		case name == "presence_tracker_events_total":
			pc.events = v
		case strings.HasPrefix(name, "presence_component_presence_limited_total"):
			pc.limited += v
		}
	}
	pc.ok = sc.Err() == nil
	return pc
}
