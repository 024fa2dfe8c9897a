//go:build integration

package deploy

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/presenced/presenced/internal/pgtest"
)

// sqlBlocks returns the ```sql blocks of a Markdown file.
func sqlBlocks(t *testing.T, doc string) []string {
	t.Helper()
	var blocks []string
	var cur *strings.Builder
	for _, line := range strings.Split(readFile(t, doc), "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sql":
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// testDatabase returns the URL of an empty database, dropped at the end
// (internal/pgtest).
func testDatabase(t *testing.T) string {
	t.Helper()
	return pgtest.NewDB(t, pgtest.Admin(t, root), "presenced_docs")
}

// TestMongooseIMProvisioningSQL runs the SQL of setup-mongooseim.md, twice,
// on MongooseIM's roster tables, and checks the rosters it leaves: the
// pending requests of presenced's that `presenced provision` then approves
// through the REST admin API (integration/mongooseim_provision_test.go
// runs the whole of it against MongooseIM 6.1.0).
func TestMongooseIMProvisioningSQL(t *testing.T) {
	blocks := sqlBlocks(t, "docs/setup-mongooseim.md")
	if len(blocks) == 0 {
		t.Fatal("setup-mongooseim.md has no ```sql block")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, mongooseimRosterSchema+`
INSERT INTO users (username, server, password) VALUES
  ('alice', 'example.org', 'x'), ('bob', 'example.org', 'x'),
  ('carol', 'example.org', 'x'), ('dave', 'other.example', 'x');
-- alice has a friend; bob already receives presenced's presence (to);
-- carol has it already (from).
INSERT INTO rosterusers (server, username, jid, nick, subscription, ask, askmessage) VALUES
  ('example.org', 'alice', 'bob@example.org', 'Bob', 'B', 'N', ''),
  ('example.org', 'bob', 'presence.example.org', 'P', 'T', 'N', ''),
  ('example.org', 'carol', 'presence.example.org', 'Mine', 'F', 'N', '');
`); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ { // idempotent
		for i, b := range blocks {
			if _, err := conn.Exec(ctx, b); err != nil {
				t.Fatalf("round %d, sql block %d of setup-mongooseim.md: %v\n%s", round, i+1, err, b)
			}
		}
	}
	rows, err := conn.Query(ctx, `SELECT username || '@' || server, jid, nick, subscription, ask FROM rosterusers ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var u, j, n, s, a string
		err := r.Scan(&u, &j, &n, &s, &a)
		return strings.Join([]string{u, j, n, s, a}, " "), err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"alice@example.org bob@example.org Bob B N",
		// New: none, a request of presenced's pending (ask in).
		"alice@example.org presence.example.org presenced N I",
		// to stays to, with the request pending: the approval makes both.
		"bob@example.org presence.example.org P T I",
		// from goes back to none, pending: the approval makes from again.
		"carol@example.org presence.example.org Mine N I",
		// dave is not in the statement's list.
	}
	if !slices.Equal(got, want) {
		t.Errorf("rosterusers after the recipe:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
