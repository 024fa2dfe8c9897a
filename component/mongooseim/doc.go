// Package mongooseim is presenced's client of MongooseIM: of its admin
// GraphQL API, to read the server's sessions and reconcile the tracker with
// them ([Client]); and of its REST admin API and its database, to put the
// component on users' rosters, through which the component learns
// presence ([Provisioner], [REST]).
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
// presence; this package only translates. It imports presence,
// component/sessions and internal/jidnorm, nothing of component; and pgx
// for MongooseIM's database.
//
// [Provisioner.Provision] puts the component on users' rosters with
// subscription from (or both), which is how the component receives
// presence on MongooseIM; `presenced provision` runs it.
//
// # The API used
//
// MongooseIM serves the admin schema at a [[listen.http]] with a
// mongoose_graphql_handler of schema_endpoint = "admin", protected by the
// handler's username and password with HTTP Basic authentication (the
// stock configuration: port 5551, path /api/graphql, host "localhost").
// Requests are POSTs of {"query", "variables"} in JSON. Admin operations
// are nested by category; the one used is Query.session.listSessions.
// Errors come as a GraphQL errors array
// whose entries carry extensions.code: with status 200 for errors of
// resolvers, 400 for a query the server rejects, 401 for wrong credentials
// (mongoose_graphql_errors). The schema files in testdata/schema are the
// server's own, and the tests validate every request against them.
//
// The REST admin API is a mongoose_admin_api handler of a [[listen.http]]
// (the stock configuration: 127.0.0.1:8088, path /api, host "localhost",
// no credentials), with HTTP Basic authentication when it has a username
// and password. Provisioning uses two of its contacts routes: GET
// /contacts/USER (the user's roster, as JSON items of jid, subscription and
// ask) and PUT /contacts/USER/CONTACT with {"action": "subscribed"} (204).
// Errors are a status with a JSON string ("Domain not found"), or, for a
// crash of the handler, 500 and an empty body; a path without a route is
// 404 with an empty body. The tests' stand-in (fakerest_test.go) answers as
// 6.1.0 was measured to.
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
// # Provisioning: a pending request in the database, approved over REST
//
// The component must be on the user's roster with subscription from or
// both, so that the server sends it the user's presence and answers its
// probes. On MongooseIM 6.1.0 (measured) the admin GraphQL API cannot do
// it: every roster call whose contact is a JID without a local part, such
// as an external component's, fails input coercion of its JID scalar
// (jid_without_local_part, HTTP 400), and its mutations that add contacts
// check that both JIDs are accounts. The REST admin API (mongoose_admin_api)
// parses the contact with jid:from_binary, which takes a bare domain, but
// its POST /contacts (add a contact) checks for accounts as well (404, "The
// user presence.example.org does not exist"), and MongooseIM has no
// pre-approval: a subscribed sent without a pending request changes
// nothing (mod_roster's out_state_change).
//
// So Provision makes the request pending itself, where mod_roster keeps
// it: one SQL statement per StatementUsers users writes the component's
// item in rosterusers with ask 'I' (sqlPending), as if the component had
// sent subscribe. Then, for each user, PUT /contacts/USER/COMPONENT with
// action subscribed (REST.Subscribed) approves it as the user's client
// would: mod_roster_api:subscription/3 runs process_subscription, the item
// becomes from, it is pushed to the user's sessions, and mod_presence
// sends the component the user's current presence, so that a user online
// is seen at once (measured on 6.1.0). A GET of the roster before tells
// users without an account (6.1.0 answers it with HTTP 500, ErrNoSuchUser)
// from the others, so that nothing is written for them, and one after
// verifies the item. Writing rows alone would do for users offline, whose
// next session reads them, but not for a session already open, which
// never learns of them.
//
// The requests go Concurrency at a time on keep-alive connections (the
// REST client's transport keeps enough idle ones), each bounded by
// REST.Timeout; none is retried: a run is idempotent, and running it again
// is the retry. What fails every user alike (wrong credentials, no such
// route, a server that cannot be reached, the database) stops the run
// before it writes; once rows are written every user is finished or its
// row put back as it was (sqlRestore), even when the caller's context
// ends, so that no request stays pending (a client would show it) and no
// from is taken away.
//
// # Alternatives considered
//
//   - The REST admin API for the session list: MongooseIM's newer
//     commands are GraphQL only, it tells no more about presence, and it
//     is gone from 6.6.0 on (provisioning needs it all the same).
//   - The component sending subscribe itself, answered by the same PUT:
//     it needs the component connected, and the user's client shows the
//     request until the PUT comes.
//   - mongooseimctl over SSH, or the Erlang distribution: heavy and
//     operationally intrusive for one list of sessions.
//   - Sending the component's subscribe with GraphQL's stanza.sendStanza:
//     mongoose_stanza_api refuses a sender that is not an account of a
//     hosted domain, and the component is neither.
//   - A GraphQL client library: two hand-written queries do not need one,
//     and error handling stays explicit. Tests parse and validate with
//     github.com/vektah/gqlparser/v2 against the real schema instead.
package mongooseim
