// Package memstore is the in-memory Store, the default when no database is
// configured. It keeps the last state of every user for the life of the
// process: enough for presenced to run embedded, and the reference the
// other backends are checked against.
//
// Design: one map of users under one mutex, each holding its online
// resources; events are applied in order. It duplicates the tracker's state
// on purpose, so that the path every backend takes (feed → Writer → Store →
// Load → Restore) runs in the default configuration too.
package memstore
