package component

import (
	"encoding/xml"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/presenced/presenced/presence"
)

// presenceStanza is a presence stanza as received, decoded whole by
// readPresence (the struct tags serve encoding/xml in the benchmark
// baseline and document the shape).
type presenceStanza struct {
	XMLName  xml.Name    `xml:"presence"`
	From     string      `xml:"from,attr"`
	To       string      `xml:"to,attr"`
	ID       string      `xml:"id,attr"`
	Type     string      `xml:"type,attr"`
	Show     string      `xml:"show"`
	Status   []langText  `xml:"status"`
	Priority string      `xml:"priority"`
	Delay    *delayStamp `xml:"urn:xmpp:delay delay"`
	Idle     *idleSince  `xml:"urn:xmpp:idle:1 idle"`
}

// idleSince is XEP-0319's idle element.
type idleSince struct {
	Since string `xml:"since,attr"`
}

type langText struct {
	Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Text string `xml:",chardata"`
}

type delayStamp struct {
	Stamp string `xml:"stamp,attr"`
}

// outPresence is a presence stanza the component sends.
type outPresence struct {
	XMLName xml.Name `xml:"jabber:component:accept presence"`
	From    string   `xml:"from,attr"`
	To      string   `xml:"to,attr"`
	Type    string   `xml:"type,attr,omitempty"`
	ID      string   `xml:"id,attr,omitempty"`
}

// update converts an available or unavailable presence from a user's
// resource into a tracker update. Values out of range are clamped or
// defaulted as RFC 6121 asks (unknown show: plain available; priority
// outside -128..127 or not a number: 0 or the nearest bound); problems are
// returned as notes for the log, not as errors, since the presence itself
// is still valid.
func (p *presenceStanza) update(user, resource string) (u presence.Update, notes []string) {
	u = presence.Update{User: user, Resource: resource, Available: p.Type == ""}
	// Unavailable presence may carry a status (RFC 6121 §4.5.1): the user's
	// last word.
	u.Status, u.Statuses = splitStatus(p.Status)
	if !u.Available {
		return u, nil
	}
	show, ok := presence.ParseShow(strings.TrimSpace(p.Show))
	if !ok {
		notes = append(notes, "unknown show "+strconv.Quote(p.Show))
	}
	u.Show = show
	if s := strings.TrimSpace(p.Priority); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			notes = append(notes, "priority is not a number: "+strconv.Quote(p.Priority))
		}
		u.Priority = min(max(n, -128), 127)
	}
	if p.Idle != nil {
		if t, err := time.Parse(time.RFC3339Nano, p.Idle.Since); err == nil {
			u.Idle = t
		} else {
			notes = append(notes, "bad idle since "+strconv.Quote(p.Idle.Since))
		}
	}
	if p.Delay != nil {
		if t, err := time.Parse(time.RFC3339Nano, p.Delay.Stamp); err == nil {
			u.Time = t
		} else {
			notes = append(notes, "bad delay stamp "+strconv.Quote(p.Delay.Stamp))
		}
	}
	return u, notes
}

// splitStatus returns the status without xml:lang (or else the first one)
// and the others, as translations; nil when there are none.
func splitStatus(ss []langText) (status string, others []presence.LangStatus) {
	main := -1
	for i, s := range ss {
		if s.Lang == "" {
			main = i
			break
		}
	}
	if main < 0 && len(ss) > 0 {
		main = 0
	}
	for i, s := range ss {
		if i == main {
			status = s.Text
		} else {
			others = append(others, presence.LangStatus{Lang: s.Lang, Text: s.Text})
		}
	}
	return status, others
}

// XML namespaces of the children readPresence reads.
const (
	nsXML   = "http://www.w3.org/XML/1998/namespace"
	nsDelay = "urn:xmpp:delay"
	nsIdle  = "urn:xmpp:idle:1"
)

// readPresence decodes a presence stanza from its start element and the
// tokens after it (up to and including its end element). It walks the
// tokens by hand instead of using encoding/xml's reflection: this is the
// component's hot path, and the hand-written walk allocates far less.
// Unknown children are skipped.
func readPresence(start *xml.StartElement, r xml.TokenReader) (presenceStanza, error) {
	var p presenceStanza
	p.XMLName = start.Name
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue // x:from and the like belong to an extension, not to the stanza
		}
		switch a.Name.Local {
		case "from":
			p.From = a.Value
		case "to":
			p.To = a.Value
		case "id":
			p.ID = a.Value
		case "type":
			p.Type = a.Value
		}
	}
	depth := 0
	var text *string // where character data of the current child goes
	var acc []byte   // that character data so far (one copy, however many pieces)
	var seenShow, seenPriority bool
	for {
		tok, err := r.Token()
		if err == io.EOF {
			return p, nil
		}
		if err != nil {
			return p, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth != 1 {
				continue
			}
			// show, status and priority count only in the stanza's own
			// namespace (an extension may reuse the names) and only once
			// (status: once per language); later copies are ignored.
			own := t.Name.Space == start.Name.Space
			switch {
			case own && t.Name.Local == "show" && !seenShow:
				seenShow, text = true, &p.Show
			case own && t.Name.Local == "priority" && !seenPriority:
				seenPriority, text = true, &p.Priority
			case own && t.Name.Local == "status":
				lt := langText{}
				for _, a := range t.Attr {
					if a.Name.Local == "lang" && (a.Name.Space == nsXML || a.Name.Space == "xml") {
						lt.Lang = a.Value
					}
				}
				if slices.ContainsFunc(p.Status, func(s langText) bool { return s.Lang == lt.Lang }) {
					continue
				}
				p.Status = append(p.Status, lt)
				text = &p.Status[len(p.Status)-1].Text
			case t.Name.Local == "delay" && t.Name.Space == nsDelay:
				p.Delay = &delayStamp{Stamp: attrValue(t.Attr, "stamp")}
			case t.Name.Local == "idle" && t.Name.Space == nsIdle:
				p.Idle = &idleSince{Since: attrValue(t.Attr, "since")}
			}
		case xml.EndElement:
			depth--
			if depth < 0 {
				return p, nil // the stanza's own end element
			}
			if depth == 0 {
				if text != nil {
					*text = string(acc)
				}
				text, acc = nil, acc[:0]
			}
		case xml.CharData:
			if depth == 1 && text != nil {
				acc = append(acc, t...)
			}
		}
	}
}

func attrValue(attrs []xml.Attr, local string) string {
	for _, a := range attrs {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}
