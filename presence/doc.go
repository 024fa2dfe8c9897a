// Package presence is the tracking core of presenced: it knows, per user and
// per resource, who is online and how, and publishes every change on an
// ordered feed.
//
// # How it fits
//
// The package imports no XMPP, HTTP or SQL. Adapters translate their input
// into [Update] values (the component from presence stanzas, later the bridge
// for web sessions) and call [Tracker.Apply]; readers take a consistent
// [Tracker.Snapshot] and follow the change feed from the sequence number the
// snapshot was taken at ([Tracker.Subscribe]). The store package persists
// the feed and gives it back with [Tracker.Restore] at start-up.
//
// # Semantics
//
// A user is identified by a bare JID string, a resource by its resourcepart;
// the caller normalizes both (the core compares bytes). Each available
// resource has a show value, a status text and a priority. A user's
// aggregate presence follows RFC 6121: the available resource with the
// highest priority wins (negative priorities included: such a resource is
// still online), and a tie goes to the resource that changed most recently.
// An offline user keeps the time it went offline and its last status.
//
// Every resource also remembers when it was last confirmed: any presence
// report, even one that changes nothing, confirms it. [Tracker.Expire] marks
// offline every resource not confirmed since a given instant; the component
// uses it after a reconnect to drop the resources whose users did not answer
// a probe, so no ghost survives a lost link.
//
// # Design decisions
//
// Shared state under one mutex versus one goroutine per user: the state is a
// map of small per-user records guarded by a single mutex. A goroutine per
// user (the original OTP design's actor) costs a stack per user and a channel
// hand-off per update, and makes consistent snapshots hard (every actor would
// have to be asked). One mutex keeps Apply, Snapshot and the feed trivially
// consistent; sharding it is a later, local change behind the same API.
//
// The change feed is a single bounded ring of events shared by all
// subscribers rather than a queue per subscriber: the core never blocks on a
// slow reader and never copies an event per subscriber. A subscriber that
// falls further behind than the ring holds gets [ErrLagged] and must resync
// from a new snapshot. Waiting readers are woken by closing a channel that is
// only allocated while someone waits, so an update with no waiting reader
// allocates nothing for the feed.
//
// Time comes from an injected [Clock] so that timeouts and tests are
// deterministic.
package presence
