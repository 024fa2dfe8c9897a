// Package sessions makes a presence.Tracker agree with an XMPP server's own
// list of sessions: the part of reconciliation that does not depend on
// which server it is.
//
// # How it fits
//
// The component (package component) learns presence from the stanzas the
// server routes to it and repairs what it missed with probes. Neither
// helps when presenced knows nobody (a restart with the memory store) or
// holds a ghost whose goodbye was lost. A server's admin API knows better:
// [Source] is "a server's list of sessions", implemented by
// *mongooseim.Client (admin GraphQL, session.listSessions) and
// *ejabberd.Client (mod_http_api, connected_users_info). [Reconciler]
// takes a snapshot of each domain every Interval and corrects the tracker
// with it. Decisions stay in presence (Tracker.Reconcile); this package
// only schedules, filters and counts. It imports presence and mellium's
// jid, nothing of component or of a server's package, so both server
// packages and cmd/presenced can use it without a wrong-way import.
//
// # Two policies for sessions presenced does not know
//
// A resource that presenced tracks and the server does not list goes
// offline (reason reconcile; restart for a restored resource nobody
// confirmed) under both policies. They differ on a session the server
// lists and presenced does not know:
//
//   - Without Probe (MongooseIM today): it comes online from the list, with
//     what the list says of it. MongooseIM's listSessions gives no show or
//     status, so such a session is plainly available until its next
//     presence.
//   - With Probe (ejabberd): its user is handed to Probe (the component
//     sends a presence probe) and nothing else happens. The server answers
//     the probe only if the user has the component on the roster with a
//     from or both subscription, and the answer brings the user online
//     through the normal presence path, with the real show, status and
//     priority. So a user who never let the component see their presence
//     never appears, however the server lists them. "Probed, then
//     confirmed": the list only says whom to ask.
//
// For MongooseIM the first policy stays as it was: its listSessions also
// lists users without the component on their roster (measured on 6.1.0),
// so the probe policy would be right for it too, but changing it is a
// separate decision (docs/setup-mongooseim.md).
//
// # When passes run
//
// The first pass runs at once, then one every Interval after the end of
// the previous one, and one whenever Trigger receives. cmd/presenced
// sends on Trigger after every handshake of the component, because a
// probe needs a link: at start the first pass usually comes before the
// handshake, its probes fail with the component's "not connected" error
// (logged, not counted as a failed pass), and the pass after the
// handshake sends them. A restarted presenced therefore has the users back
// within the time of the handshake, one list request and one probe round
// trip (docs/reliability.md).
//
// # Design decisions
//
// A snapshot is dated before its request. Reconcile keeps a resource that a
// report confirmed after the snapshot's instant, and does not bring back a
// session that said goodbye after it. Reading the tracker's clock before
// the request makes the snapshot at least as recent as its date, so a
// report that races the request is never undone.
//
// With Probe, the sessions handed to Reconcile are only those presenced
// already tracks (so it confirms them and brings nobody online); the
// others are probed. A known resource that goes offline between that
// filter and Reconcile is not brought back: it went offline after the
// snapshot's instant, which Reconcile checks.
//
// One snapshot and one Reconcile per domain, not one for the whole server:
// a failing domain then holds the others back for nothing, each snapshot is
// dated by its own request, and a tracker that also holds users of other
// sources (another server, web presence) is corrected only where this server
// is authoritative. An empty Domains reconciles everything, for a tracker
// that follows this server alone.
//
// A failed pass is logged and retried at the next interval or trigger,
// never in a loop; triggers that come while a pass runs are coalesced into
// one. Metrics go to the Registerer given, never to the global registry.
//
// # Alternatives considered
//
//   - The interface and the loop in package mongooseim, with ejabberd
//     importing it: a server package would then depend on another server's.
//   - The loop in package component, which holds the link the probes need:
//     the component would then know admin APIs, and MongooseIM's policy
//     needs no link at all. Probe as a function keeps the reconciler
//     ignorant of XMPP.
//   - Bringing listed sessions online and letting the probe sweep correct
//     them: a user without the component on the roster (ejabberd lists
//     every session) would show online, with no show or status, until the
//     sweep took them offline, and the next pass would bring them back.
package sessions
