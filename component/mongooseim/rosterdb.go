package mongooseim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// rosterKey is a user as MongooseIM's rosterusers table keys it: the
// normalized domain and localpart.
type rosterKey struct{ server, username string }

func (k rosterKey) String() string { return k.username + "@" + k.server }

// restoreRow is what a user's item for the component was before the
// pending-in row was written: subscription and ask in the table's letters
// (N, T, F, B; N, I, O, B, S, U), or existed false for no item.
type restoreRow struct {
	key               rosterKey
	existed           bool
	subscription, ask string
}

// rosterStore writes MongooseIM's roster table for the provisioner. The
// tests replace the PostgreSQL one.
type rosterStore interface {
	// pending writes a pending-in item for the component on each user's
	// roster, as if the component had asked for the user's presence. It
	// returns how many keys, from the first, it wrote.
	pending(ctx context.Context, keys []rosterKey) (int, error)
	// restore puts back the items of rows that are still as pending left
	// them.
	restore(ctx context.Context, rows []restoreRow) error
	close()
}

// sqlPending writes, in one statement for all users of $1 (domains) and
// $2 (localparts), the component ($3) on each roster with a request for
// the user's presence pending (ask 'I'), so that a subscribed of the user
// (REST.Subscribed) approves it through mod_roster: a new item (named $4)
// with subscription 'N'; an item the user already sends presence through
// goes back one step, 'F' (from) to 'N' and 'B' (both) to 'T' (to), so
// that the approval ends at from or both again and reaches the user's
// session if it is online; 'N' and 'T' stay. A pending request of the
// user's own to the component is dropped (ask 'O'): presenced answers
// those at once anyway. Measured on MongooseIM 6.1.0: a 'T' row becomes
// ('T','I') and ends both, an 'F' row ('N','I') and ends from.
const sqlPending = `INSERT INTO rosterusers (server, username, jid, nick, subscription, ask, askmessage)
SELECT u.server, u.username, $3, $4, 'N', 'I', ''
FROM unnest($1::text[], $2::text[]) AS u(server, username)
ON CONFLICT (server, username, jid) DO UPDATE
SET subscription = CASE rosterusers.subscription WHEN 'F' THEN 'N' WHEN 'B' THEN 'T' ELSE rosterusers.subscription END,
    ask = 'I'`

// sqlRestore undoes sqlPending for the users whose approval failed, where
// the row is still as sqlPending left it: a row that had not existed is
// deleted; the others get their subscription and ask back ($3, $4; ” for
// no row). Without it a user who had from would stop sending presence to
// the component at the next login, and clients would show the pending
// request.
const sqlRestore = `WITH u AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(server, username, subscription, ask)
), gone AS (
  DELETE FROM rosterusers r USING u
  WHERE u.subscription = '' AND r.server = u.server AND r.username = u.username AND r.jid = $5
    AND r.subscription = 'N' AND r.ask = 'I'
)
UPDATE rosterusers r SET subscription = u.subscription, ask = u.ask FROM u
WHERE u.subscription <> '' AND r.server = u.server AND r.username = u.username AND r.jid = $5
  AND r.ask = 'I'
  AND r.subscription = CASE u.subscription WHEN 'F' THEN 'N' WHEN 'B' THEN 'T' ELSE u.subscription END`

// pgRoster is the rosterStore on MongooseIM's PostgreSQL.
type pgRoster struct {
	conn        *pgx.Conn
	component   string
	nick        string
	chunk       int
	stmtTimeout time.Duration
}

// openPG connects to MongooseIM's database at url within timeout.
func openPG(ctx context.Context, url, component, nick string, chunk int, timeout time.Duration) (*pgRoster, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("mongooseim: the database URL: %w", err)
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > timeout {
		cfg.ConnectTimeout = timeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("mongooseim: connecting to the database %s:%d/%s: %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	return &pgRoster{conn: conn, component: component, nick: nick, chunk: chunk, stmtTimeout: timeout}, nil
}

func (p *pgRoster) pending(ctx context.Context, keys []rosterKey) (int, error) {
	done := 0
	for done < len(keys) {
		n := min(p.chunk, len(keys)-done)
		servers, users := make([]string, n), make([]string, n)
		for i, k := range keys[done : done+n] {
			servers[i], users[i] = k.server, k.username
		}
		if err := p.exec(ctx, sqlPending, servers, users, p.component, p.nick); err != nil {
			return done, fmt.Errorf("mongooseim: writing the pending roster items: %w", err)
		}
		done += n
	}
	return done, nil
}

func (p *pgRoster) restore(ctx context.Context, rows []restoreRow) error {
	for len(rows) > 0 {
		n := min(p.chunk, len(rows))
		servers, users, subs, asks := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, r := range rows[:n] {
			servers[i], users[i] = r.key.server, r.key.username
			if r.existed {
				subs[i], asks[i] = r.subscription, r.ask
			}
		}
		if err := p.exec(ctx, sqlRestore, servers, users, subs, asks, p.component); err != nil {
			return fmt.Errorf("mongooseim: restoring the roster items: %w", err)
		}
		rows = rows[n:]
	}
	return nil
}

// exec runs one statement within the timeout.
func (p *pgRoster) exec(ctx context.Context, sql string, args ...any) error {
	ctx, cancel := context.WithTimeoutCause(ctx, p.stmtTimeout, errTimeout)
	defer cancel()
	_, err := p.conn.Exec(ctx, sql, args...)
	if err != nil && errors.Is(context.Cause(ctx), errTimeout) {
		return fmt.Errorf("no answer within %v (Provisioner.DatabaseTimeout): %w", p.stmtTimeout, context.DeadlineExceeded)
	}
	return err
}

func (p *pgRoster) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.conn.Close(ctx)
}

// dbLetters maps the REST API's subscription and ask (mod_roster's atoms)
// to rosterusers' letters (mod_roster_rdbms's encoding).
var (
	subscriptionLetter = map[string]string{"none": "N", "to": "T", "from": "F", "both": "B"}
	askLetter          = map[string]string{"none": "N", "in": "I", "out": "O", "both": "B", "subscribe": "S", "unsubscribe": "U"}
)
