package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/internal/xmppclient"
)

func main() {
	c2s := flag.String("c2s", os.Getenv("XMPP_C2S_ADDR"), "the server's client listener, host:port (XMPP_C2S_ADDR)")
	domain := flag.String("domain", envOr("XMPP_DOMAIN", "localhost"), "the users' domain (XMPP_DOMAIN)")
	users := flag.String("users", "", "comma-separated user:password pairs")
	interval := flag.Duration("interval", 4*time.Second, "mean time between two actions of one user")
	duration := flag.Duration("duration", 0, "stop after this long; 0 runs until interrupted")
	hold := flag.Bool("hold", false, "log each user in once, send one presence, then do nothing (tests freeze such a process)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *c2s == "" || *users == "" || *interval <= 0 {
		fmt.Fprintln(os.Stderr, "presenced-sim: -c2s, -users and a positive -interval are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	var wg sync.WaitGroup
	for _, pair := range strings.Split(*users, ",") {
		name, pass, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok {
			fmt.Fprintf(os.Stderr, "presenced-sim: %q is not user:password\n", pair)
			os.Exit(2)
		}
		j, err := jid.New(name, *domain, "")
		if err != nil {
			fmt.Fprintf(os.Stderr, "presenced-sim: bad user %q: %v\n", name, err)
			os.Exit(2)
		}
		p := &person{addr: *c2s, jid: j, pass: pass, interval: *interval, hold: *hold, log: log.With("user", j.String())}
		wg.Add(1)
		go func() { defer wg.Done(); p.live(ctx) }()
	}
	wg.Wait()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var (
	shows    = []string{"", "", "away", "chat", "dnd", "xa"}
	statuses = []string{"", "at my desk", "in a meeting", "lunch", "focus time", "on a call", "back soon"}
)

// person is one simulated user with up to two resources.
type person struct {
	addr     string
	jid      jid.JID
	pass     string
	interval time.Duration
	hold     bool
	log      *slog.Logger

	desktop, phone *xmppclient.Client
}

func (p *person) live(ctx context.Context) {
	defer p.logout("desktop", &p.desktop)
	defer p.logout("phone", &p.phone)
	if p.hold {
		p.login(ctx, "desktop", &p.desktop, xmppclient.Presence{Status: "holding"})
		<-ctx.Done()
		return
	}
	for {
		p.act(ctx)
		wait := p.interval/2 + rand.N(p.interval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// act does one random thing a person does.
func (p *person) act(ctx context.Context) {
	gone := func(c *xmppclient.Client) bool {
		if c == nil {
			return true
		}
		select {
		case <-c.Done():
			return true // the server closed it (for example, a restart)
		default:
			return false
		}
	}
	if gone(p.desktop) {
		p.desktop = nil
	}
	if gone(p.phone) {
		p.phone = nil
	}
	switch r := rand.N(100); {
	case p.desktop == nil:
		p.login(ctx, "desktop", &p.desktop, xmppclient.Presence{Priority: 5})
	case r < 55:
		pr := xmppclient.Presence{Show: shows[rand.N(len(shows))], Status: statuses[rand.N(len(statuses))], Priority: 5}
		if err := p.desktop.Presence(ctx, pr); err == nil {
			p.log.Info("sim: presence", "resource", "desktop", "show", pr.Show, "status", pr.Status)
		}
	case r < 75 && p.phone == nil:
		p.login(ctx, "phone", &p.phone, xmppclient.Presence{Show: "away", Status: "on my phone", Priority: 1})
	case r < 75:
		p.logout("phone", &p.phone)
	case r < 90:
		p.logout("phone", &p.phone)
		p.logout("desktop", &p.desktop)
	}
}

func (p *person) login(ctx context.Context, res string, c **xmppclient.Client, pr xmppclient.Presence) {
	j, _ := p.jid.WithResource(res)
	cl, err := xmppclient.Dial(ctx, p.addr, j, p.pass)
	if err != nil {
		p.log.Warn("sim: login failed", "resource", res, "err", err)
		return
	}
	if err := cl.Presence(ctx, pr); err != nil {
		cl.Kill()
		return
	}
	*c = cl
	p.log.Info("sim: logged in", "resource", res, "show", pr.Show, "priority", pr.Priority)
}

func (p *person) logout(res string, c **xmppclient.Client) {
	if *c == nil {
		return
	}
	_ = (*c).Close()
	*c = nil
	p.log.Info("sim: logged out", "resource", res)
}
