package xmppclient

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"net"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"
)

// Dialer logs clients in like Dial, with a time limit on the whole login
// that holds even when the server accepts the connection and then says
// nothing: mellium checks the context only between negotiation steps, not
// while it waits for the server, so a deadline on the connection bounds
// each read and write meanwhile. Load tools use it: a server under load
// may stall logins, and a stalled login must fail, not hang.
type Dialer struct {
	// Timeout bounds dialing and stream negotiation (STARTTLS, SASL,
	// resource binding); zero means 30 seconds.
	Timeout time.Duration
	// Answers says which queries the client answers; the zero value,
	// AnswerNone, answers every query with an error.
	Answers Answers
}

// Answers says which queries (IQ get) a client answers with a result;
// every other query gets service-unavailable, as mellium sends for a query
// nobody handled.
type Answers int

const (
	// AnswerNone: a minimal client, without XEP-0199 and XEP-0030.
	AnswerNone Answers = iota
	// AnswerDisco: disco#info (XEP-0030) only; pings get an error, as from
	// the many clients that do not implement XEP-0199.
	AnswerDisco
	// AnswerPing: XEP-0199 pings and disco#info, as most clients.
	AnswerPing
)

// handler returns the handler of the client's incoming stanzas.
func (a Answers) handler() xmpp.Handler {
	switch a {
	case AnswerDisco:
		return mux.New(stanza.NSClient, disco.Handle())
	case AnswerPing:
		return mux.New(stanza.NSClient, disco.Handle(), ping.Handle())
	}
	return nil
}

// Dial connects and logs in as j, as the package's Dial does.
func (d Dialer) Dial(ctx context.Context, addr string, j jid.JID, password string) (*Client, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("xmppclient: dial %s: %w", addr, err)
	}
	conn := newGate(raw)
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, fmt.Errorf("xmppclient: dial %s: %w", addr, err)
	}
	// A context that ends early (the caller's) ends the wait too.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	s, err := xmpp.NewClientSession(ctx, j, conn,
		xmpp.StartTLS(&tls.Config{ServerName: j.Domainpart(), InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}),
		// No SCRAM-PLUS: mellium binds tls-unique, which TLS 1.3 does not have.
		xmpp.SASL("", password, sasl.ScramSha256, sasl.ScramSha1, sasl.Plain),
		xmpp.BindResource(),
	)
	if !stop() || err != nil {
		conn.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("xmppclient: log in as %s: %w", j, err)
	}
	// The TLS connection wraps conn: clearing conn's deadline clears it.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("xmppclient: log in as %s: %w", j, err)
	}
	c := &Client{JID: s.LocalAddr(), session: s, conn: conn, done: make(chan struct{})}
	h := d.Answers.handler()
	go func() {
		c.err = s.Serve(h)
		close(c.done)
	}()
	if err := establishSession(ctx, s); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("xmppclient: log in as %s: %w", j, err)
	}
	return c, nil
}

// nsSession is RFC 3921's session establishment.
const nsSession = "urn:ietf:params:xml:ns:xmpp-session"

// establishSession asks for RFC 3921's session after resource binding.
// MongooseIM 6.1.0 advertises it as required (<session/> without
// <optional/>) and, until the client asks, keeps the bound resource out of
// its sessions: none of the client's presence is routed, and listSessions
// does not list it (measured). RFC 6121 dropped the step and mellium does
// not negotiate it; ejabberd and Prosody answer it. An error answer (a
// server without it) is no failure; no answer within ctx is.
func establishSession(ctx context.Context, s *xmpp.Session) error {
	payload := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsSession, Local: "session"}})
	r, err := s.SendIQElement(ctx, payload, stanza.IQ{Type: stanza.SetIQ})
	if err != nil {
		return fmt.Errorf("session establishment: %w", err)
	}
	return r.Close()
}

// SetWriteDeadline bounds the writes of the client's next sends (zero:
// none), so that a sender is not stuck behind a server that stopped
// reading.
func (c *Client) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
