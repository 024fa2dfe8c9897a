package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "presence-load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "presence-load:", err)
		os.Exit(1)
	}
}

// options are the tool's settings (see parseFlags for each one's meaning).
type options struct {
	C2S, Domain                  string
	Users, UserStart             int
	UserPattern, PasswordPattern string
	Rate, Churn                  float64
	Offline, Duration            time.Duration
	Subscribers                  int
	Stream, Token                string
	LoginConcurrency             int
	LoginRate                    float64
	LoginTimeout                 time.Duration
	ConnectConcurrency, Readers  int
	Progress, Drain              time.Duration
	CPU                          []cpuTarget
	Metrics                      string
	Out                          io.Writer // the summary; progress and errors go to stderr
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("presence-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: presence-load -c2s HOST:PORT -users N -rate R -subscribers M -stream ws://HOST:PORT/v1/stream [flags]")
		fs.PrintDefaults()
	}
	var o options
	fs.StringVar(&o.C2S, "c2s", os.Getenv("XMPP_C2S_ADDR"), "the XMPP server's client listener, host:port (XMPP_C2S_ADDR)")
	fs.StringVar(&o.Domain, "domain", envOr("XMPP_DOMAIN", "localhost"), "the users' domain (XMPP_DOMAIN)")
	fs.IntVar(&o.Users, "users", 100, "how many users log in, each over its own c2s connection")
	fs.IntVar(&o.UserStart, "user-start", 1, "the number of the first user")
	fs.StringVar(&o.UserPattern, "user", "user%d", "user name (local part) pattern; %d is the user's number")
	fs.StringVar(&o.PasswordPattern, "password", "pass%d", "password pattern; %d is the user's number")
	fs.Float64Var(&o.Rate, "rate", 100, "presence changes per second, all users together (status changes, logouts and logins)")
	fs.Float64Var(&o.Churn, "churn", 0.05, "fraction of the changes that are logouts; each such user logs in again after -offline (as many logins)")
	fs.DurationVar(&o.Offline, "offline", 5*time.Second, "how long a user who logged out stays offline")
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "how long the load runs (after every user logged in)")
	fs.IntVar(&o.Subscribers, "subscribers", 10, "WebSocket dashboard subscribers to the stream")
	fs.StringVar(&o.Stream, "stream", "ws://127.0.0.1:8080/v1/stream", "presenced's WebSocket stream URL")
	fs.StringVar(&o.Token, "token", os.Getenv("PRESENCE_LOAD_TOKEN"), "JWT sent as Authorization: Bearer (PRESENCE_LOAD_TOKEN); empty: none")
	fs.IntVar(&o.LoginConcurrency, "login-concurrency", 32, "logins in progress at once")
	fs.Float64Var(&o.LoginRate, "login-rate", 0, "at most this many logins started per second at the start; 0: only -login-concurrency limits them")
	fs.DurationVar(&o.LoginTimeout, "login-timeout", 30*time.Second, "time limit of one login (and of one presence send)")
	fs.IntVar(&o.ConnectConcurrency, "connect-concurrency", 16, "WebSocket handshakes in progress at once")
	fs.IntVar(&o.Readers, "readers", 1, "goroutines (epoll loops) reading the WebSocket subscribers")
	fs.DurationVar(&o.Progress, "progress", 5*time.Second, "interval of the progress lines")
	fs.DurationVar(&o.Drain, "drain", 15*time.Second, "after the load, how long at most to wait for the last frames")
	cpu := fs.String("cpu", "", "processes whose CPU time to measure over the load, name=pid,... (each with its descendants); presenced and ejabberd also give their ratio")
	fs.StringVar(&o.Metrics, "metrics", "", "presenced's Prometheus endpoint, e.g. http://127.0.0.1:9464/metrics, to count what presenced received; empty: not read")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var err error
	if o.CPU, err = parseCPUTargets(*cpu); err != nil {
		return o, err
	}
	o.Out = os.Stdout
	return o, o.check()
}

func (o options) check() error {
	switch {
	case o.C2S == "":
		return errors.New("-c2s (XMPP_C2S_ADDR) is required")
	case o.Users < 1:
		return errors.New("-users must be at least 1")
	case !strings.Contains(o.UserPattern, "%d") && o.Users > 1:
		return errors.New("-user must contain %d when -users is above 1")
	case o.Rate <= 0:
		return errors.New("-rate must be positive")
	case o.Churn < 0 || o.Churn > 0.5:
		return errors.New("-churn must be between 0 and 0.5")
	case o.Duration <= 0 || o.Offline < 0 || o.LoginTimeout <= 0 || o.Progress <= 0 || o.Drain < 0:
		return errors.New("-duration, -login-timeout and -progress must be positive; -offline and -drain not negative")
	case o.Subscribers < 0:
		return errors.New("-subscribers must not be negative")
	case o.LoginConcurrency < 1 || o.ConnectConcurrency < 1 || o.Readers < 1:
		return errors.New("-login-concurrency, -connect-concurrency and -readers must be at least 1")
	case o.LoginRate < 0:
		return errors.New("-login-rate must not be negative")
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// errorf logs an error line of a kind, at most 5 per kind every 10 s (a
// server that goes away fails every login at once); the lines left out
// are counted in the next one of that kind.
func errorf(kind, format string, args ...any) {
	errLog.Lock()
	defer errLog.Unlock()
	if errLog.kinds == nil {
		errLog.kinds = map[string]*errKind{}
	}
	k := errLog.kinds[kind]
	if k == nil {
		k = &errKind{}
		errLog.kinds[kind] = k
	}
	if now := time.Now(); now.Sub(k.since) > 10*time.Second {
		k.since, k.n = now, 0
	}
	if k.n++; k.n > 5 {
		k.skipped++
		return
	}
	if k.skipped > 0 {
		format += fmt.Sprintf(" (and %d more such errors not shown)", k.skipped)
		k.skipped = 0
	}
	logf(format, args...)
}

var errLog struct {
	sync.Mutex
	kinds map[string]*errKind
}

type errKind struct {
	since      time.Time
	n, skipped int
}

// logf writes a progress or error line to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+" presence-load: "+format+"\n", args...)
}
