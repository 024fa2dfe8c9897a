// Package component connects presenced to an XMPP server as an XEP-0114
// external component and turns the presence it receives into updates of the
// tracking core.
//
// # How it fits
//
// [Component.Serve] dials the server's component port, completes the
// handshake, and serves the stream until it drops; then it reconnects after
// the delays of internal/backoff (capped exponential, equal jitter: the
// project's one retry policy, shared with the store's writes, so that both
// loops back off alike). A link the server ends with the stream error
// conflict was replaced by another connection with the same JID, another
// process: it waits from MaxBackoff doubling instead, and Health says so
// (conflict.go). Each presence stanza is decoded
// once, whole, and applied to a presence.Tracker. After every (re)connect the
// component probes every user it knows; the server answers for each online
// resource, and whatever no answer confirmed within Config.ProbeWait is
// marked offline (reason reconcile) for users whose server answers probes,
// or pinged for the others (users known by directed presence), so a server
// restart or a lost link leaves no ghosts.
//
// While the link is up, a heartbeat loop (heartbeat.go) pings every
// resource that stayed silent for Config.PingInterval (XEP-0199, to the full
// JID) and takes it offline when no answer comes within Config.PingTimeout;
// probes every online user once per Config.SweepInterval at a bounded rate;
// and pings the component itself through the server every Config.KeepAlive,
// dropping a link that no longer carries stanzas. The decisions (who is
// silent, what a missing answer means) are the tracker's; the component only
// sends and reports.
//
// The component learns presence as a contact on the users' rosters (the only
// way on MongooseIM): it answers subscribe with subscribed and asks back once
// for a subscription to the user's presence, keeping that state per user so
// it never loops. It answers disco#info and XEP-0199 ping through a mellium
// mux, and every other IQ get or set with a stanza error.
//
// # Design decisions
//
// The client's word and the server's are told apart: presence that arrives
// within a probe's window (probes.go) is taken as the server's answer
// (presence.Update.Answer), which the server gives from cached presence even
// for a client that froze, and so keeps a resource through a probe round
// but not through a ping. An error answer to a ping is followed by a
// disco#info query, which only a live client answers with a result (the
// server answers errors for gone sessions), before a probe settles it.
// A resource that went offline that way while the server still holds its
// session (a stream-management session waiting for resumption) is pinged
// once more whenever the server answers for it (recheck.go): a resumed
// client sends no presence, but it answers.
// Alternatives considered: taking every presence as the client's (a frozen
// resource next to a live sibling then stayed online for ever, as each probe
// that settled the sibling confirmed it too); telling answers by their
// delay stamp (not every server stamps them, and clients may stamp their
// own); settling an error answer by the probe alone (directed-presence
// users, whom the server answers no probe for, went offline while online).
//
// Presence is handled before the mux, not through it: mellium's mux calls a
// presence handler once per child element, so a stanza with show and status
// would be applied twice, and its IQ router turns some malformed IQs into
// stream errors. The handler therefore decodes presence itself and checks
// IQs before the mux sees them: bad input is answered with a stanza error
// or logged and dropped, and never ends the stream.
//
// What stays hand-written, and the measurement behind it: presence is
// decoded by walking the tokens by hand rather than with encoding/xml's
// reflection on top of mellium's tokens, and parsed from addresses are
// cached (PRECIS normalization is costly, and the same addresses repeat).
// Decoding each stanza a second time with encoding/xml cost 7.5 µs a
// stanza; the token walk with the cache 4.5 µs, against 3.9 µs for
// encoding/xml alone from memory (BenchmarkComponentToTracker and
// BenchmarkDecodeBaseline, docs/benchmarks.md).
//
// The administration commands (XEP-0133, commands.go) run on
// xmppext/adhoc and build and read their data forms with mellium's form
// package.
//
// disco#items on the commands node is answered before the mux too, from
// mellium's disco/items.Item values: mellium's disco handler asks an
// items.Iter for a node's items without saying who asks, and only admins
// may see the commands. The query element around the items stays built by
// hand because disco.ItemsQuery marshals an empty query only.
//
// mellium v0.22.0 cannot dial or reconnect a component; the package dials
// TCP itself and hands the connection to component.NewSession. Replies
// written from inside a handler go to the handler's TokenReadEncoder (the
// session is locked while a handler runs); probes are sent from their own
// goroutine through the session. A component stream fills in no from, so
// every stanza sent sets it.
package component
