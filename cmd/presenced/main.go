package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	opts, err := parseOptions(os.Args[1:], os.Getenv, os.Stderr)
	if err == flag.ErrHelp {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "presenced:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, opts); err != nil {
		opts.Logger.Error("presenced: stopped", "err", err)
		os.Exit(1)
	}
}

// parseOptions reads flags, with defaults taken from PRESENCED_* variables
// through getenv.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (Options, error) {
	fs := flag.NewFlagSet("presenced", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv("PRESENCED_" + name); v != "" {
			return v
		}
		return def
	}
	var o Options
	fs.StringVar(&o.JID, "jid", env("JID", ""), "component JID, e.g. presence.example.org (PRESENCED_JID)")
	fs.StringVar(&o.Secret, "secret", env("SECRET", ""), "component shared secret (PRESENCED_SECRET)")
	fs.StringVar(&o.Server, "server", env("SERVER", "127.0.0.1:8888"), "XMPP server's component listener, host:port (PRESENCED_SERVER)")
	fs.StringVar(&o.HTTP, "http", env("HTTP", "127.0.0.1:8080"), "HTTP listen address of the REST and WebSocket API (PRESENCED_HTTP)")
	fs.StringVar(&o.Store, "store", env("STORE", "memory"), "where presence is mirrored: memory (PRESENCED_STORE)")
	probeWait := fs.String("probe-wait", env("PROBE_WAIT", "5s"), "after a (re)connect, how long to wait for probe answers before users who did not answer go offline (PRESENCED_PROBE_WAIT)")
	linkGrace := fs.String("link-grace", env("LINK_GRACE", "30s"), "how long the server link may stay down before everyone it reported goes offline (PRESENCED_LINK_GRACE)")
	level := fs.String("log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (PRESENCED_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var err error
	if o.ProbeWait, err = time.ParseDuration(*probeWait); err != nil || o.ProbeWait <= 0 {
		return o, fmt.Errorf("-probe-wait (PRESENCED_PROBE_WAIT): not a positive duration: %q", *probeWait)
	}
	if o.LinkGrace, err = time.ParseDuration(*linkGrace); err != nil || o.LinkGrace <= 0 {
		return o, fmt.Errorf("-link-grace (PRESENCED_LINK_GRACE): not a positive duration: %q", *linkGrace)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return o, fmt.Errorf("-log-level (PRESENCED_LOG_LEVEL): %q is not one of debug, info, warn, error", *level)
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	return o, o.check()
}
