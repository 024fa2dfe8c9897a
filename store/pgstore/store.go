package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

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

// Open connects, applies missing migrations and starts the run loop (the
// flusher and retention). Errors name what is wrong: an unparsable URL, an
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
