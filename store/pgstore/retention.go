// Retention: history and ended sessions older than Config.Retention are
// deleted in small batches, every RetentionInterval, by the run loop.

package pgstore

import (
	"context"
	"fmt"
	"time"
)

// retain deletes what is older than Config.Retention, when that is set,
// and logs the outcome: the run loop's step every RetentionInterval.
func (s *Store) retain(ctx context.Context) {
	if s.cfg.Retention > 0 {
		if n, err := s.DeleteOlderThan(ctx, time.Now().Add(-s.cfg.Retention)); err != nil {
			s.log.Warn("pgstore: retention", "err", err)
		} else if n > 0 {
			s.log.Info("pgstore: retention deleted old rows", "rows", n)
		}
	}
}

// DeleteOlderThan deletes history rows and ended sessions older than
// cutoff, 10,000 rows per statement so that no lock is held for long. It
// returns how many rows went.
func (s *Store) DeleteOlderThan(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`DELETE FROM presence_history WHERE ctid = ANY(ARRAY(SELECT ctid FROM presence_history WHERE at < $1 LIMIT 10000))`,
		`DELETE FROM presence_sessions WHERE id = ANY(ARRAY(SELECT id FROM presence_sessions WHERE ended_at < $1 LIMIT 10000))`,
	} {
		for {
			tag, err := s.pool.Exec(ctx, q, cutoff)
			if err != nil {
				return total, fmt.Errorf("pgstore: retention: %w", err)
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < 10000 {
				break
			}
		}
	}
	return total, nil
}
