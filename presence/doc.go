// Package presence is the tracking core of presenced: it knows, per user and
// per resource, who is online and how, and publishes every change on an
// ordered feed.
//
// # How it fits
//
// The package imports no XMPP, HTTP or SQL. Adapters translate their input
// into [Update] values (the component from presence stanzas, the bridge for
// web sessions) and call [Tracker.Apply]; readers call [Tracker.Subscribe],
// which returns a consistent snapshot and, atomically with it, a
// subscription to every later change. The store package persists the feed
// and gives it back with [Tracker.Restore] at start-up.
//
// # Semantics
//
// A user is identified by a bare JID string, a resource by its resourcepart;
// the caller normalizes both (the core compares bytes). Each available
// resource has a show value, a status text (and its translations), a
// priority, an idle time (XEP-0319) and the time of its last change, which
// may come from a delay stamp. A user's aggregate presence follows RFC 6121:
// the available resource with the highest priority wins (negative priorities
// included: such a resource is still online); a tie goes to the resource
// that changed most recently, then to the smaller name, so every view names
// the same winner. An offline user keeps, in the sense of XEP-0012, the time
// it went offline and its last status.
//
// # No ghosts
//
// Every offline transition carries a [Reason]. Besides unavailable presence,
// four mechanisms take resources offline that nobody said goodbye for:
//
//   - Heartbeats: [Tracker.Silent] hands out resources whose client has
//     not shown itself for an interval; the component pings them (XEP-0199)
//     and reports [Tracker.Confirm] or [Tracker.ExpireResource] (reason
//     timeout).
//   - Probes: after a reconnect, and in a slow periodic sweep, the
//     component probes users and calls [Tracker.SettleAll] or
//     [Tracker.Settle] for what no answer confirmed: offline (reason
//     reconcile; restart for restored resources never confirmed) for users
//     whose server answers probes, a ping for the others (users known by
//     directed presence).
//   - Reconciliation: [Tracker.Reconcile] takes an authoritative list of
//     sessions, for example from a server's admin API.
//   - TTL: a resource applied with [Update.TTL] (web sessions) goes offline
//     when not refreshed in time; [Tracker.ExpireDue] enforces it.
//
// Two kinds of word confirm a resource, and they are kept apart: the
// client's own (its presence, its answer to a ping) and the server's (its
// answer to a probe, its session list: [Update.Answer]). A server answers a
// probe from the presence it cached, also for a client that froze with its
// TCP connection open; so the server's word keeps a resource through a
// probe round, but only the client's keeps it through a ping, and a
// resource that left a ping unanswered is remembered as stale, so that the
// server's cached word does not bring it back. Alternative considered: one
// confirmation time for both (the design until then); a frozen resource
// with a live sibling then stayed online for ever, because each probe that
// settled the sibling confirmed it too.
//
// # Design decisions
//
// Shared state under one mutex versus one goroutine per user: the state is
// a map of small per-user records guarded by a single mutex. A goroutine per
// user (the original OTP design's actor) costs a stack per user and a
// channel hand-off per update, and makes consistent snapshots hard (every
// actor would have to be asked). One mutex keeps Apply, snapshots and the
// feed trivially consistent, and on this project's 2-core machines it is
// also faster: docs/benchmarks.md has both variants measured in one run.
//
// Each subscription has a bounded ring buffer of its own, filled under the
// tracker's lock by copying the event (no allocation, no channel send), and
// a filter (domains, users) applied before the copy, so a subscriber that
// follows one domain is not pushed out by the traffic of others. The core
// never waits for a subscriber: one whose buffer is full is ended with
// [ErrLagged] and must resubscribe, which gives it a fresh snapshot.
// Subscribers are expected to be few (the store writer, the bridge's hub);
// fan-out to many connections belongs to the bridge. Waiting readers are
// woken by closing a channel that exists only while someone waits, so an
// update allocates nothing for the feed.
//
// Reads never copy everyone under the lock. Besides the map of users, the
// tracker keeps an index: every user's immutable view (a User, rebuilt at
// each change of that user) in B-trees ordered by JID, one of everyone
// and one per domain label and aggregate state, and beside them the
// counts of users and resources per label and state. [Tracker.View]
// copies the trees under the lock in O(labels): the trees are
// copy-on-write (github.com/tidwall/btree), so a View is a consistent
// picture at one feed position that readers walk without the lock while
// updates go on; the next update after a View copies the few nodes it
// touches. A page (limit, cursor, filters by domain, user and state)
// merges the buckets the filter selects: O(page + log users) per bucket;
// [Tracker.Counts] and the gauges are O(labels); [Tracker.SubscribeView]
// gives a connect its snapshot in O(labels). Labels are the served
// domains ([Options.Domains]) plus [OtherDomain], so that clients naming
// new domains cannot grow them; a filter on a domain that is not served
// scans the other bucket. Costs, measured at 1,000,000 users
// (docs/benchmarks.md): an update writes two trees and allocates a view
// (about 2.5 times the cost of an update without the index, at that
// size, from cache misses in the trees; the tree items carry 16 bytes of
// the JID so that a search does not follow pointers), and about twice the
// memory per user. Alternatives considered: copying the users under the
// lock (the design until then: 2.6 to 3.2 s of lock per read at
// 1,000,000 users, 6.8 s for one update during reads); an RWMutex
// around that copy (readers still block updates for the whole copy);
// a sorted slice rebuilt per change (O(users) per update); per-user
// versioned slots read without copying trees (no allocation per
// update for order, but a version chain to trim per reader: more code
// and a reader protocol for a gain not yet measured); dropping the tree
// of everyone, so that an update writes one tree (an unfiltered page
// then merges labels times states buckets); the last is the next step if
// updates at that size must get faster.
//
// Time comes from an injected [Clock]; the only real timer is
// [Tracker.RunTimers], which just calls ExpireDue. Tests advance a fake
// clock and call the timer methods themselves: no sleeps.
package presence
