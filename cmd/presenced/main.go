package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/presenced/presenced/store/pgstore"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		os.Exit(migrate(os.Args[2:], os.Getenv, os.Stderr))
	}
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
	env := func(name, def string) string { return envOr(getenv, "PRESENCED_"+name, def) }
	var o Options
	fs.StringVar(&o.JID, "jid", env("JID", ""), "component JID, e.g. presence.example.org (PRESENCED_JID)")
	fs.StringVar(&o.Secret, "secret", env("SECRET", ""), "component shared secret (PRESENCED_SECRET)")
	fs.StringVar(&o.Server, "server", env("SERVER", "127.0.0.1:8888"), "XMPP server's component listener, host:port (PRESENCED_SERVER)")
	fs.StringVar(&o.HTTP, "http", env("HTTP", "127.0.0.1:8080"), "HTTP listen address of the REST and WebSocket API (PRESENCED_HTTP)")
	fs.StringVar(&o.Metrics, "metrics", env("METRICS", ""), "listen address of the Prometheus endpoint /metrics, e.g. 127.0.0.1:9464; empty: none (PRESENCED_METRICS)")
	fs.StringVar(&o.Store, "store", env("STORE", "memory"), "where presence is mirrored: memory, or a PostgreSQL URL postgres://... (PRESENCED_STORE)")
	jwtKeys := fs.String("jwt-keys", env("JWT_KEYS", ""), "comma-separated key files for JWT authentication: PEM public keys (RS256, ES256, EdDSA) or hs256:<secret file>; empty with no -jwks means NO authentication (PRESENCED_JWT_KEYS)")
	fs.StringVar(&o.JWKS, "jwks", env("JWKS", ""), "a JSON Web Key Set file for JWT authentication (PRESENCED_JWKS)")
	fs.StringVar(&o.JWTIssuer, "jwt-issuer", env("JWT_ISSUER", ""), "required iss claim, when set (PRESENCED_JWT_ISSUER)")
	fs.StringVar(&o.JWTAudience, "jwt-audience", env("JWT_AUDIENCE", ""), "required aud claim, when set (PRESENCED_JWT_AUDIENCE)")
	admins := fs.String("admins", env("ADMINS", ""), "comma-separated bare JIDs or domains that may run the administration commands (XEP-0050) from an XMPP client (PRESENCED_ADMINS)")
	origins := fs.String("allowed-origins", env("ALLOWED_ORIGINS", ""), "comma-separated Origins allowed to open the WebSocket from a browser, or *; empty: same origin only (PRESENCED_ALLOWED_ORIGINS)")
	fs.Float64Var(&o.RatePerSecond, "rate", envFloat(getenv, "PRESENCED_RATE", 20), "requests per second per token (or per IP without one); bursts of twice that (PRESENCED_RATE)")
	durations := []struct {
		dst        *time.Duration
		flag, help string
		def        string
	}{
		{&o.ProbeWait, "probe-wait", "after probes (on a reconnect, in the sweep), how long to wait for answers", "5s"},
		{&o.LinkGrace, "link-grace", "how long the server link may stay down before everyone it reported goes offline", "30s"},
		{&o.PingInterval, "ping-interval", "how long a resource may stay silent before it is pinged", "5m"},
		{&o.PingTimeout, "ping-timeout", "how long a ping may go unanswered before the resource goes offline", "30s"},
		{&o.SweepInterval, "sweep-interval", "how often every online user is probed", "15m"},
		{&o.KeepAlive, "keepalive", "how often the component pings itself through the server to check the link", "60s"},
		{&o.Retention, "retention", "with PostgreSQL: how long history and ended sessions are kept (e.g. 2160h); 0 keeps them", "0"},
	}
	raw := make([]*string, len(durations))
	for i, d := range durations {
		env := "PRESENCED_" + strings.ToUpper(strings.ReplaceAll(d.flag, "-", "_"))
		raw[i] = fs.String(d.flag, envOr(getenv, env, d.def), d.help+" ("+env+")")
	}
	ints := []struct {
		dst        *int
		flag, help string
		def        string
	}{
		{&o.MaxUsers, "max-users", "users tracked at most, online or remembered offline; offline ones are forgotten first; 0: no bound", "1000000"},
		{&o.MaxResources, "max-resources", "online resources of one user at most; 0: no bound", "32"},
		{&o.MaxStanza, "max-stanza", "bytes of one presence stanza at most (text of names, attributes and content)", "65536"},
		{&o.UserRate, "user-rate", "presence changes of one user applied per second; more are held and the newest applied at the end of the second", "10"},
		{&o.StreamWriters, "stream-writers", "goroutines writing to WebSocket clients; 0: half the CPUs", "0"},
	}
	rawInts := make([]*string, len(ints))
	for i, d := range ints {
		env := "PRESENCED_" + strings.ToUpper(strings.ReplaceAll(d.flag, "-", "_"))
		rawInts[i] = fs.String(d.flag, envOr(getenv, env, d.def), d.help+" ("+env+")")
	}
	level := fs.String("log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (PRESENCED_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	o.JWTKeys = splitList(*jwtKeys)
	o.AllowedOrigins = splitList(*origins)
	o.Admins = splitList(*admins)
	for i, d := range durations {
		v, err := time.ParseDuration(*raw[i])
		if err != nil || v < 0 || v == 0 && d.flag != "retention" {
			return o, fmt.Errorf("-%s (PRESENCED_%s): not a positive duration: %q",
				d.flag, strings.ToUpper(strings.ReplaceAll(d.flag, "-", "_")), *raw[i])
		}
		*d.dst = v
	}
	for i, d := range ints {
		v, err := strconv.Atoi(*rawInts[i])
		if err != nil || v < 0 {
			return o, fmt.Errorf("-%s (PRESENCED_%s): not a whole number >= 0: %q",
				d.flag, strings.ToUpper(strings.ReplaceAll(d.flag, "-", "_")), *rawInts[i])
		}
		*d.dst = v
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return o, fmt.Errorf("-log-level (PRESENCED_LOG_LEVEL): %q is not one of debug, info, warn, error", *level)
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	return o, o.check()
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// migrate runs `presenced migrate`: it applies the PostgreSQL schema
// migrations and exits. The database comes from -store or PRESENCED_STORE.
func migrate(args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("presenced migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("store", envOr(getenv, "PRESENCED_STORE", ""), "PostgreSQL URL postgres://... (PRESENCED_STORE)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !isPostgres(*url) {
		fmt.Fprintln(stderr, "presenced migrate: -store (PRESENCED_STORE) must be a PostgreSQL URL, postgres://...")
		return 2
	}
	applied, err := pgstore.MigrateURL(context.Background(), *url)
	if err != nil {
		fmt.Fprintln(stderr, "presenced migrate: -store (PRESENCED_STORE):", err)
		return 1
	}
	fmt.Fprintf(stderr, "presenced migrate: schema at version %d; applied now: %v\n", pgstore.SchemaVersion(), applied)
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func envFloat(getenv func(string) string, name string, def float64) float64 {
	if v, err := strconv.ParseFloat(getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}
