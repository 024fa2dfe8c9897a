package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/procfs"

	"github.com/presenced/presenced/bridge"
	"github.com/presenced/presenced/internal/wsload"
	"github.com/presenced/presenced/presence"
)

func main() {
	serve := flag.Bool("serve", false, "run the server side (used by the tool itself)")
	subs := flag.Int("subscribers", 1000, "WebSocket subscribers")
	rate := flag.Int("rate", 500, "presence changes per second")
	dur := flag.Duration("duration", 10*time.Second, "how long the changes are offered")
	users := flag.Int("users", 100, "distinct users the changes are spread over (each subscriber's snapshot holds them all)")
	writers := flag.Int("writers", 0, "the server's stream writers (bridge.Config.StreamWriters; 0: its default)")
	flush := flag.Duration("flush", 0, "the server's bridge.Config.StreamFlushInterval (0: its default; negative: none)")
	nap := flag.Duration("nap", 0, "the client's reader polls and sleeps this long between polls (0: it blocks in epoll_wait, woken by each frame)")
	flag.Parse()
	raiseFileLimit()
	if *serve {
		runServer(*users, *writers, *flush)
		return
	}
	res, err := runClient(config{subs: *subs, rate: *rate, dur: *dur, users: *users, writers: *writers, flush: *flush, nap: *nap})
	if err != nil {
		fmt.Fprintln(os.Stderr, "presenced-fanout:", err)
		os.Exit(1)
	}
	fmt.Println(res)
}

// raiseFileLimit lifts the open-files limit to its hard maximum: 10,000
// sockets do not fit the usual 1,024.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// stats is what the server reports about itself.
type stats struct {
	RSS        int64   `json:"rss_bytes"`
	HeapInuse  uint64  `json:"heap_inuse_bytes"` // heap and goroutine stacks in use
	StackInuse uint64  `json:"stack_inuse_bytes"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Goroutines int     `json:"goroutines"`
	Writes     int64   `json:"write_syscalls"` // /proc/self/io syscw
}

func selfStats() stats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	st := stats{HeapInuse: ms.HeapInuse + ms.StackInuse, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine(),
		CPUSeconds: float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9}
	if p, err := procfs.Self(); err == nil {
		if pio, err := p.IO(); err == nil {
			st.Writes = int64(pio.SyscW)
		}
		if ps, err := p.NewStatus(); err == nil {
			st.RSS = int64(ps.VmRSS)
		}
	}
	return st
}

// runServer serves the bridge on a loopback port (printed on stdout) with
// /debug/stats and /debug/load?rate=&seconds= for the client to drive.
func runServer(users, writers int, flush time.Duration) {
	tr := presence.New(presence.Options{})
	jids := make([]string, users)
	for i := range jids {
		jids[i] = fmt.Sprintf("user%d@example.org", i)
		tr.Apply(presence.Update{User: jids[i], Resource: "pc", Available: true})
	}
	b := bridge.New(bridge.Config{Tracker: tr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		RatePerSecond: 1e6, RateBurst: 1e6, StreamWriters: writers, StreamFlushInterval: flush})
	mux := http.NewServeMux()
	mux.Handle("/v1/", b)
	mux.HandleFunc("/debug/heap", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		pprof.Lookup("heap").WriteTo(w, 0)
	})
	mux.HandleFunc("/debug/stats", func(w http.ResponseWriter, r *http.Request) {
		// Several collections: each may halve an idle goroutine's stack,
		// grown while it encoded its snapshot.
		for range 4 {
			runtime.GC()
		}
		json.NewEncoder(w).Encode(selfStats())
	})
	mux.HandleFunc("/debug/load", func(w http.ResponseWriter, r *http.Request) {
		if path := os.Getenv("FANOUT_CPU_PROFILE"); path != "" {
			if f, err := os.Create(path); err == nil {
				pprof.StartCPUProfile(f)
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
		rate, _ := strconv.Atoi(r.URL.Query().Get("rate"))
		secs, _ := strconv.ParseFloat(r.URL.Query().Get("seconds"), 64)
		// Changes in 10 ms slices, each a new status for the next user.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		n, total := 0, int(float64(rate)*secs)
		start := time.Now()
		for now := start; n < total; now = <-tick.C {
			for due := min(total, int(float64(rate)*now.Sub(start).Seconds())); n < due; n++ {
				tr.Apply(presence.Update{User: jids[n%users], Resource: "pc", Available: true, Status: strconv.Itoa(n)})
			}
		}
		fmt.Fprintln(w, n)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b.Start(context.Background())
	fmt.Println(ln.Addr().String())
	http.Serve(ln, mux)
}

func getStats(base string) (stats, error) {
	var st stats
	resp, err := http.Get(base + "/debug/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// config is one run's settings (the flags).
type config struct {
	subs, rate     int
	dur            time.Duration
	users, writers int
	flush, nap     time.Duration
}

// result is what one run measured.
type result struct {
	subs, rate            int
	offered               int
	delivered             int64
	loadTime              time.Duration
	p50, p99, max         time.Duration
	samples               int64   // latencies sampled
	idleBytes, idleStacks float64 // per connection
	idleRSS               float64 // per connection
	serverCPU, clientCPU  float64 // seconds
	serverWrites          int64
}

func (r result) expected() int64 { return int64(r.offered) * int64(r.subs) }

// String is the line of key=value pairs the tool prints.
func (r result) String() string {
	return fmt.Sprintf("subscribers=%d rate=%d offered=%d expected=%d delivered=%d deliveries_per_s=%.0f p50=%v p99=%v max=%v "+
		"idle_bytes_per_conn=%.0f (stacks %.0f) idle_rss_per_conn=%.0f server_cpu_s=%.1f client_cpu_s=%.1f load_s=%.1f server_writes=%d",
		r.subs, r.rate, r.offered, r.expected(), r.delivered, float64(r.delivered)/r.loadTime.Seconds(),
		r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.max.Round(time.Millisecond),
		r.idleBytes, r.idleStacks, r.idleRSS, r.serverCPU, r.clientCPU, r.loadTime.Seconds(), r.serverWrites)
}

func runClient(cfg config) (result, error) {
	n := cfg.subs
	res := result{subs: n, rate: cfg.rate}
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	srv := exec.Command(self, "-serve", "-users", strconv.Itoa(cfg.users), "-writers", strconv.Itoa(cfg.writers), "-flush", cfg.flush.String())
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := srv.Start(); err != nil {
		return res, err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return res, fmt.Errorf("server did not start: %w", err)
	}
	base := "http://" + strings.TrimSpace(addr)
	before, err := getStats(base)
	if err != nil {
		return res, err
	}

	// Connect and read each snapshot with a WebSocket library, then hand
	// the sockets to one epoll reader (internal/wsload), which owns them
	// from then on.
	//
	// The sockets are lent to the reader as the *os.File of
	// TCPConn.File, as the tool always read them, and that file is
	// registered with Go's own poller, which then sees every frame too. It
	// costs the client CPU (1,000 subscribers × 500 changes/s for 3 s:
	// 1.2–1.5 s against 0.8–0.9 s for a bare dup(2) that Go never sees)
	// and, through the shared cores, the server (1.0–1.1 s against 0.8 s);
	// the numbers in docs/benchmarks.md were measured so, and stay
	// comparable.
	files := make([]*os.File, n)
	defer func() { // after the reader stopped
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	reader, err := wsload.New(wsload.Options{Raw: true, Nap: cfg.nap})
	if err != nil {
		return res, err
	}
	defer reader.Stop()
	lat := newLatencies()
	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	all := make([]*rawSub, n)
	connected := make(chan error, n)
	sem := make(chan struct{}, 64) // connect 64 at a time
	for i := range all {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, _, err := dialer.Dial("ws://"+strings.TrimPrefix(base, "http://")+"/v1/stream", nil)
			if err != nil {
				connected <- err
				return
			}
			defer c.Close()
			if _, _, err := c.ReadMessage(); err != nil { // the snapshot
				connected <- fmt.Errorf("snapshot: %w", err)
				return
			}
			f, err := c.NetConn().(*net.TCPConn).File() // a duplicate, kept open
			if err != nil {
				connected <- err
				return
			}
			files[i] = f
			all[i] = &rawSub{lat: lat}
			reader.Lend(int(f.Fd()), nil, all[i])
			connected <- nil
		}()
	}
	for range n {
		if err := <-connected; err != nil {
			return res, fmt.Errorf("connect: %w", err)
		}
	}
	readerDone := make(chan error, 1)
	go func() { readerDone <- reader.Run() }()
	time.Sleep(2 * time.Second) // snapshots delivered, connections idle
	idle, err := getStats(base)
	if err != nil {
		return res, err
	}
	if path := os.Getenv("FANOUT_HEAP_PROFILE"); path != "" {
		if resp, err := http.Get(base + "/debug/heap"); err == nil {
			f, _ := os.Create(path)
			io.Copy(f, resp.Body)
			f.Close()
			resp.Body.Close()
		}
	}
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	resp, err := http.Get(fmt.Sprintf("%s/debug/load?rate=%d&seconds=%f", base, cfg.rate, cfg.dur.Seconds()))
	if err != nil {
		return res, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	res.offered, _ = strconv.Atoi(strings.TrimSpace(string(body)))
	res.loadTime = time.Since(start)
	time.Sleep(time.Second) // let the last frames arrive
	after, _ := getStats(base)
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	reader.Stop()
	if err := <-readerDone; err != nil {
		return res, fmt.Errorf("reader: %w", err)
	}

	for _, s := range all {
		res.delivered += s.frames
	}
	res.p50, res.p99, res.max, res.samples = lat.pct(0.5), lat.pct(0.99), lat.pct(1), lat.count()
	res.clientCPU = float64((ru1.Utime.Nano()+ru1.Stime.Nano())-(ru0.Utime.Nano()+ru0.Stime.Nano())) / 1e9
	res.idleBytes = float64(int64(idle.HeapInuse)-int64(before.HeapInuse)) / float64(n)
	res.idleStacks = float64(int64(idle.StackInuse)-int64(before.StackInuse)) / float64(n)
	res.idleRSS = float64(idle.RSS-before.RSS) / float64(n)
	res.serverCPU = after.CPUSeconds - idle.CPUSeconds
	res.serverWrites = after.Writes - idle.Writes
	return res, nil
}
