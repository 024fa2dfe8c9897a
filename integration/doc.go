//go:build integration

// Package integration holds presenced's end-to-end tests against real
// servers: a private ejabberd started by scripts/ejabberd and a private
// MongooseIM 6.1.0 started by scripts/mongooseim (from the release in
// ../shared/mongooseim/release/), presenced built from this tree, and real
// XMPP clients (internal/xmppclient) whose presence is checked through the
// REST API and the WebSocket stream. The files carry the build tag
// integration: `go test ./...` leaves them out, scripts/test runs them.
//
// One suite, two servers: the presence and liveness tests (presence_test.go,
// liveness_test.go) and the server crash under load run once per server
// (forEachServer, servers_test.go), as subtests named after it. presenced
// runs against MongooseIM as docs/setup-mongooseim.md sets it up, with the
// session reconciler on its admin GraphQL API. The tests of one server's
// own features run against that server alone: mongooseim_test.go
// (provisioning, reconciliation, the conflict loop), prosody_test.go, and
// most others against ejabberd.
//
// presenced runs in-process (internal/app's App, configured by
// app.ParseSettings from the environment an operator would give the
// binary), so the test binary's race detector watches it too. The tests
// that need a separate process use the binary TestMain builds: the one
// that kills presenced with SIGKILL, the one that measures its memory, and
// `presenced migrate`.
//
// faults_test.go runs one fault each under load (users logging in and out
// and changing status all the time): the server (ejabberd, MongooseIM) killed, PostgreSQL stopped
// for 30 s (each on a server of the test's own, so the other tests never
// see it), presenced killed, stuck WebSocket consumers, a user flapping
// 1,000 times a second; then checks that presenced and the database hold
// exactly what the users last did (docs/reliability.md).
//
// prosody_test.go runs presenced against a private Prosody
// (scripts/prosody) that grants it presence through XEP-0356.
//
// The tests need root (ejabberdctl runs as the ejabberd user) and install
// ejabberd from Debian when it is missing. They never skip: a server that
// cannot be started, or a MongooseIM release that is not there, is a
// failure, in CI and anywhere else.
//
// The presenced binary is built with the race detector; PRESENCED_NORACE=1
// builds it without, for measuring (see docs/benchmarks.md). The
// in-process presenced has the race detector when the tests do (-race).
//
// Set PRESENCED_KEEP_LOGS=1 to print the logs of presenced and the servers
// after a passing run too.
package integration
