// Package store defines what the presence core persists and restores, and
// the writer that carries the core's change feed to a Store.
//
// # How it fits
//
// A [Store] is a mirror of the tracker: [Writer] follows the tracker's
// change feed and hands events to [Store.Apply] in batches, in order; at
// start-up the composition root (internal/app) calls [Store.Load] and gives
// the result to presence.Tracker.Restore. Backends live in subpackages:
// store/memstore (embedded, the default) and store/pgstore (PostgreSQL: the
// current state mirrored, history, sessions and report views for plain
// SQL). store/storetest is the conformance suite every backend runs, so
// that the backends cannot drift apart.
//
// # Design decisions
//
// The store sits behind the feed, not in front of the tracker: the core
// never waits on I/O, and a slow or absent backend delays only its mirror.
// The alternative, writing through on every update, would couple the XMPP
// read loop to database latency. When the writer falls behind the feed it
// does not try to reconstruct what it missed: it hands the backend a full
// snapshot with [Store.Replace], so the mirror ends right whatever happened.
package store
