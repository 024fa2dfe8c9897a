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
// each change of that user, in one allocation with its resource when it
// has one) in B-trees ordered by JID, one per domain label and aggregate
// state, and beside them the counts of users and resources per label and
// state. Labels are the served domains ([Options.Domains]) plus
// [OtherDomain], so that clients naming new domains cannot grow them; a
// filter on a domain that is not served scans the other bucket. A query
// (limit, cursor, filters by domain, user and state) merges the buckets
// it selects with a heap: O(buckets · log users + page · log buckets); a
// page of everyone merges every bucket (labels times states).
// [Tracker.Counts] and the gauges are O(labels).
//
// There are two ways to read the index, and each reader takes the one
// that costs the updates least:
//
//   - Short reads, whose cost is what they return, read the index itself
//     under the lock: [Tracker.Range] (a REST page) in steps of at most
//     512 users, calling back between steps without the lock, and
//     [Tracker.Count] from whole buckets, O(labels · states). A page
//     holds up updates for tens of microseconds and costs them nothing
//     afterwards.
//   - Long reads (a snapshot of everyone for a WebSocket connect, an
//     admin command listing every online user, a query that must visit
//     users a filter then refuses) take a [View]: [Tracker.View] copies
//     the trees under the lock in O(labels). The trees are copy-on-write
//     (github.com/tidwall/btree), so a View is a consistent picture at
//     one feed position that readers walk without the lock while updates
//     go on; a query's fallback View copies only the buckets it reads.
//
// What a View costs is paid by the updates after it: each copies the
// nodes on its path that a View still shares, the leaf almost always. At
// 1,000,000 users there are about 90,000 leaves, so as long as Views come
// more often than about once a second the updates between two of them
// rarely touch the same leaf, and nearly every update copies a leaf and
// most of its path: 1.1 to 1.6 KiB of garbage per update instead of 300
// bytes, and with it collections of the whole heap (docs/benchmarks.md).
// Hence short reads take no View, and long reads that catch up from the
// View's position anyway (a connect's snapshot is followed by the changes
// after it) share one of at most a second ago ([Tracker.RecentView]),
// so that a storm of connects takes one View a second, not one each. An
// update writes one tree (two when the user's state changes), and the
// nodes are small (degree 8: 7 to 15 items of 24 bytes, 16 of them the
// JID's first bytes, so that a search rarely follows a pointer).
// Costs and the targets they meet or miss, measured at 1,000,000 users,
// are in docs/benchmarks.md.
//
// Alternatives considered: copying the users under the lock (the design
// until the index: seconds of lock per read at 1,000,000 users); an
// RWMutex around that copy (readers still block updates for the whole
// copy); a sorted slice rebuilt per change (O(users) per update); a tree
// of everyone beside the buckets (the first index: two tree writes and
// two copied paths per update, for an unfiltered page that read one tree);
// the library's default degree 32 (nodes of up to 63 items: a copied path
// about twice the bytes, BenchmarkApplyViewEvery); a View for every read
// (the design before Range and Count: updates during reads ran at 72-86 %
// of their rate without readers, with 1.1-1.6 KiB copied per update);
// one View per 5 ms shared between pages (saved nothing: below about one
// View a second each update still copies its leaf, and a page a second
// old would show users who left); per-user versioned slots, so that a
// change of a status writes no tree at all (a View would read the newest
// version at or before its Seq; old versions can only be trimmed once no
// View needs them, which the tracker would have to learn from the
// garbage collector; and changes of show, most changes, move users
// between buckets all the same).
//
// Time comes from an injected [Clock]; the only real timer is
// [Tracker.RunTimers], which just calls ExpireDue. Tests advance a fake
// clock and call the timer methods themselves: no sleeps.
package presence
