// Command presenced-sim simulates people on an XMPP server, for the demo:
// each user logs in over a real client connection, changes show and status
// now and then, sometimes opens a second resource ("phone") with a lower
// priority, and sometimes logs out for a while.
//
//	presenced-sim -c2s 127.0.0.1:5222 -domain localhost -users alice:pw,bob:pw -interval 4s
//
// With -hold, each user logs in once and then stays silent: the
// integration tests freeze such a process (SIGSTOP) to make a client that
// vanishes without closing its connection.
//
// It trusts any server certificate (it is meant for the project's private
// test servers on loopback).
package main
