//go:build integration

package integration

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/presenced/presenced/internal/pgtest"
	"github.com/presenced/presenced/internal/xmppclient"
)

// TestPostgresRestart runs presenced on PostgreSQL: presence reaches the
// database; presenced stops; meanwhile one user leaves; a new presenced
// restores the state from the database, probes, and closes the session of
// the user who left with reason restart, while the one who stayed is online
// throughout (her session stays open).
func TestPostgresRestart(t *testing.T) {
	dbURL := freshDatabase(t)
	migrate := exec.Command(binary, "migrate", "-store", dbURL)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("presenced migrate: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "migrate", "-store", dbURL).CombinedOutput(); err != nil {
		t.Fatalf("presenced migrate, again: %v\n%s", err, out)
	}

	d := startPresenced(t, "PRESENCED_STORE="+dbURL)
	d.waitConnected(t, 1)
	ws := d.stream(t)
	login(t, "alice", xmppclient.Presence{Show: "chat", Status: "staying"})
	bob := login(t, "bob", xmppclient.Presence{Status: "leaving soon"})
	ws.expect(t, "alice online", func(f frame) bool { return f.JID == "alice@localhost" && f.Event == "online" })
	ws.expect(t, "bob online", func(f frame) bool { return f.JID == "bob@localhost" && f.Event == "online" })
	db := connect(t, dbURL)
	eventually(t, "both in presence_current", 10*time.Second, func() error {
		var n int
		db.QueryRow(context.Background(), `SELECT count(*) FROM presence_current`).Scan(&n)
		if n != 2 {
			return fmt.Errorf("%d rows", n)
		}
		return nil
	})
	d.stop(t)

	_ = bob.Close() // bob leaves while presenced is down
	d2 := startPresenced(t, "PRESENCED_STORE="+dbURL)
	if u, code := d2.user(t, "alice@localhost"); code != 200 || !u.Online || u.Status != "staying" {
		t.Fatalf("alice was not restored from PostgreSQL: %d %+v", code, u)
	}
	d2.waitConnected(t, 1)
	wantREST(t, d2, "bob@localhost", func(u restUser) error {
		if u.Online {
			return fmt.Errorf("bob left while presenced was down but is online: %+v", u)
		}
		return nil
	})
	wantREST(t, d2, "alice@localhost", func(u restUser) error {
		if !u.Online {
			return fmt.Errorf("alice stayed but is offline: %+v", u)
		}
		return nil
	})
	eventually(t, "the sessions in PostgreSQL", 10*time.Second, func() error {
		var aliceOpen, bobClosed int
		var reason string
		db.QueryRow(context.Background(), `SELECT
			count(*) FILTER (WHERE user_jid = 'alice@localhost' AND ended_at IS NULL),
			count(*) FILTER (WHERE user_jid = 'bob@localhost' AND ended_at IS NOT NULL),
			coalesce(max(end_reason) FILTER (WHERE user_jid = 'bob@localhost'), '')
			FROM presence_sessions`).Scan(&aliceOpen, &bobClosed, &reason)
		if aliceOpen != 1 || bobClosed != 1 || reason != "restart" {
			return fmt.Errorf("alice open %d, bob closed %d (%q)", aliceOpen, bobClosed, reason)
		}
		return nil
	})
	if code := healthStatus(t, d2); code != "ok" {
		t.Fatalf("health %q with a working database", code)
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// freshDatabase creates an empty database in the test PostgreSQL.
func freshDatabase(t *testing.T) string {
	t.Helper()
	return pgtest.NewDB(t, databaseURL, "presenced_it")
}

func healthStatus(t *testing.T, d *daemon) string {
	t.Helper()
	var h struct {
		Status string `json:"status"`
	}
	getJSON(t, d.base+"/v1/health", &h)
	return h.Status
}
