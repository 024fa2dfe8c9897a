// Package mongooseim is a client of MongooseIM's admin GraphQL API for
// presenced: it reads the server's sessions to reconcile the tracker with
// them, and provisions the roster subscriptions through which the component
// learns presence.
//
// # How it fits
//
// The component (package component) learns presence from the stanzas the
// server routes to it, and repairs what it missed with probes. Neither helps
// when presenced knows nobody (a restart with the memory store) or holds a
// ghost whose goodbye was lost. The session reconciler (package sessions,
// shared with ejabberd's client) closes that gap with [Client] as its
// sessions.Source: every Interval it asks the server for the list of
// sessions of each configured domain ([Client.ListSessions], the admin
// query session.listSessions), takes the known resources the list lacks
// offline and, by default, probes the users of listed sessions it does not
// know, so that only a user's own answer brings it online: MongooseIM
// lists the sessions of users who never let the component see their
// presence too (measured on 6.1.0). presenced's -reconcile-listed online
// brings listed sessions online from the list instead. Decisions stay in
// presence; this package only translates. It imports presence and
// component/sessions, nothing of component.
//
// [Client.Subscribe] and [Client.SubscribeAll] put the component on users'
// rosters with a subscription both ways, which is how the component
// receives presence on MongooseIM.
//
// # The API used
//
// MongooseIM serves the admin schema at a [[listen.http]] with a
// mongoose_graphql_handler of schema_endpoint = "admin", protected by the
// handler's username and password with HTTP Basic authentication (the
// stock configuration: port 5551, path /api/graphql, host "localhost").
// Requests are POSTs of {"query", "variables"} in JSON. Admin operations
// are nested by category: Query.session.listSessions,
// Query.roster.getContact, Query.account.checkUser,
// Mutation.roster.subscription. Errors come as a GraphQL errors array
// whose entries carry extensions.code: with status 200 for errors of
// resolvers, 400 for a query the server rejects, 401 for wrong credentials
// (mongoose_graphql_errors). The schema files in testdata/schema are the
// server's own, and the tests validate every request against them.
//
// # What the schema gives, and what it does not
//
// session.listSessions(domain) lists, for each session, its full JID
// (user), connection, ip, port, priority, node and uptime. Only user and
// priority are asked for. It does not give the presence of a session: no
// show, no status, no idle time. So Reconcile keeps the show and status a
// known resource reported itself, and a session presenced did not know
// comes online as plainly available, with the listed priority, until its
// next presence (or the component's probe of an online user) says more.
//
// Nor does it say whether a session is available. MongooseIM sets a
// session's priority to null when it sends unavailable, and such sessions
// are left out; but it opens every session with priority 0 (sessions that
// the GraphQL API opens for its own subscriptions with 1), so a session
// that is connected and has not sent presence yet, or never does (some
// bots), is taken for available.
//
// session.listUsersWithStatus(domain, status) would tell: it matches each
// session's last presence against a show value ("available", "away",
// "chat", "dnd", "xa", or "unavailable" for none yet) and gives the status
// text. It is not used: the server asks every session process in turn, once
// per status queried, where listSessions only reads the session table; how
// it behaves with sessions that are not c2s processes (those of the GraphQL
// subscriptions) could not be checked here.
//
// # Design decisions
//
// A snapshot is dated before its request. Reconcile keeps a resource that a
// report confirmed after the snapshot's instant, and does not bring back a
// session that said goodbye after it. Reading the tracker's clock before
// the request makes the snapshot at least as recent as its date, so a
// report that races the request is never undone.
//
// One snapshot and one Reconcile per domain, not one for the whole server:
// a failing domain then holds the others back for nothing, each snapshot is
// dated by its own request, and a tracker that also holds users of other
// sources (another server, web presence) is corrected only where this server
// is authoritative. An empty Domains reconciles everything, for a tracker
// that follows this server alone.
//
// Errors of an answer fail the call even when data came with them: a
// partial list of sessions would take the missing ones offline.
//
// Every request is bounded in time (Client.Timeout) and in size
// (Client.MaxResponse); a failed pass is logged and retried at the next
// interval, never in a loop. Metrics go to the Registerer given, never to
// the global registry.
//
// # Subscriptions: why roster.subscription with INVITE then ACCEPT
//
// The component must be on the user's roster with subscription from or
// both, so that the server sends it the user's presence and answers its
// probes. roster.setMutualSubscription with action CONNECT, subscribeToAll
// and subscribeAllToAll look like the tool for it, but they add roster
// items on both sides and first check that both JIDs are accounts
// (mod_roster_api's add_contact): an external component has no account and
// no roster, so they fail with user_not_exist. roster.addContact checks the
// same. MongooseIM has no pre-approval either: a subscribed sent without a
// pending request changes nothing (mod_roster's out_state_change).
//
// So the package drives the ordinary protocol from the user's side with
// roster.subscription, which routes a presence stanza of the user's and
// updates the user's roster as a client's would: action INVITE sends
// subscribe to the component; the component answers subscribed and asks
// back with subscribe (package component does so once per user); action
// ACCEPT then approves that request, and the item ends with subscription
// both. roster.getContact tells the state in between, and
// account.checkUser rules out unknown users first (an INVITE for them would
// succeed and do nothing). The component must therefore be connected.
// SubscribeAll batches users into one query and one mutation per step
// (aliases u0, u1, ... with the users as variables), Client.BatchSize users
// at a time, and errors are attributed to users by the aliases in their
// paths.
//
// # Alternatives considered
//
//   - The older REST admin API: MongooseIM's newer commands are GraphQL
//     only, and it tells no more about presence.
//   - mongooseimctl over SSH, or the Erlang distribution: heavy and
//     operationally intrusive for one list of sessions.
//   - Sending the component's subscribe with stanza.sendStanza, which
//     would not need the component connected: mongoose_stanza_api refuses
//     a sender that is not an account of a hosted domain, and the
//     component is neither.
//   - A GraphQL client library: two hand-written queries do not need one,
//     and error handling stays explicit. Tests parse and validate with
//     github.com/vektah/gqlparser/v2 against the real schema instead.
package mongooseim
