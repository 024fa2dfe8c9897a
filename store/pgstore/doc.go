// Package pgstore is the PostgreSQL store.Store: it mirrors the current
// presence, so that presenced survives restarts, and keeps a history of
// changes and of sessions that people query with plain SQL for reports
// (docs/reporting.md); the REST API reads a user's history back
// ([Store.History]).
//
// # How it fits
//
// store.Writer hands it the tracker's events; [Store.Apply] only records
// them in memory and returns at once, and a flusher goroutine writes them in
// batches: a write-behind mirror. The core never waits on SQL. When
// presenced starts, [Store.Load] gives the tracker its restored state; each
// time the writer starts from a snapshot, [Store.Replace] makes the stored
// state equal to it.
//
// # Files
//
// One concept per file:
//
//   - store.go: Config, the Store and its state, Open (defaults, connection,
//     migrations, metrics, the run loop) and Close (a final flush), and what
//     it reports: Health, Dropped, Pool.
//   - pending.go: the pending buffer, what Apply recorded and no write has
//     taken yet: coalesced per resource and per user, history and session
//     boundaries in feed order, bounded by Config.HistoryLimit.
//   - flush.go: the flusher: Apply, Flush, and the run loop that flushes
//     every FlushInterval or on a full batch and retries failed writes.
//   - write.go: the SQL write path: one batch in one transaction.
//   - rows.go: the tables' column lists and the conversions between
//     presence values and rows.
//   - snapshot.go: the whole state at once: Load and Replace.
//   - history.go: a user's changes read back: History and HistoryRow.
//   - retention.go: deleting old history and ended sessions.
//   - migrate.go, migrations/: the schema's versioned migrations.
//
// # Design decisions
//
// Coalescing versus writing every event: current state is coalesced per
// resource and last activity per user (only the last state in a batch is
// written), while history and session boundaries keep every event. A batch
// goes in one transaction: history by COPY; current state by COPY into two
// temporary tables (what changed, what went offline), one DELETE and one
// upsert; last activity by COPY into a temporary table and one upsert;
// session boundaries set-wise, in at most three statements (close the
// sessions already open, COPY the whole ones, insert the ones left open).
// Writing each event as its own statement was measured 106× slower
// (docs/benchmarks.md).
//
// When PostgreSQL goes away, batches are kept and retried with the
// project's one retry policy, internal/backoff: nominally 2×FlushInterval
// after the first failure, doubling up to 10s, with equal jitter (a random
// point in the upper half of each delay); a write that works resets it.
// Current state keeps coalescing in memory (bounded by the number of
// resources and users), so the final state of every resource reaches the
// database once it is back. History and session rows are bounded by
// Config.HistoryLimit: beyond it the oldest history rows are dropped first,
// then the oldest session boundaries, counted ([Store.Dropped] and a
// metric) and logged. [Store.Health] reports the store as degraded
// meanwhile.
//
// Retention (Config.Retention, off by default) deletes history rows and
// ended sessions older than that every RetentionInterval, 10,000 rows per
// statement so that no lock is held for long.
//
// Schema changes are versioned migrations embedded in the binary, applied
// in one transaction under an advisory lock (safe to run twice, or from two
// processes at once). A database whose schema is newer than the binary is
// refused.
package pgstore
