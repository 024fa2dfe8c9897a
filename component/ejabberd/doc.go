// Package ejabberd is a client of ejabberd's HTTP API (mod_http_api) for
// presenced: it reads the server's sessions, so that a presenced that
// knows nobody (a restart with the memory store) or holds ghosts is
// corrected from the server's own list.
//
// # How it fits
//
// [Client] implements sessions.Source with [Client.ListSessions] (the
// command connected_users_info). cmd/presenced runs it in a
// sessions.Reconciler with the probe policy: sessions presenced tracks and
// ejabberd no longer lists go offline (reason reconcile), and the users of
// sessions presenced does not know are probed by the component
// (component.Component.Probe), never put online from the list. The probe
// is answered only for users who have the component on their roster, so
// users who never let the component see their presence never appear;
// answers come back as ordinary presence, with the real show, status and
// priority. Passes run at start, after every handshake of the component
// and every reconcile interval. This package imports presence and
// component/sessions, nothing of component.
//
// # The API used (ejabberd 23.01, measured here)
//
// mod_http_api serves every ejabberd command as POST URL/command with a
// JSON object of the command's arguments. connected_users_info takes none
// ({}; any argument is refused with 400 "Request have unknown arguments")
// and answers a JSON array with, per session: jid (full), resource,
// priority, status (the last show: available, away, chat, dnd, xa; or
// unavailable before the initial presence and after an unavailable),
// statustext, connection, ip, port, node, uptime. The golden files in
// testdata are answers captured from the real server. Errors: 401 with
// {"status":"error","code":10,...} for wrong credentials, 403 with code 32
// when api_permissions does not allow the caller, 404 with code 40 for an
// unknown command, 400 with a bare JSON string for bad arguments.
//
// Authentication is HTTP Basic with an account's full JID and password;
// api_permissions then decides which commands that account (or, with no
// credentials, which source address) may run. docs/setup-ejabberd.md
// shows a listener on loopback and a rule that allows presenced's account
// connected_users_info and nothing else.
//
// # Design decisions
//
// connected_users_info rather than connected_users_vhost plus
// user_sessions_info per user: one request for the whole server, and it
// carries show, status and priority. It lists every virtual host, so a
// domain's snapshot is the full list filtered here; the cost is one list
// per configured domain per pass, which for one or two domains is less
// than a request per user.
//
// A session ejabberd lists as unavailable is left out: it is connected but
// has no presence (it may never send any). presence.Tracker.Reconcile
// would otherwise keep a ghost alive, or the probe policy probe a user
// who is not available.
//
// Errors of the answer fail the call; a body that is no array of sessions
// is an error, never an empty list (which would take everyone offline).
// Every request is bounded in time (Client.Timeout) and size
// (Client.MaxResponse); a failed pass is logged by the reconciler and
// retried at the next interval, never in a loop.
//
// # Alternatives considered
//
//   - ejabberdctl on the server's host: one Erlang VM per call (about
//     0.4 s) and shell access for presenced.
//   - mod_privilege (XEP-0356) alone: on 23.01 it does not send the
//     presence of users already online when the component connects (see
//     docs/setup-ejabberd.md), which is exactly what a restart needs.
//   - Bringing listed sessions online (the MongooseIM policy): ejabberd
//     lists every session, also of users who never gave the component
//     their presence.
package ejabberd
