package xmppclient

import (
	"context"
	"encoding/xml"
	"errors"
	"strconv"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Client is one logged-in resource.
type Client struct {
	JID     jid.JID // the bound full JID
	session *xmpp.Session
	conn    *gate
	done    chan struct{} // closed when the serve loop ends
	err     error         // the serve loop's result, set before done closes
}

// Dial connects to the c2s listener at addr, authenticates as j (whose
// resourcepart, if any, is requested at bind time) and returns a client
// whose incoming stanzas are served (and ignored) in the background. It
// sends no presence: call Presence for the initial presence. It is
// Dialer{}.Dial: the login takes at most 30 s, or less if ctx says so.
func Dial(ctx context.Context, addr string, j jid.JID, password string) (*Client, error) {
	return Dialer{}.Dial(ctx, addr, j, password)
}

// Presence is what a client says about itself.
type Presence struct {
	Show     string // "", away, chat, dnd, xa
	Status   string
	Priority int
	// To, if set, makes it directed presence (RFC 6121 §4.6) to this
	// address alone; empty means broadcast to the roster.
	To string
}

type presenceStanza struct {
	XMLName  xml.Name `xml:"jabber:client presence"`
	To       string   `xml:"to,attr,omitempty"`
	ID       string   `xml:"id,attr,omitempty"`
	Type     string   `xml:"type,attr,omitempty"`
	Show     string   `xml:"show,omitempty"`
	Status   string   `xml:"status,omitempty"`
	Priority string   `xml:"priority,omitempty"`
}

// Presence broadcasts available presence (the first call is the initial
// presence, which also makes the server send the user's presence to the
// component).
func (c *Client) Presence(ctx context.Context, p Presence) error {
	st := presenceStanza{To: p.To, Show: p.Show, Status: p.Status}
	if p.Priority != 0 {
		st.Priority = strconv.Itoa(p.Priority)
	}
	// Encode, not SendPresence: that one waits for an answer presence never gets.
	return c.session.Encode(ctx, st)
}

// Unavailable broadcasts unavailable presence; the session stays open.
func (c *Client) Unavailable(ctx context.Context) error { return c.Goodbye(ctx, "") }

// Goodbye broadcasts unavailable presence with a status text (RFC 6121
// §4.5.1: a last word such as "gone home"); the session stays open.
func (c *Client) Goodbye(ctx context.Context, status string) error {
	return c.session.Encode(ctx, presenceStanza{Type: string(stanza.UnavailablePresence), Status: status})
}

// Close ends the stream cleanly; the server then sends unavailable presence
// on the client's behalf. A frozen client cannot: it is killed instead.
func (c *Client) Close() error {
	if c.conn.isFrozen() {
		c.Kill()
		return nil
	}
	err := c.session.Close()
	cerr := c.conn.Close()
	<-c.done
	return errors.Join(err, cerr)
}

// Kill drops the TCP connection without ending the stream, as a crashed
// client or a lost network would.
func (c *Client) Kill() {
	c.conn.Close()
	<-c.done
}

// Freeze makes the client stop: it reads nothing and writes nothing any
// more, while its TCP connection stays open, as a process stopped with
// SIGSTOP or a laptop gone to sleep behind a NAT that keeps the flow.
// Kill and Close still end it.
func (c *Client) Freeze() { c.conn.freeze() }

// Done is closed when the session ends: the server closed it, or Close or
// Kill ran.
func (c *Client) Done() <-chan struct{} { return c.done }

// Session returns the underlying mellium session, for protocol clients
// such as mellium's commands package (its Serve loop already runs).
func (c *Client) Session() *xmpp.Session { return c.session }
