// History: a user's changes read back from presence_history, for the
// REST API.

package pgstore

import (
	"context"
	"fmt"
	"time"
)

// HistoryRow is one change of one user, as kept in presence_history.
type HistoryRow struct {
	At                    time.Time
	Resource, Event, Show string
	Status, Reason        string
	Priority              int
}

// History returns the user's changes between since and until, oldest
// first, at most limit rows. It reads what is flushed (up to
// FlushInterval behind the live state).
func (s *Store) History(ctx context.Context, jid string, since, until time.Time, limit int) ([]HistoryRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT at, resource, event, show, status, priority, coalesce(reason, '')
		FROM presence_history WHERE user_jid = $1 AND at >= $2 AND at < $3 ORDER BY at, seq LIMIT $4`, jid, since, until, limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: history: %w", err)
	}
	defer rows.Close()
	var out []HistoryRow
	for rows.Next() {
		var h HistoryRow
		var prio int16
		if err := rows.Scan(&h.At, &h.Resource, &h.Event, &h.Show, &h.Status, &prio, &h.Reason); err != nil {
			return nil, fmt.Errorf("pgstore: history: %w", err)
		}
		h.Priority = int(prio)
		out = append(out, h)
	}
	return out, rows.Err()
}
