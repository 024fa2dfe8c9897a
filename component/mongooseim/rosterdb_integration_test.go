//go:build integration

package mongooseim

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/presenced/presenced/internal/pgtest"
)

// TestRosterSQL runs the provisioner's statements on MongooseIM 6.1.0's
// own schema (../shared/mongooseim/pg.sql, the release's priv/pg.sql) in a
// real PostgreSQL: the pending-in rows for every kind of item, twice, in
// statements of two users, and their undo.
func TestRosterSQL(t *testing.T) {
	schema, err := os.ReadFile("../../../shared/mongooseim/pg.sql")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	url := pgtest.NewDB(t, pgtest.Admin(t, "../.."), "presenced_mim")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, string(schema)); err != nil {
		t.Fatalf("MongooseIM's schema: %v", err)
	}
	// alice: no item; bob: to; carol: from; dave: both; erin asked the
	// component (none, out); frank has a friend, not the component;
	// grace is on another domain.
	if _, err := conn.Exec(ctx, `INSERT INTO rosterusers (server, username, jid, nick, subscription, ask, askmessage) VALUES
  ('example.com', 'bob', 'presence.example.com', 'P', 'T', 'N', ''),
  ('example.com', 'carol', 'presence.example.com', 'Mine', 'F', 'N', ''),
  ('example.com', 'dave', 'presence.example.com', '', 'B', 'N', ''),
  ('example.com', 'erin', 'presence.example.com', '', 'N', 'O', ''),
  ('example.com', 'frank', 'alice@example.com', 'Alice', 'B', 'N', '')`); err != nil {
		t.Fatal(err)
	}
	rows := func() []string {
		t.Helper()
		r, err := conn.Query(ctx, `SELECT username || '@' || server || ' ' || jid || ' ' || nick || ' ' || subscription || ask FROM rosterusers ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	original := rows()

	db, err := openPG(ctx, url, "presence.example.com", "presenced", 2, DefaultDatabaseTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer db.close()
	var keys []rosterKey
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		keys = append(keys, rosterKey{"example.com", u})
	}
	keys = append(keys, rosterKey{"other.org", "grace"})
	want := []string{
		"alice@example.com presence.example.com presenced NI",
		"bob@example.com presence.example.com P TI",
		"carol@example.com presence.example.com Mine NI",
		"dave@example.com presence.example.com  TI",
		"erin@example.com presence.example.com  NI",
		"frank@example.com alice@example.com Alice BN",
		"grace@other.org presence.example.com presenced NI",
	}
	for round := 1; round <= 2; round++ {
		n, err := db.pending(ctx, keys)
		if err != nil || n != len(keys) {
			t.Fatalf("round %d: pending: %d, %v", round, n, err)
		}
		if got := rows(); !slices.Equal(got, want) {
			t.Fatalf("round %d: after pending:\n%s\nwant:\n%s", round, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	// carol's approval went through meanwhile (mod_roster wrote F, N): the
	// undo leaves her alone.
	if _, err := conn.Exec(ctx, `UPDATE rosterusers SET subscription = 'F', ask = 'N' WHERE username = 'carol'`); err != nil {
		t.Fatal(err)
	}
	undo := []restoreRow{
		{key: keys[0]},
		{key: keys[1], existed: true, subscription: "T", ask: "N"},
		{key: keys[2], existed: true, subscription: "F", ask: "N"},
		{key: keys[3], existed: true, subscription: "B", ask: "N"},
		{key: keys[4], existed: true, subscription: "N", ask: "O"},
		{key: keys[5]},
	}
	if err := db.restore(ctx, undo); err != nil {
		t.Fatal(err)
	}
	if got := rows(); !slices.Equal(got, original) {
		t.Errorf("after the undo:\n%s\nwant what was there before:\n%s", strings.Join(got, "\n"), strings.Join(original, "\n"))
	}
}

func TestRosterSQLConnect(t *testing.T) {
	ctx := context.Background()
	if _, err := openPG(ctx, "postgres://127.0.0.1:1/none", "presence.example.com", "presenced", 10, DefaultDatabaseTimeout); err == nil ||
		!strings.HasPrefix(err.Error(), "mongooseim: connecting to the database 127.0.0.1:1/none: ") {
		t.Errorf("error %v", err)
	}
	if _, err := openPG(ctx, "postgres://[::1", "presence.example.com", "presenced", 10, DefaultDatabaseTimeout); err == nil ||
		!strings.HasPrefix(err.Error(), "mongooseim: the database URL: ") {
		t.Errorf("error %v", err)
	}
}
