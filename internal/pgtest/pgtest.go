// Package pgtest gives tests a real PostgreSQL: the server named by
// PRESENCED_TEST_DATABASE_URL, or else a private cluster started with the
// project's scripts/postgres (which installs PostgreSQL when missing); and
// empty databases in it, one per test, dropped when the test ends. A
// database that cannot be had is a failure, never a skip.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Start starts a private cluster in dir with root/scripts/postgres (root
// is the repository's root, relative to the test's directory) and returns
// its URL and how to stop it.
func Start(root, dir string) (string, func(), error) {
	script := filepath.Join(root, "scripts", "postgres")
	out, err := exec.Command(script, "start", dir).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return "", nil, fmt.Errorf("scripts/postgres start: %v: %s", err, ee.Stderr)
		}
		return "", nil, err
	}
	env, err := os.ReadFile(strings.TrimSpace(string(out)))
	if err != nil {
		return "", nil, err
	}
	_, u, ok := strings.Cut(strings.TrimSpace(string(env)), "DATABASE_URL=")
	if !ok {
		return "", nil, fmt.Errorf("no DATABASE_URL in %s", out)
	}
	stop := func() { _ = exec.Command(script, "stop", dir).Run() }
	return strings.Trim(u, `'"`), stop, nil
}

// Admin returns PRESENCED_TEST_DATABASE_URL, or else starts a cluster for
// t, stopped when t ends: for tests without a TestMain that starts one.
func Admin(t testing.TB, root string) string {
	t.Helper()
	if u := os.Getenv("PRESENCED_TEST_DATABASE_URL"); u != "" {
		return u
	}
	u, stop, err := Start(root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return u
}

var counter atomic.Int64

// NewDB creates an empty database named prefix_<pid>_<n> in admin's
// server, dropped when t ends, and returns its URL.
func NewDB(t testing.TB, admin, prefix string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), counter.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
