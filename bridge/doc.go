// Package bridge serves the tracker's state to dashboards over HTTP: REST
// for the current presence and a WebSocket stream of every change.
//
// # How it fits
//
// The bridge is an adapter around presence.Tracker, like the component; it
// reads, never writes, the tracker here. A WebSocket client first gets a
// snapshot stamped with the feed's sequence number, then every later event in
// order, so it never misses or double-counts a change. The JSON shapes are
// documented in docs/api.md and docs/websocket.md; their single source is
// the types of json.go (users, resources, REST bodies) and wire.go (the
// stream's messages, whose bytes wire_test.go pins in golden files).
//
// # Design decisions
//
// Wire types are separate from the core's types, so the core can change
// without breaking clients, and JSON tags stay out of the presence package.
// The stream has one subscription to the tracker (the hub, hub.go), which
// encodes and frames each change once and, at most once per flush
// interval, queues the changes since the last flush as one batch for every
// connection; a filtered connection filters for itself, and the
// connections that see everything share the batch's bytes. A write costs
// about the same whatever it carries, so the interval (stretched under a
// heavy fan-out) is what bounds the CPU of a delivery. A connection costs
// one reader goroutine while idle. Its writes come from a pool of workers
// doing non-blocking writes (pool.go, rawwrite.go), and from a goroutine of its own
// only while its socket is full. Alternatives measured
// (docs/benchmarks.md): a Subscription per connection (every connection
// encodes every change); a writer goroutine per connection, long-lived (a
// stack per idle client) or started per change (at 10,000 clients, more
// time in goroutine start-up, scheduling and deadlines than in the write
// itself); a queue entry per change per connection, paced per connection
// (a lock and a "changes" message built per change and connection).
//
// A connect storm shares snapshots (snapshot.go): connects of the full
// feed (viewFilter.all) take the snapshot frame encoded for another
// connect less than a second ago (or than its encoding took, if longer),
// or wait for the one being encoded, and
// the hub replays the changes after its seq from the resume window, as
// for a resume; so a snapshot costs one encoding per second of storm, not
// one per client, and its bytes are written from one copy. The encoding
// runs outside the tracker's and the hub's locks, on a View. Alternatives
// considered: an encoding per connect (at 100,000 users about 0.4 s of
// CPU each, docs/benchmarks.md); sharing only among connects at the same
// feed position (under a steady stream of changes two connects seldom
// are); keeping an encoded snapshot up to date at every change (costs
// every change, with or without connects, and JSON is not patched in
// place); sharing the snapshots of filtered clients too, keyed by filter
// and token (filters and claims compare as sets, and a storm is mostly
// dashboards of the full feed: left for when one is measured). Filtered
// connects encode their own snapshot, but from a View that connects share
// for a second (presence.Tracker.RecentView), followed by the changes
// after it from the window as for a resume: a View makes the updates
// after it copy the index nodes they touch, and one per connect made
// every update copy a leaf while connects came (the presence package's
// doc). A resync (the hub lagged) and a "subscribe" message still take a
// View of their own. REST pages and counts read the tracker's index
// under its lock, a bounded step at a time (presence.Tracker.Range and
// Count), not a View.
//
// Every byte written to a stream's socket goes through its one writer.
// gorilla/websocket only does the handshake: it writes close frames by
// itself from its read path (over the read limit, on protocol errors),
// which could land inside a frame being written, so after the upgrade the
// bridge drops gorilla's Conn and reads the client's frames with
// internal/wsframe's Reader, which never writes; pongs, close replies and
// the closes for protocol errors (1002, 1007, 1009, binary: 1003) are
// queued to the writer like any frame. reader.go has the alternatives
// weighed (custom handlers, a wrapped net.Conn, a write lock).
// Routes are matched by path only, then by method inside, so that unknown
// methods get a JSON 405 with an Allow header instead of net/http's text.
package bridge
