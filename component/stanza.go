package component

import (
	"encoding/xml"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/presence"
)

// presenceStanza is a presence stanza as received, decoded whole.
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
func (p *presenceStanza) update(from jid.JID) (u presence.Update, notes []string) {
	u = presence.Update{User: from.Bare().String(), Resource: from.Resourcepart(), Available: p.Type == ""}
	if !u.Available {
		return u, nil
	}
	show, ok := presence.ParseShow(strings.TrimSpace(p.Show))
	if !ok {
		notes = append(notes, "unknown show "+strconv.Quote(p.Show))
	}
	u.Show = show
	u.Status, u.Statuses = splitStatus(p.Status)
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
