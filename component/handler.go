package component

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/disco/items"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/presenced/presenced/internal/jidnorm"
	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/xmppext/adhoc"
	"github.com/presenced/presenced/xmppext/privilege"
)

// maxIQTokens bounds how much of an IQ is buffered for checking before the
// mux sees it; an IQ larger than that is refused with policy-violation.
const maxIQTokens = 1024

// identity is the component's disco#info identity (XEP-0030 registry:
// component/presence, "a presence server").
type identity struct{}

func (identity) ForIdentities(node string, f func(info.Identity) error) error {
	if node != "" {
		return nil
	}
	return f(info.Identity{Category: "component", Type: "presence", Name: "presenced"})
}

// handle is the session's handler. It returns an error only when writing a
// reply fails (the stream is then broken anyway): input problems are
// answered or logged, never returned, because a returned error ends the
// stream.
func (c *Component) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c.lastRecv.Store(time.Now().UnixNano())
	c.metrics.stanza(start)
	switch start.Name.Local {
	case "presence":
		return c.handlePresence(t, start)
	case "iq":
		return c.handleIQ(t, start)
	case "message":
		c.handleMessage(t, start)
		return nil
	}
	// Messages and anything else: nothing to do; Serve skips the rest.
	c.log.Debug("component: ignored stanza", "name", start.Name.Local)
	return nil
}

// handleMessage reads the one message the component cares about: the
// server's grant of privileges (XEP-0356), sent right after the handshake.
func (c *Component) handleMessage(t xml.TokenReader, start *xml.StartElement) {
	from, err := jidnorm.Parse(attrValue(start.Attr, "from"))
	if err != nil || from.Localpart() != "" || from.Resourcepart() != "" {
		return // only a server grants privileges
	}
	perms, err := privilege.Read(newSizeLimit(t, start, c.cfg.MaxStanza))
	if err != nil {
		return
	}
	c.privileged.Store(&perms)
	c.log.Info("component: the server grants privileges (XEP-0356)", "from", from.String(), "perms", perms,
		"presence", perms.Presence())
}

func (c *Component) handlePresence(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	p, err := readPresence(start, newSizeLimit(t, start, c.cfg.MaxStanza))
	if errors.Is(err, errStanzaTooBig) {
		c.metrics.limited("too_big")
		c.log.Warn("component: dropped a presence over the size limit", "from", attrValue(start.Attr, "from"),
			"max_bytes", c.cfg.MaxStanza)
		return nil
	}
	if err != nil {
		c.log.Warn("component: dropped undecodable presence", "err", err)
		return nil
	}
	from, ok := c.jids.parse(p.From)
	if !ok {
		c.log.Warn("component: dropped presence without a valid from", "from", p.From, "type", p.Type)
		return nil
	}
	if from.Localpart() == "" {
		c.log.Debug("component: ignored presence from a server entity", "from", p.From, "type", p.Type)
		return nil
	}
	user := from.bare
	tr := c.cfg.Tracker
	switch p.Type {
	case "", "unavailable":
		if p.Type == "unavailable" && from.Resourcepart() == "" {
			c.flaps.forget(user)
			tr.Drop(user, presence.ReasonClient)
			return nil
		}
		u, notes := p.update(user, from.Resourcepart())
		// Presence soon after a probe of the user is the server's answer,
		// not the client's act (presence.Update.Answer).
		u.Answer = u.Available && c.probes.answers(user, time.Now())
		if len(notes) > 0 {
			c.log.Debug("component: presence corrected", "from", p.From, "notes", notes)
		}
		if !c.flaps.admit(u, time.Now()) {
			c.metrics.limited("held")
			return nil
		}
		_, changed, err := tr.Try(u)
		if err != nil {
			c.metrics.limited("refused")
			c.log.Debug("component: presence refused", "from", p.From, "err", err)
		} else if !changed && u.Answer && u.Resource != "" && tr.Stale(user, u.Resource) {
			// The server still holds a session whose client left a ping
			// unanswered: ask the client once more (recheck.go).
			c.askRecheck(u)
		}
	case "error":
		// The server could not deliver to the user (unknown user, server
		// gone): nothing said about the user is current any more.
		if from.Resourcepart() == "" {
			c.flaps.forget(user)
			tr.Drop(user, presence.ReasonServer)
		} else {
			tr.Apply(presence.Update{User: user, Resource: from.Resourcepart(), Reason: presence.ReasonServer})
		}
	case "subscribe":
		if err := c.send(t, user, "subscribed"); err != nil {
			return err
		}
		if c.subs.subscribeReceived(user) {
			return c.send(t, user, "subscribe")
		}
	case "subscribed":
		c.subs.subscribedReceived(user)
	case "unsubscribed":
		c.subs.unsubscribedReceived(user)
		c.flaps.forget(user)
		tr.Drop(user, presence.ReasonServer)
	case "unsubscribe":
		// The user no longer wants the component's presence; nothing to keep.
	case "probe":
		// The user's server asks for the component's presence: it is always
		// available.
		return t.Encode(outPresence{From: c.addr, To: p.From})
	default:
		c.log.Warn("component: dropped presence of unknown type", "from", p.From, "type", p.Type)
	}
	return nil
}

// send writes a presence of the given type from the component to user.
func (c *Component) send(t xmlstream.Encoder, user, typ string) error {
	return t.Encode(outPresence{From: c.addr, To: user, Type: typ})
}

// handleIQ checks an IQ before the mux sees it: addresses parse, a get or
// set carries exactly one payload element, the size is bounded. Bad IQs get
// a stanza error, results and errors nobody waits for are dropped.
func (c *Component) handleIQ(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if attrValue(start.Attr, "from") == "" {
		// The server always sets from on what it routes to a component; mellium
		// removes a from equal to the session's own address. So this IQ is the
		// component's own (the keepalive ping): put the address back, or the
		// reply would go out without a to and the server would end the stream
		// with improper-addressing.
		s := start.Copy()
		s.Attr = slices.DeleteFunc(s.Attr, func(a xml.Attr) bool { return a.Name.Local == "from" })
		s.Attr = append(s.Attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: c.addr})
		start = &s
	}
	iq, err := stanza.NewIQ(*start)
	needsReply := iq.Type == stanza.GetIQ || iq.Type == stanza.SetIQ
	if err != nil {
		id, typ := attrValue(start.Attr, "id"), attrValue(start.Attr, "type")
		c.log.Warn("component: bad IQ addresses", "from", attrValue(start.Attr, "from"), "to", attrValue(start.Attr, "to"), "err", err)
		if typ == "get" || typ == "set" {
			// Reply without to: a malformed address cannot be echoed back.
			bad := stanza.IQ{ID: id, Type: stanza.ErrorIQ, From: c.cfg.JID}
			_, err = xmlstream.Copy(t, bad.Wrap(stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed}.TokenReader()))
			return err
		}
		return nil
	}
	if !needsReply {
		if iq.Type != stanza.ResultIQ && iq.Type != stanza.ErrorIQ {
			c.log.Warn("component: dropped IQ of unknown type", "from", iq.From, "type", iq.Type)
		}
		return nil
	}
	if iq.To.Equal(jid.JID{}) {
		// Replies swap to and from: without a to there would be no from.
		iq.To = c.cfg.JID
		s := start.Copy()
		s.Attr = append(s.Attr, xml.Attr{Name: xml.Name{Local: "to"}, Value: c.addr})
		start = &s
	}
	toks, ok, err := bufferInner(t)
	switch {
	case errors.Is(err, errTooLarge):
		return c.iqError(t, iq, stanza.Modify, stanza.PolicyViolation)
	case err != nil:
		c.log.Warn("component: dropped unreadable IQ", "from", iq.From, "err", err)
		return nil
	case !ok:
		return c.iqError(t, iq, stanza.Modify, stanza.BadRequest)
	}
	if iq.Type == stanza.GetIQ && len(toks) > 0 {
		// disco#items on the commands node depends on who asks (the mux's
		// disco handler cannot know): admins see the commands, others none.
		if se, ok := toks[0].(xml.StartElement); ok && se.Name == (xml.Name{Space: disco.NSItems, Local: "query"}) && attrValue(se.Attr, "node") == adhoc.NS {
			return c.commandItems(t, iq)
		}
	}
	w := &writeTracker{Encoder: t}
	replay := struct {
		xml.TokenReader
		xmlstream.Encoder
	}{TokenReader: &tokenReplay{toks: toks}, Encoder: w}
	if err := c.mux.HandleXMPP(replay, start); err != nil {
		if w.wrote {
			// A reply is (partly) on the wire: the stream cannot be trusted.
			return err
		}
		c.log.Warn("component: IQ handler failed", "from", iq.From, "err", err)
		return c.iqError(t, iq, stanza.Wait, stanza.InternalServerError)
	}
	return nil
}

// writeTracker notes whether a handler wrote anything.
type writeTracker struct {
	xmlstream.Encoder
	wrote bool
}

func (w *writeTracker) EncodeToken(t xml.Token) error {
	w.wrote = true
	return w.Encoder.EncodeToken(t)
}

func (w *writeTracker) Encode(v any) error {
	w.wrote = true
	return w.Encoder.Encode(v)
}

func (w *writeTracker) EncodeElement(v any, start xml.StartElement) error {
	w.wrote = true
	return w.Encoder.EncodeElement(v, start)
}

func (c *Component) iqError(t xmlstream.TokenWriter, iq stanza.IQ, typ stanza.ErrorType, cond stanza.Condition) error {
	_, err := xmlstream.Copy(t, iq.Error(stanza.Error{Type: typ, Condition: cond}))
	return err
}

var errTooLarge = errors.New("component: stanza too large")

// bufferInner copies the tokens of the current element (its children and
// its end element). ok reports whether they are one payload element and
// nothing else but white space at the top level: text, comments or
// processing instructions there would make mellium's IQ router fail, and
// its failure would end the stream.
func bufferInner(r xml.TokenReader) (toks []xml.Token, ok bool, err error) {
	depth, children, stray := 0, 0, false
	for {
		tok, err := r.Token()
		if tok != nil {
			if len(toks) == maxIQTokens {
				return nil, false, errTooLarge
			}
			switch tt := tok.(type) {
			case xml.StartElement:
				if depth == 0 {
					children++
				}
				depth++
			case xml.EndElement:
				depth--
			case xml.CharData:
				if depth == 0 && len(bytes.TrimSpace(tt)) > 0 {
					stray = true
				}
			case xml.Comment, xml.ProcInst, xml.Directive:
				if depth == 0 {
					stray = true
				}
			}
			toks = append(toks, xml.CopyToken(tok))
		}
		if err == io.EOF {
			return toks, children == 1 && !stray, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}

// tokenReplay reads back buffered tokens.
type tokenReplay struct {
	toks []xml.Token
}

func (r *tokenReplay) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, io.EOF
	}
	tok := r.toks[0]
	r.toks = r.toks[1:]
	return tok, nil
}

// commandItems answers disco#items on the commands node with the commands
// the requester may run.
func (c *Component) commandItems(t xmlstream.TokenWriter, iq stanza.IQ) error {
	cmds := c.commands.Commands(iq.From)
	list := make([]xml.TokenReader, len(cmds))
	for i, cmd := range cmds {
		list[i] = items.Item{JID: c.cfg.JID, Node: cmd.Node, Name: cmd.Name}.TokenReader()
	}
	// Not disco.ItemsQuery: its TokenReader has no room for the items.
	q := xml.StartElement{Name: xml.Name{Space: disco.NSItems, Local: "query"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "node"}, Value: adhoc.NS}}}
	_, err := xmlstream.Copy(t, iq.Result(xmlstream.Wrap(xmlstream.MultiReader(list...), q)))
	return err
}
