package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/store"
)

var _ store.Store = (*Store)(nil)

// Config configures a Store. Only URL is required.
type Config struct {
	// URL is the PostgreSQL connection string (postgres://... or key=value).
	URL string
	// Logger receives flush errors and drop counts; nil means slog.Default().
	Logger *slog.Logger
	// HistoryLimit bounds the history and session rows kept in memory while
	// PostgreSQL cannot be written; beyond it the oldest are dropped and
	// counted. Zero means 1,000,000. Current state is never dropped.
	HistoryLimit int
	// FlushInterval is how often buffered changes are written; zero means
	// 100ms. A full batch (BatchSize) is written at once.
	FlushInterval time.Duration
	// BatchSize is the number of buffered events that triggers a write
	// before FlushInterval; zero means 10,000.
	BatchSize int
	// Retention is how long history and ended sessions are kept; zero keeps
	// them forever. Older rows are deleted in small batches every
	// RetentionInterval (zero means 1h).
	Retention, RetentionInterval time.Duration
	// Registerer receives the store's metrics (queue depth, flush latency
	// and errors, dropped rows); nil means none.
	Registerer prometheus.Registerer
}

// Store is the PostgreSQL store.
type Store struct {
	cfg  Config
	log  *slog.Logger
	pool *pgxpool.Pool

	mu      sync.Mutex
	pend    *pending
	dropped int64 // history and session rows dropped since the last log
	total   int64 // ... and since Open
	health  error // the last write's error, nil when the last write worked

	writeMu sync.Mutex               // one writer at a time: the flusher or Replace
	flushes *prometheus.HistogramVec // by result: ok, error; nil without metrics
	kick    chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
}

// Open connects, applies missing migrations and starts the flusher and the
// retention loop. Errors name what is wrong: an unparsable URL, an
// unreachable server, a schema newer than this binary.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HistoryLimit <= 0 {
		cfg.HistoryLimit = 1_000_000
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 100 * time.Millisecond
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 10_000
	}
	if cfg.RetentionInterval <= 0 {
		cfg.RetentionInterval = time.Hour
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("pgstore: the connection string is invalid: %s", redact(err))
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: cannot reach PostgreSQL at %s:%d: %w", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, err)
	}
	applied, err := Migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if len(applied) > 0 {
		cfg.Logger.Info("pgstore: schema migrated", "applied", applied)
	}
	runCtx, stop := context.WithCancel(context.Background())
	s := &Store{cfg: cfg, log: cfg.Logger, pool: pool, pend: newPending(), kick: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	if reg := cfg.Registerer; reg != nil {
		s.flushes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "presence_store_flush_duration_seconds",
			Help:    "Time to write one batch to PostgreSQL, by result (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"result"})
		reg.MustRegister(s.flushes,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "presence_store_queue_events",
				Help: "Changes buffered for PostgreSQL, not yet written.",
			}, func() float64 {
				s.mu.Lock()
				defer s.mu.Unlock()
				return float64(s.pend.events)
			}),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "presence_store_dropped_rows_total",
				Help: "History and session rows dropped because PostgreSQL could not be written for too long.",
			}, func() float64 { return float64(s.Dropped()) }))
	}
	go s.run(runCtx)
	return s, nil
}

// redact keeps passwords out of connection-string errors.
func redact(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "password="); i >= 0 {
		return msg[:i] + "password=(hidden)"
	}
	return msg
}

// Pool returns the connection pool, for tools and tests that query the
// tables directly.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Health returns nil while writes succeed, and the last write error while
// the store is degraded (PostgreSQL away, changes buffered in memory).
func (s *Store) Health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

// Dropped returns how many history and session rows were dropped since
// Open because PostgreSQL could not be written for too long.
func (s *Store) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Close stops the flusher, writes what is buffered (for up to 5s) and
// closes the pool.
func (s *Store) Close() error {
	s.stop()
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Flush(ctx)
	s.pool.Close()
	if err != nil {
		return fmt.Errorf("pgstore: final flush: %w", err)
	}
	return nil
}

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
