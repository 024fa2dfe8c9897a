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
// encodes each change once and, at most once per flush interval, queues
// the changes since the last flush as one batch for every connection; a
// filtered connection filters for itself, and the connections that see
// everything share the batch's bytes, framed once (the wire layer, below).
// A write costs about the same whatever it carries, so the interval
// (stretched under a heavy fan-out) is what bounds the CPU of a delivery.
// A connection costs one reader goroutine while idle. Its writes come from
// a pool of workers doing non-blocking writes (pool.go, rawwrite.go), and
// from a goroutine of its own only while its socket is full (drain.go).
// Alternatives measured
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
//
// # The wire layer
//
// What a stream client reads is made in three layers, each in one place.
// The messages' JSON: wire.go (change, "changes", snapshot, error), pinned
// byte for byte by golden files (testdata/stream_*.golden), with a test of
// the keys the load tools scan for, since they read the bytes instead of
// decoding them. The frames: internal/wsframe, which writes server frames
// (AppendHeader, AppendFrame, AppendClose) as well as it reads client
// ones; the bridge builds no frame bytes itself. The socket: the writers
// (pool.go, rawwrite.go, drain.go), which take from a connection's queue
// (queue.go: push, and the taking that filters and picks whole batches)
// and frame with framed.go.
//
// The hub hands out transport-neutral batches: a hubEvent holds the change
// message's JSON and what a connection filters by (seq, user, show), and
// no frame. The frames that are the same for many connections are the
// transport's cache: a batch that connections seeing everything get whole
// is framed once, by the first writer that sends it, into the batch's
// framedBatch (hubBatch.wire, framed.go), in one allocation; a filtered
// connection's changes are framed in its writer's buffer, kept from one
// write to the next, so a delivery allocates nothing.
//
// Alternatives considered. The socket owner as a package of its own: its
// two state machines (drainFast, drain) read and change most of
// streamConn (queue, filter, seq, visible, inbox, resync, slow, closed,
// the snapshot), so the package would need them exported, or an interface
// as wide, for one caller; it stays in package bridge, in its own files.
// The messages' JSON as a package (bridge/internal/wire): the stream's
// messages share user and resource shapes with REST (json.go), the tests
// decode the stream into those types, and codes_test.go finds the error
// codes in errorFrame literals, so it would export all of them for one
// importer; the load tools, which scan bytes for speed, would gain nothing
// from its types, so what they scan is guarded by wire_test.go. The
// framed batch in a cache keyed by batch rather than in the batch: a
// lookup and a lock per delivery, and an eviction. Each change framed at
// publish and the frame shared, as the hub did (hubEvent.wire): one
// allocation per change, though most go out inside a "changes" message,
// to spare a filtered client's writer a copy of a few hundred bytes next
// to a write(2) of about 10 µs. A "changes" message marshalled from
// json.RawMessage: it would check and copy every change again; it is
// written around the encoded changes instead, its length (changesLen)
// known first so that the header goes in front without a second copy.
// Measured against the build before: no change in speed beyond the
// noise, and fewer bytes and allocations per round (docs/benchmarks.md,
// "Wire layer (issue 14)").
package bridge
