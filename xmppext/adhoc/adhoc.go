package adhoc

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// NS is the namespace of XEP-0050.
const NS = "http://jabber.org/protocol/commands"

// Request is one stage of a command run.
type Request struct {
	From jid.JID
	// Stage counts the calls of this session from 0; Form is nil at stage 0
	// and the form the requester submitted after.
	Stage int
	Form  *form.Data
}

// Response is a stage's outcome: a form to fill (Done false), or the
// result (Done true).
type Response struct {
	Form *form.Data
	Note string
	Done bool
}

// Command is one command a Responder offers.
type Command struct {
	Node, Name string
	// Run runs a stage. An error is answered with bad-request and its text
	// (the session stays, so the requester may submit again).
	Run func(Request) (Response, error)
}

// Responder answers XEP-0050 requests. Create it with New.
type Responder struct {
	allowed func(jid.JID) bool
	cmds    []Command
	timeout time.Duration
	now     func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
}

type session struct {
	node, owner string
	stage       int
	expires     time.Time
}

// New returns a Responder for cmds. allowed decides who may list and run
// them; everyone else gets forbidden and an empty list. Sessions expire
// after 10 minutes without a step.
func New(allowed func(jid.JID) bool, cmds ...Command) *Responder {
	return &Responder{allowed: allowed, cmds: cmds, timeout: 10 * time.Minute, now: time.Now, sessions: map[string]*session{}}
}

// Allowed reports whether from may see and run the commands.
func (r *Responder) Allowed(from jid.JID) bool { return r.allowed != nil && r.allowed(from) }

// Commands returns the commands from may run, for disco#items on node NS:
// none for anyone not allowed.
func (r *Responder) Commands(from jid.JID) []Command {
	if !r.Allowed(from) {
		return nil
	}
	return r.cmds
}

// Handle returns the mux option that routes command requests here and
// advertises the commands' disco#info.
func (r *Responder) Handle() mux.Option {
	return mux.IQ(stanza.SetIQ, xml.Name{Space: NS, Local: "command"}, r)
}

func (r *Responder) find(node string) (Command, bool) {
	for _, c := range r.cmds {
		if c.Node == node {
			return c, true
		}
	}
	return Command{}, false
}

// ForFeatures implements info.FeatureIter: NS at the root; NS and data
// forms on each command node.
func (r *Responder) ForFeatures(node string, f func(info.Feature) error) error {
	if node == "" {
		return f(info.Feature{Var: NS})
	}
	if _, ok := r.find(node); ok {
		if err := f(info.Feature{Var: NS}); err != nil {
			return err
		}
		return f(form.Feature)
	}
	return nil
}

// ForIdentities implements info.IdentityIter: each command node is an
// automation/command-node.
func (r *Responder) ForIdentities(node string, f func(info.Identity) error) error {
	if c, ok := r.find(node); ok {
		return f(info.Identity{Category: "automation", Type: "command-node", Name: c.Name})
	}
	return nil
}

// commandPayload is the command element as requested and answered.
type commandPayload struct {
	XMLName   xml.Name   `xml:"http://jabber.org/protocol/commands command"`
	Node      string     `xml:"node,attr"`
	SessionID string     `xml:"sessionid,attr,omitempty"`
	Action    string     `xml:"action,attr,omitempty"`
	Status    string     `xml:"status,attr,omitempty"`
	Actions   *actions   `xml:"actions"`
	Note      *note      `xml:"note"`
	Form      *form.Data `xml:"jabber:x:data x"`
}

type actions struct {
	Execute  string    `xml:"execute,attr,omitempty"`
	Complete *struct{} `xml:"complete"`
}

type note struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

// Errors of XEP-0050 §4.6, with their general condition.
var (
	errBadAction    = cmdError{"modify", "bad-request", "bad-action"}
	errBadSessionID = cmdError{"modify", "bad-request", "bad-sessionid"}
	errExpired      = cmdError{"cancel", "not-allowed", "session-expired"}
	errBadPayload   = cmdError{"modify", "bad-request", "bad-payload"}
	errForbidden    = cmdError{"auth", "forbidden", ""}
	errNoCommand    = cmdError{"cancel", "item-not-found", ""}
)

type cmdError struct{ typ, condition, specific string }

// HandleIQ implements mux.IQHandler.
func (r *Responder) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var req commandPayload
	d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t))
	if err := d.Decode(&req); err != nil {
		return r.fail(t, iq, errBadPayload, "")
	}
	if !r.Allowed(iq.From) {
		return r.fail(t, iq, errForbidden, "")
	}
	cmd, ok := r.find(req.Node)
	if !ok {
		return r.fail(t, iq, errNoCommand, "")
	}
	owner := iq.From.String()
	now := r.now()
	r.mu.Lock()
	for id, s := range r.sessions {
		if now.After(s.expires) {
			delete(r.sessions, id)
		}
	}
	var s *session
	if req.SessionID != "" {
		s = r.sessions[req.SessionID]
	}
	switch {
	case req.SessionID != "" && s == nil:
		r.mu.Unlock()
		return r.fail(t, iq, errExpired, "")
	case s != nil && (s.owner != owner || s.node != req.Node):
		r.mu.Unlock()
		return r.fail(t, iq, errBadSessionID, "")
	}
	action := req.Action
	if action == "" {
		action = "execute"
	}
	switch action {
	case "cancel":
		if s != nil {
			delete(r.sessions, req.SessionID)
		}
		r.mu.Unlock()
		return r.reply(t, iq, commandPayload{Node: req.Node, SessionID: req.SessionID, Status: "canceled"})
	case "execute", "next", "complete":
	default: // prev, or anything else: no command here offers it
		r.mu.Unlock()
		return r.fail(t, iq, errBadAction, "")
	}
	if s == nil {
		if action != "execute" {
			r.mu.Unlock()
			return r.fail(t, iq, errBadSessionID, "")
		}
		s = &session{node: req.Node, owner: owner}
		req.SessionID = newID()
		r.sessions[req.SessionID] = s
	} else {
		s.stage++
	}
	s.expires = now.Add(r.timeout)
	stage := s.stage
	r.mu.Unlock()

	resp, err := cmd.Run(Request{From: iq.From, Stage: stage, Form: req.Form})
	if err != nil {
		r.mu.Lock()
		s.stage-- // the same stage may be submitted again
		r.mu.Unlock()
		return r.fail(t, iq, errBadPayload, err.Error())
	}
	out := commandPayload{Node: req.Node, SessionID: req.SessionID, Form: resp.Form}
	if resp.Note != "" {
		out.Note = &note{Type: "info", Text: resp.Note}
	}
	if resp.Done {
		out.Status = "completed"
		r.mu.Lock()
		delete(r.sessions, req.SessionID)
		r.mu.Unlock()
	} else {
		out.Status = "executing"
		out.Actions = &actions{Execute: "complete", Complete: &struct{}{}}
	}
	return r.reply(t, iq, out)
}

func (r *Responder) reply(t xmlstream.TokenWriter, iq stanza.IQ, p commandPayload) error {
	return send(t, iq.Result(nil), p, stanza.ResultIQ, iq)
}

// send writes an IQ of type typ answering iq, around v encoded as XML.
func send(t xmlstream.TokenWriter, _ xml.TokenReader, v any, typ stanza.IQType, iq stanza.IQ) error {
	data, err := xml.Marshal(v)
	if err != nil {
		return err
	}
	res := iq
	res.Type, res.From, res.To = typ, iq.To, iq.From
	_, err = xmlstream.Copy(t, res.Wrap(noXMLNS{xml.NewDecoder(bytes.NewReader(data))}))
	return err
}

// noXMLNS drops xmlns attributes from decoded tokens: their names already
// carry the namespace, and an encoder writing both would repeat it.
type noXMLNS struct{ r xml.TokenReader }

func (n noXMLNS) Token() (xml.Token, error) {
	tok, err := n.r.Token()
	if se, ok := tok.(xml.StartElement); ok {
		attrs := se.Attr[:0]
		for _, a := range se.Attr {
			if a.Name.Local != "xmlns" && a.Name.Space != "xmlns" {
				attrs = append(attrs, a)
			}
		}
		se.Attr = attrs
		tok = se
	}
	return tok, err
}

// fail answers with a stanza error: the general condition and, for
// XEP-0050's own errors, the specific one.
func (r *Responder) fail(t xmlstream.TokenWriter, iq stanza.IQ, e cmdError, text string) error {
	type cond struct{ XMLName xml.Name }
	type textEl struct {
		XMLName xml.Name
		Text    string `xml:",chardata"`
	}
	el := struct {
		XMLName  xml.Name `xml:"error"`
		Type     string   `xml:"type,attr"`
		Cond     cond
		Specific *cond
		Text     *textEl
	}{Type: e.typ, Cond: cond{xml.Name{Space: "urn:ietf:params:xml:ns:xmpp-stanzas", Local: e.condition}}}
	if e.specific != "" {
		el.Specific = &cond{xml.Name{Space: NS, Local: e.specific}}
	}
	if text != "" {
		el.Text = &textEl{xml.Name{Space: "urn:ietf:params:xml:ns:xmpp-stanzas", Local: "text"}, text}
	}
	return send(t, nil, el, stanza.ErrorIQ, iq)
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
