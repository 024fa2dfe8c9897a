// Command presenced tells dashboards who is online on an XMPP deployment.
//
// It attaches to the XMPP server as an external component, tracks presence
// in memory (mirrored to a store) and serves it over REST and WebSocket:
//
//	presenced -jid presence.example.org -secret S -server 127.0.0.1:8888 -http 127.0.0.1:8080
//
// Every flag can also be set with an environment variable (PRESENCED_JID,
// PRESENCED_SECRET, ...; see -help) or a key of a TOML file (-config); a
// flag on the command line wins. docs/configuration.md is generated from
// the settings table (internal/app/settings.go).
//
// main only parses settings into an app.Config (app.ParseSettings) and
// calls app.Run (internal/app, the composition root, which wires and
// supervises the subsystems), as nats-server's main calls
// server.ConfigureOptions and then runs the server: the settings live with
// the Config they fill, so that tests start an in-process presenced from
// the same environment an operator would give the binary. SIGINT or
// SIGTERM stops it in order. The subcommands
// `presenced migrate` (the PostgreSQL schema) and `presenced provision`
// (rosters on MongooseIM) take the same settings.
package main
