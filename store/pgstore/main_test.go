package pgstore_test

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

// adminURL is the database the tests create their own databases from: the
// one in PRESENCED_TEST_DATABASE_URL, or else a throwaway cluster that
// TestMain starts with scripts/postgres (installing PostgreSQL if needed).
// A database that cannot be had is a failure, never a skip.
var adminURL string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	adminURL = os.Getenv("PRESENCED_TEST_DATABASE_URL")
	if adminURL == "" {
		dir, err := os.MkdirTemp("", "presenced-pgstore-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		u, err := startCluster(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgstore tests: no PostgreSQL:", err)
			return 1
		}
		defer stopCluster(dir)
		adminURL = u
	}
	return m.Run()
}

// startCluster starts a private cluster in dir and returns its URL.
func startCluster(dir string) (string, error) {
	out, err := exec.Command("../../scripts/postgres", "start", dir).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return "", fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		return "", err
	}
	env, err := os.ReadFile(strings.TrimSpace(string(out)))
	if err != nil {
		return "", err
	}
	_, u, ok := strings.Cut(strings.TrimSpace(string(env)), "DATABASE_URL=")
	if !ok {
		return "", fmt.Errorf("no DATABASE_URL in %s", out)
	}
	return u, nil
}

func stopCluster(dir string) error {
	return exec.Command("../../scripts/postgres", "stop", dir).Run()
}

var dbCounter atomic.Int64

// newDB creates an empty database for one test, dropped when it ends, and
// returns its URL.
func newDB(t testing.TB, admin string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("presenced_test_%d_%d", os.Getpid(), dbCounter.Add(1))
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

var _ = filepath.Join
