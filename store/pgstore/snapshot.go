// Snapshots: the whole state at once, read back by Load when presenced
// starts and written by Replace whenever the store writer starts from a
// snapshot.

package pgstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/presenced/presenced/presence"
)

// Load returns every user the database knows, for presence.Tracker.Restore.
func (s *Store) Load(ctx context.Context) ([]presence.User, error) {
	type last struct {
		seen         *time.Time
		show, status string
	}
	lasts := map[string]last{}
	rows, err := s.pool.Query(ctx, `SELECT user_jid, last_seen, last_show, last_status FROM presence_users`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: load: %w", err)
	}
	for rows.Next() {
		var jid string
		var l last
		if err := rows.Scan(&jid, &l.seen, &l.show, &l.status); err != nil {
			return nil, fmt.Errorf("pgstore: load: %w", err)
		}
		lasts[jid] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: load: %w", err)
	}
	res := map[string][]presence.Resource{}
	rows, err = s.pool.Query(ctx, `SELECT user_jid, resource, show, status, statuses, priority, idle_since, since, expires FROM presence_current`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: load: %w", err)
	}
	for rows.Next() {
		var jid string
		var r presence.Resource
		var show string
		var statuses map[string]string
		var prio int16
		var idle, expires *time.Time
		if err := rows.Scan(&jid, &r.Name, &show, &r.Status, &statuses, &prio, &idle, &r.Since, &expires); err != nil {
			return nil, fmt.Errorf("pgstore: load: %w", err)
		}
		r.Show, r.Priority = presence.Show(show), int(prio)
		r.Statuses = fromStatusMap(statuses)
		if idle != nil {
			r.Idle = *idle
		}
		if expires != nil {
			r.Expires = *expires
		}
		res[jid] = append(res[jid], r)
		if _, ok := lasts[jid]; !ok {
			lasts[jid] = last{}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: load: %w", err)
	}
	out := make([]presence.User, 0, len(lasts))
	for jid, l := range lasts {
		var seen time.Time
		if l.seen != nil {
			seen = *l.seen
		}
		out = append(out, presence.NewUser(jid, res[jid], seen, presence.Show(l.show), l.status))
	}
	sortUsers(out)
	return out, nil
}

func sortUsers(us []presence.User) {
	slices.SortFunc(us, func(a, b presence.User) int { return strings.Compare(a.JID, b.JID) })
}

// Replace makes the stored current state equal to users: it writes what is
// buffered, then, in one transaction, replaces presence_current, updates
// every user's last activity (and forgets users not in users), closes the
// sessions of resources that are not in users (reason reconcile) and opens
// sessions for those that have none. History is kept.
func (s *Store) Replace(ctx context.Context, users []presence.User) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.flushLocked(ctx); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM presence_current`); err != nil {
			return err
		}
		var cur [][]any
		var usr [][]any
		for _, u := range users {
			for i := range u.Resources {
				cur = append(cur, currentRow(u.JID, &u.Resources[i]))
			}
			usr = append(usr, userValues(u.JID, u.Online, u.LastSeen, string(u.Show), u.Status))
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"presence_current"}, currentColumns, pgx.CopyFromRows(cur)); err != nil {
			return err
		}
		if err := upsertUsers(ctx, tx, usr); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM presence_users u WHERE NOT EXISTS (SELECT 1 FROM pu_up p WHERE p.user_jid = u.user_jid)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE presence_sessions s SET ended_at = now(), end_reason = 'reconcile'
			WHERE ended_at IS NULL AND NOT EXISTS (
				SELECT 1 FROM presence_current c WHERE c.user_jid = s.user_jid AND c.resource = s.resource)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO presence_sessions (user_jid, resource, started_at)
			SELECT user_jid, resource, since FROM presence_current c WHERE NOT EXISTS (
				SELECT 1 FROM presence_sessions s WHERE s.user_jid = c.user_jid AND s.resource = c.resource AND s.ended_at IS NULL)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: replace: %w", err)
	}
	return nil
}
