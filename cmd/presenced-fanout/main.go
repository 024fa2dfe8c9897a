package main

import (
	"bufio"
	"bytes"
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/bridge"
	"github.com/presenced/presenced/presence"
)

func main() {
	serve := flag.Bool("serve", false, "run the server side (used by the tool itself)")
	subs := flag.Int("subscribers", 1000, "WebSocket subscribers")
	rate := flag.Int("rate", 500, "presence changes per second")
	dur := flag.Duration("duration", 10*time.Second, "how long the changes are offered")
	users := flag.Int("users", 100, "distinct users the changes are spread over (each subscriber's snapshot holds them all)")
	flag.Parse()
	raiseFileLimit()
	if *serve {
		runServer(*users)
		return
	}
	if err := runClient(*subs, *rate, *dur, *users); err != nil {
		fmt.Fprintln(os.Stderr, "presenced-fanout:", err)
		os.Exit(1)
	}
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
}

func selfStats() stats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	st := stats{HeapInuse: ms.HeapInuse + ms.StackInuse, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine(),
		CPUSeconds: float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9}
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				st.RSS = kb * 1024
			}
		}
	}
	return st
}

// runServer serves the bridge on a loopback port (printed on stdout) with
// /debug/stats and /debug/load?rate=&seconds= for the client to drive.
func runServer(users int) {
	tr := presence.New(presence.Options{})
	jids := make([]string, users)
	for i := range jids {
		jids[i] = fmt.Sprintf("user%d@example.org", i)
		tr.Apply(presence.Update{User: jids[i], Resource: "pc", Available: true})
	}
	b := bridge.New(bridge.Config{Tracker: tr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		RatePerSecond: 1e6, RateBurst: 1e6})
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
		end := time.Now().Add(time.Duration(secs * float64(time.Second)))
		n, i := 0, 0
		for now := time.Now(); now.Before(end); now = <-tick.C {
			for due := int(float64(rate) * time.Since(end.Add(-time.Duration(secs*float64(time.Second)))).Seconds()); n < due; n++ {
				tr.Apply(presence.Update{User: jids[i%users], Resource: "pc", Available: true, Status: strconv.Itoa(n)})
				i++
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

// subscriber counts what it receives and samples latencies.
type subscriber struct {
	frames atomic.Int64
	mu     sync.Mutex
	lat    []time.Duration
}

var (
	timeKey   = []byte(`"time":"`)
	changeKey = []byte(`"type":"change"`)
)

func runClient(n, rate int, dur time.Duration, users int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	srv := exec.Command(self, "-serve", "-users", strconv.Itoa(users))
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Process.Kill()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("server did not start: %w", err)
	}
	base := "http://" + strings.TrimSpace(addr)
	before, err := getStats(base)
	if err != nil {
		return err
	}

	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	all := make([]*subscriber, n)
	var wg sync.WaitGroup
	connected := make(chan error, n)
	var conns []*websocket.Conn
	var connsMu sync.Mutex
	sem := make(chan struct{}, 64) // connect 64 at a time
	for i := range all {
		s := &subscriber{}
		all[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			c, _, err := dialer.Dial("ws://"+strings.TrimPrefix(base, "http://")+"/v1/stream", nil)
			<-sem
			connected <- err
			if err != nil {
				return
			}
			connsMu.Lock()
			conns = append(conns, c)
			connsMu.Unlock()
			sample := 0
			var buf bytes.Buffer
			for {
				_, r, err := c.NextReader()
				if err == nil {
					// One buffer per subscriber: the load client must cost as
					// little as possible, it shares the cores with the server.
					buf.Reset()
					_, err = buf.ReadFrom(r)
				}
				data := buf.Bytes()
				if err != nil {
					if os.Getenv("FANOUT_DEBUG") != "" {
						fmt.Fprintln(os.Stderr, "read:", err)
					}
					return
				}
				if os.Getenv("FANOUT_DEBUG") != "" && sample < 3 {
					fmt.Fprintf(os.Stderr, "msg %.120s\n", data)
				}
				now := time.Now()
				k := bytes.Count(data, changeKey)
				s.frames.Add(int64(k))
				// One latency sample per message in 8: the first frame's time.
				if sample++; k > 0 && sample%8 == 0 {
					if i := bytes.Index(data, timeKey); i >= 0 {
						rest := data[i+len(timeKey):]
						if j := bytes.IndexByte(rest, '"'); j > 0 {
							if t, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
								s.mu.Lock()
								s.lat = append(s.lat, now.Sub(t))
								s.mu.Unlock()
							}
						}
					}
				}
			}
		}()
	}
	for range n {
		if err := <-connected; err != nil {
			return fmt.Errorf("connect: %w", err)
		}
	}
	time.Sleep(2 * time.Second) // snapshots delivered, connections idle
	idle, err := getStats(base)
	if err != nil {
		return err
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
	resp, err := http.Get(fmt.Sprintf("%s/debug/load?rate=%d&seconds=%f", base, rate, dur.Seconds()))
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	offered, _ := strconv.Atoi(strings.TrimSpace(string(body)))
	loadTime := time.Since(start)
	time.Sleep(time.Second) // let the last frames arrive
	after, _ := getStats(base)
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)

	var delivered int64
	var lats []time.Duration
	for _, s := range all {
		delivered += s.frames.Load()
		lats = append(lats, s.lat...)
	}
	slices.Sort(lats)
	pct := func(p float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(p*float64(len(lats))))]
	}
	clientCPU := float64((ru1.Utime.Nano()+ru1.Stime.Nano())-(ru0.Utime.Nano()+ru0.Stime.Nano())) / 1e9
	fmt.Printf("subscribers=%d rate=%d offered=%d expected=%d delivered=%d deliveries_per_s=%.0f p50=%v p99=%v max=%v "+
		"idle_bytes_per_conn=%.0f (stacks %.0f) idle_rss_per_conn=%.0f server_cpu_s=%.1f client_cpu_s=%.1f load_s=%.1f\n",
		n, rate, offered, int64(offered)*int64(n), delivered, float64(delivered)/loadTime.Seconds(),
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond),
		float64(int64(idle.HeapInuse)-int64(before.HeapInuse))/float64(n), float64(int64(idle.StackInuse)-int64(before.StackInuse))/float64(n),
		float64(idle.RSS-before.RSS)/float64(n), after.CPUSeconds-idle.CPUSeconds, clientCPU, loadTime.Seconds())
	connsMu.Lock()
	for _, c := range conns {
		c.Close()
	}
	connsMu.Unlock()
	wg.Wait()
	return nil
}
