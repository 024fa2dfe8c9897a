//go:build integration

package pgstore_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/presenced/presenced/internal/pgtest"
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
	u, _, err := pgtest.Start("../..", dir)
	return u, err
}

func stopCluster(dir string) error {
	return exec.Command("../../scripts/postgres", "stop", dir).Run()
}

// newDB creates an empty database for one test, dropped when it ends, and
// returns its URL.
func newDB(t testing.TB, admin string) string {
	t.Helper()
	return pgtest.NewDB(t, admin, "presenced_test")
}
