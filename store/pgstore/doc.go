// Package pgstore is the PostgreSQL store.Store: it mirrors the current
// presence, so that presenced survives restarts, and keeps a history that
// people query with plain SQL for reports (docs/reporting.md).
//
// # How it fits
//
// store.Writer hands it the tracker's events; [Store.Apply] only records
// them in memory and returns at once, and a flusher goroutine writes them in
// batches: a write-behind mirror. The core never waits on SQL.
//
// # Design decisions
//
// Coalescing versus writing every event: current state is coalesced per
// resource (only the last state of a resource in a batch is written), while
// history and session boundaries keep every event. A batch goes in one
// transaction: history by COPY, current state by COPY into a temporary table
// and one upsert, sessions and last activity likewise. Writing each event
// as its own statement was measured 20× slower (docs/benchmarks.md).
//
// When PostgreSQL goes away, batches are kept and retried with the
// project's one retry policy, internal/backoff: nominally 2×FlushInterval
// after the first failure, doubling up to 10s, with equal jitter (a random
// point in the upper half of each delay); current state keeps coalescing in
// memory (bounded by the number of resources), so the final state of every
// resource always reaches the database. History and session rows are bounded by Config.HistoryLimit:
// beyond it the oldest are dropped, counted and logged. [Store.Health]
// reports the store as degraded meanwhile.
//
// Schema changes are versioned migrations embedded in the binary, applied
// under an advisory lock (safe to run twice, or from two processes at
// once). A database whose schema is newer than the binary is refused.
package pgstore
