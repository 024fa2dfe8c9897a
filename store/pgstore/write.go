// The SQL write path: one batch of the pending buffer written in one
// transaction, by COPY and a few set-wise statements.

package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/presenced/presenced/presence"
)

// write stores p in one transaction: history by COPY; current state, last
// activity and session boundaries by COPY into temporary tables and a few
// set-wise statements.
func (s *Store) write(ctx context.Context, p *pending) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(p.history) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"presence_history"}, historyColumns, pgx.CopyFromRows(p.history)); err != nil {
				return err
			}
		}
		if len(p.current) > 0 {
			var up, gone [][]any
			for ref, st := range p.current {
				if st.gone {
					gone = append(gone, []any{ref.User, ref.Resource})
				} else {
					up = append(up, currentRow(ref.User, &st.r))
				}
			}
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE pc_up (LIKE presence_current) ON COMMIT DROP;
				CREATE TEMP TABLE pc_gone (user_jid text, resource text) ON COMMIT DROP`); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pc_up"}, currentColumns, pgx.CopyFromRows(up)); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pc_gone"}, []string{"user_jid", "resource"}, pgx.CopyFromRows(gone)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM presence_current c USING pc_gone g
				WHERE c.user_jid = g.user_jid AND c.resource = g.resource`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO presence_current SELECT * FROM pc_up
				ON CONFLICT (user_jid, resource) DO UPDATE SET show = EXCLUDED.show, status = EXCLUDED.status,
				statuses = EXCLUDED.statuses, priority = EXCLUDED.priority, idle_since = EXCLUDED.idle_since,
				since = EXCLUDED.since, expires = EXCLUDED.expires`); err != nil {
				return err
			}
		}
		if len(p.users) > 0 {
			rows := make([][]any, 0, len(p.users))
			for _, r := range p.users {
				rows = append(rows, r)
			}
			if err := upsertUsers(ctx, tx, rows); err != nil {
				return err
			}
		}
		if len(p.sessions) > 0 {
			if err := writeSessions(ctx, tx, p.sessions); err != nil {
				return err
			}
		}
		return nil
	})
}

func upsertUsers(ctx context.Context, tx pgx.Tx, rows [][]any) error {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE pu_up (LIKE presence_users) ON COMMIT DROP`); err != nil {
		return err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pu_up"}, []string{"user_jid", "online", "last_seen", "last_show", "last_status"}, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO presence_users SELECT * FROM pu_up
		ON CONFLICT (user_jid) DO UPDATE SET online = EXCLUDED.online, last_seen = EXCLUDED.last_seen,
		last_show = EXCLUDED.last_show, last_status = EXCLUDED.last_status`)
	return err
}

// writeSessions applies session boundaries set-wise. Per resource, the
// operations of a batch, in order, are: maybe a close of the session
// already open in the database, then whole sessions (an open followed by
// its close), then maybe an open left open. So three statements do it all:
// close the open ones, COPY the whole ones, insert the new open ones.
func writeSessions(ctx context.Context, tx pgx.Tx, ops []sessionOp) error {
	type state struct {
		open *sessionOp // an open in this batch not yet closed
	}
	refs := map[presence.Ref]*state{}
	var closes, whole, opens [][]any
	for i := range ops {
		op := &ops[i]
		ref := presence.Ref{User: op.user, Resource: op.resource}
		st := refs[ref]
		if st == nil {
			st = &state{}
			refs[ref] = st
		}
		switch {
		case op.open && st.open == nil:
			st.open = op
		case op.open:
			// Open twice without a close: keep the first (the database's
			// unique index would refuse the second anyway).
		case st.open != nil:
			whole = append(whole, []any{op.user, op.resource, st.open.at, op.at, op.reason})
			st.open = nil
		default:
			closes = append(closes, []any{op.user, op.resource, op.at, op.reason})
		}
	}
	for ref, st := range refs {
		if st.open != nil {
			opens = append(opens, []any{ref.User, ref.Resource, st.open.at})
		}
	}
	if len(closes) > 0 {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE ps_close (user_jid text, resource text, ended_at timestamptz, end_reason text) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ps_close"}, []string{"user_jid", "resource", "ended_at", "end_reason"}, pgx.CopyFromRows(closes)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE presence_sessions s SET ended_at = c.ended_at, end_reason = c.end_reason
			FROM ps_close c WHERE s.user_jid = c.user_jid AND s.resource = c.resource AND s.ended_at IS NULL`); err != nil {
			return err
		}
	}
	if len(whole) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"presence_sessions"}, []string{"user_jid", "resource", "started_at", "ended_at", "end_reason"}, pgx.CopyFromRows(whole)); err != nil {
			return err
		}
	}
	if len(opens) > 0 {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE ps_open (user_jid text, resource text, started_at timestamptz) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ps_open"}, []string{"user_jid", "resource", "started_at"}, pgx.CopyFromRows(opens)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO presence_sessions (user_jid, resource, started_at) SELECT user_jid, resource, started_at FROM ps_open
			ON CONFLICT (user_jid, resource) WHERE ended_at IS NULL DO NOTHING`); err != nil {
			return err
		}
	}
	return nil
}
