// Package last implements the responder side of XEP-0012: Last Activity,
// for an entity that answers about itself: a server or component answers
// with its uptime (XEP-0012 §5, "Server and Component Query").
package last // import "github.com/presenced/presenced/xmppext/last"

import (
	"encoding/xml"
	"strconv"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// NS is the namespace of XEP-0012.
const NS = "jabber:iq:last"

// Handle returns a mux option that answers last-activity queries to the
// entity itself with the seconds since started, and advertises the feature
// in disco#info. clock tells the time; nil means time.Now.
func Handle(started time.Time, clock func() time.Time) mux.Option {
	if clock == nil {
		clock = time.Now
	}
	return mux.IQ(stanza.GetIQ, xml.Name{Space: NS, Local: "query"}, handler{started: started, now: clock})
}

type handler struct {
	started time.Time
	now     func() time.Time
}

// HandleIQ implements mux.IQHandler.
func (h handler) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	secs := int64(h.now().Sub(h.started) / time.Second)
	payload := xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: NS, Local: "query"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "seconds"}, Value: strconv.FormatInt(max(secs, 0), 10)}},
	})
	_, err := xmlstream.Copy(t, iq.Result(payload))
	return err
}

// ForFeatures implements info.FeatureIter: the handler advertises NS.
func (h handler) ForFeatures(node string, f func(info.Feature) error) error {
	if node != "" {
		return nil
	}
	return f(info.Feature{Var: NS})
}
