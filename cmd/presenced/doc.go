// Command presenced tells dashboards who is online on an XMPP deployment.
//
// It attaches to the XMPP server as an external component, tracks presence
// in memory (mirrored to a store) and serves it over REST and WebSocket:
//
//	presenced -jid presence.example.org -secret S -server 127.0.0.1:8888 -http 127.0.0.1:8080
//
// Every flag can also be set with an environment variable (PRESENCED_JID,
// PRESENCED_SECRET, ...; see -help); a flag on the command line wins.
//
// main only parses options; Run wires the subsystems under a supervisor
// (github.com/thejerf/suture/v4), like the original OTP design's one_for_one
// tree: the component link, the HTTP bridge and the store writer each run as
// a service that is logged and restarted alone, with backoff, if it fails or
// panics. SIGINT or SIGTERM stops them in order: first the component (no new
// input), then the bridge (clients are told the server goes away), last the
// store writer (it flushes what is already published).
package main
