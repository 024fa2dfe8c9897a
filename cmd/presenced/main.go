package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/presenced/presenced/internal/app"
	"github.com/presenced/presenced/store/pgstore"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		os.Exit(migrate(os.Args[2:], os.Getenv, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "provision" {
		os.Exit(provision(os.Args[2:], os.Getenv, os.Stdin, os.Stderr))
	}
	opts, err := app.ParseSettings(os.Args[1:], os.Getenv, os.Stderr)
	if err == flag.ErrHelp {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "presenced:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, opts); err != nil {
		opts.Logger.Error("presenced: stopped", "err", err)
		os.Exit(1)
	}
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
	if !app.IsPostgresURL(*url) {
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
