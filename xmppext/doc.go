// Package xmppext is the home of the XMPP extensions presenced needs and
// mellium.im/xmpp v0.22.0 lacks, one subpackage per XEP, in mellium's
// style: a package comment naming the XEP, an NS constant, and a
// Handle() mux.Option that plugs the handler into the component's mux
// (component.Config.Extra).
//
// Here: last (XEP-0012, the component's uptime), adhoc (the XEP-0050
// responder the administration commands use) and privilege (XEP-0356, the
// permissions a server grants the component; it plugs into the component's
// message handling rather than the IQ mux). The package itself holds no
// code.
package xmppext
