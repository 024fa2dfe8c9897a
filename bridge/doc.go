// Package bridge serves the tracker's state to dashboards over HTTP: REST
// for the current presence and a WebSocket stream of every change.
//
// # How it fits
//
// The bridge is an adapter around presence.Tracker, like the component; it
// reads, never writes, the tracker here. A WebSocket client first gets a
// snapshot stamped with the feed's sequence number, then every later event in
// order, so it never misses or double-counts a change. The JSON shapes are
// documented in docs/api.md; the types in json.go are their single source.
//
// # Design decisions
//
// Wire types are separate from the core's types, so the core can change
// without breaking clients, and JSON tags stay out of the presence package.
// Each WebSocket connection follows the shared feed with its own
// Subscription instead of a hub fanning out copies: a slow client falls
// behind alone and gets a fresh snapshot when it lags past the feed's ring
// (a sharded hub with per-connection queues is the plan for large fan-out).
// Routes are matched by path only, then by method inside, so that unknown
// methods get a JSON 405 with an Allow header instead of net/http's text.
package bridge
