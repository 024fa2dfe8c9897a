// Package xmppclient is a minimal XMPP client (RFC 6120 c2s over STARTTLS,
// SASL, resource binding, presence) for presenced's own tools and tests:
// the simulated users of the demo and the users of the integration tests.
// It is not part of presenced itself.
//
// It trusts any server certificate: it is meant for the project's private
// servers on loopback, which use a self-signed certificate.
package xmppclient
