package component

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/internal/jidnorm"
	"github.com/presenced/presenced/presence"
)

// fuzzStreamHeader opens the stream the fuzz inputs are read in, as the
// server opens it for the component: stanzas without xmlns are in
// jabber:component:accept.
const fuzzStreamHeader = `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='presence.localhost' id='fuzz'>`

// fuzzDecoder reads data as the content of the component's stream; it
// returns nil if the stream header itself does not come out (it always
// does, data comes after it).
func fuzzDecoder(data []byte) *xml.Decoder {
	d := xml.NewDecoder(io.MultiReader(bytes.NewReader([]byte(fuzzStreamHeader)), bytes.NewReader(data)))
	if tok, err := d.Token(); err != nil || tok.(xml.StartElement).Name.Local != "stream" {
		return nil
	}
	return d
}

// nextStanza returns the next top-level start element of the stream,
// skipping white space and text between stanzas as mellium does; ok is
// false at the end of the input or at anything that would end the stream.
func nextStanza(d *xml.Decoder) (start xml.StartElement, ok bool) {
	for {
		tok, err := d.Token()
		if err != nil {
			return start, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t.Copy(), true
		case xml.CharData:
			continue
		default:
			return start, false
		}
	}
}

// unqualified returns the value of the first attribute without a
// namespace named local, and how many such attributes there are. These are
// the attributes the server sets and vouches for (from, to, type, id); an
// attribute of another namespace, such as x:from, is the sender's.
func unqualified(attrs []xml.Attr, local string) (string, int) {
	v, n := "", 0
	for _, a := range attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			if n == 0 {
				v = a.Value
			}
			n++
		}
	}
	return v, n
}

var fuzzPresenceSeeds = []string{
	`<presence from='alice@localhost/pc' to='presence.localhost'/>`,
	`<presence from='Alice@LocalHost/pc' to='presence.localhost' id='p1'><show>dnd</show><status>busy</status><status xml:lang='de'>beschäftigt</status><priority>7</priority></presence>`,
	`<presence from='a@localhost/r'><show> away </show><priority>-129</priority><idle xmlns='urn:xmpp:idle:1' since='2026-11-27T08:00:00Z'/><delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-01-02T03:04:05Z'/></presence>`,
	`<presence from='a@localhost/r'><c xmlns='http://jabber.org/protocol/caps' node='n' ver='v' hash='sha-1'/><x xmlns='urn:example'><show>dnd</show></x><show>chat</show></presence>`,
	`<presence from='a@localhost/r' type='unavailable'><status>bye</status></presence>`,
	`<presence from='a@localhost' type='unavailable'/>`,
	`<presence from='a@localhost' type='error'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
	`<presence from='a@localhost/r' type='error'/>`,
	`<presence from='a@localhost' type='subscribe'/>`,
	`<presence from='a@localhost' type='subscribed'/><presence from='a@localhost' type='unsubscribed'/>`,
	`<presence from='a@localhost/r' type='probe'/>`,
	`<presence from='localhost'/>`,
	`<presence from='a@b@c/r'/>`,
	`<presence/>`,
	`<presence from='a@localhost/r' type='bogus'/>`,
	`<presence from='presence.localhost'/>`,
	`<presence from='a@localhost/1'/> <presence from='a@localhost/2'><priority>3</priority></presence><presence from='a@localhost/1' type='unavailable'/>`,
	`<presence from='a@localhost/r' xmlns:x='urn:example:x' x:foo='bar'><x:show>dnd</x:show></presence>`,
	`<presence from='a@localhost/r'><show>away</show>`,
	`<presence from='a@localhost/r'><show>away</status></presence>`,
	`<message from='a@localhost/r'><body>hi</body></message><presence from='b@localhost/r'/>`,
}

// FuzzReadPresence decodes arbitrary bytes as a stanza of the component's
// stream with readPresence. No panic; an error only when the stanza is not
// well-formed XML (and then the stream cannot go on anyway); on success the
// stanza is consumed to its end, the addressing comes from the attributes
// without a namespace, and there is at most one status per language.
func FuzzReadPresence(f *testing.F) {
	for _, s := range fuzzPresenceSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := fuzzDecoder(data)
		if d == nil {
			return
		}
		start, ok := nextStanza(d)
		if !ok || start.Name.Local != "presence" {
			return
		}
		r := xmlstream.InnerElement(d)
		p, err := readPresence(&start, r)

		// The same stanza, read by a plain walk: well-formed or not?
		d2 := fuzzDecoder(data)
		nextStanza(d2)
		_, walkErr := xmlstream.Copy(xmlstream.Discard(), xmlstream.InnerElement(d2))
		if (err != nil) != (walkErr != nil) {
			t.Fatalf("readPresence error %v, but reading the stanza gives %v", err, walkErr)
		}
		if err != nil {
			return
		}
		if tok, err := r.Token(); err != io.EOF {
			t.Fatalf("readPresence left %#v (%v) of the stanza unread", tok, err)
		}
		if p.XMLName != start.Name {
			t.Fatalf("XMLName %v, start %v", p.XMLName, start.Name)
		}
		for _, a := range []struct{ name, got string }{{"from", p.From}, {"to", p.To}, {"id", p.ID}, {"type", p.Type}} {
			want, n := unqualified(start.Attr, a.name)
			if n > 1 {
				continue // not well-formed XML (duplicate attribute): no server sends it
			}
			if a.got != want {
				t.Fatalf("%s = %q, but the stanza's %s attribute is %q (attributes %v)", a.name, a.got, a.name, want, start.Attr)
			}
		}
		for i, s := range p.Status {
			if slices.ContainsFunc(p.Status[:i], func(o langText) bool { return o.Lang == s.Lang }) {
				t.Fatalf("two statuses for language %q", s.Lang)
			}
		}
	})
}

// fuzzMaxStanza is the fuzz component's MaxStanza: small, so that inputs
// on both sides of the bound stay fast.
const fuzzMaxStanza = 2048

// fuzzComponent is a component for the fuzz targets; each input gets a
// fresh tracker, subscriptions and flap limiter (the JID cache is kept, as
// on a link).
func fuzzComponent(tb testing.TB) *Component {
	tb.Helper()
	c, err := New(Config{
		JID: jid.MustParse("presence.localhost"), Secret: "s", Addr: "127.0.0.1:1", Tracker: presence.New(presence.Options{}),
		Logger: slog.New(slog.DiscardHandler), MaxStanza: fuzzMaxStanza,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// maxFuzzStanzas bounds the stanzas one input may hold, for speed.
const maxFuzzStanzas = 32

// FuzzHandlePresence runs every stanza of the input through the
// component's handler into a real presence.Tracker, the way the session
// does (a presence from the component's own address loses its from, the
// handler reads the stanza's inner tokens, the rest is skipped), then
// applies what the flap limiter held, as its window's end would. It checks
// that the handler never returns an error (which would end the stream);
// that a stanza changes no user but the one its from attribute names (a
// valid user JID, or nothing changes); that a presence over MaxStanza
// changes nothing and one within it is applied: an available presence
// puts that resource online (unless the flap limiter holds it), an
// unavailable one takes it offline; that replies are well-formed and only
// for subscribe and probe; and that the tracker only ever holds valid bare
// JIDs and resources.
func FuzzHandlePresence(f *testing.F) {
	for _, s := range fuzzPresenceSeeds {
		f.Add([]byte(s))
	}
	c := fuzzComponent(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := presence.New(presence.Options{})
		c.cfg.Tracker, c.subs = tr, newSubscriptions()
		c.flaps = newFlapLimiter(c.cfg.UserRate, c.cfg.flapWindow)

		// First pass: which stanzas are well-formed (a syntax error ends
		// the stream, in the real session as here), and their sizes.
		d := fuzzDecoder(data)
		if d == nil {
			return
		}
		var stanzas []stanzaInfo
		for len(stanzas) < maxFuzzStanzas {
			start, ok := nextStanza(d)
			if !ok {
				break
			}
			info := stanzaInfo{size: textSize(start)}
			r := xmlstream.InnerElement(d)
			var err error
			for {
				var tok xml.Token
				if tok, err = r.Token(); err != nil {
					break
				}
				info.size += textSize(tok) + 1 // sizeLimit charges every token one byte
			}
			info.wellFormed = err == io.EOF
			stanzas = append(stanzas, info)
			if !info.wellFormed {
				break
			}
		}

		d = fuzzDecoder(data)
		for i, info := range stanzas {
			start, ok := nextStanza(d)
			if !ok {
				t.Fatalf("stanza %d: the second pass lost it", i)
			}
			if start.Name.Space == "jabber:component:accept" && start.Name.Local == "presence" {
				// mellium: a from equal to the session's own address is
				// removed.
				for j, a := range start.Attr {
					if a.Name.Local == "from" {
						if a.Value == c.addr {
							start.Attr[j].Value = ""
						}
						break
					}
				}
			}
			if start.Name.Local == "iq" {
				// IQs are not this target's (they need no tracker).
				if _, err := xmlstream.Copy(xmlstream.Discard(), xmlstream.InnerElement(d)); err != nil {
					return
				}
				continue
			}
			before, _ := tr.Snapshot()
			held := c.flaps.nheld
			var out bytes.Buffer
			enc := xml.NewEncoder(&out)
			inner := xmlstream.InnerElement(d)
			rw := struct {
				xml.TokenReader
				xmlstream.Encoder
			}{TokenReader: inner, Encoder: enc}
			if err := c.handle(rw, &start); err != nil {
				t.Fatalf("stanza %d: handle returned %v: that would end the stream", i, err)
			}
			if err := enc.Flush(); err != nil {
				t.Fatalf("stanza %d: reply does not encode: %v", i, err)
			}
			after, _ := tr.Snapshot()
			info.held = c.flaps.nheld != held
			checkStanzaEffect(t, i, &start, info, before, after, out.Bytes())
			checkTracker(t, after)
			if _, err := xmlstream.Copy(xmlstream.Discard(), inner); err != nil {
				break // the stream ends here
			}
		}
		// The window ends: what was held is applied, and only users who
		// sent presence are in the tracker.
		for _, u := range c.flaps.flush() {
			tr.Apply(u)
		}
		users, _ := tr.Snapshot()
		checkTracker(t, users)
	})
}

// stanzaInfo is what the first pass learnt about a stanza, and whether the
// flap limiter held it.
type stanzaInfo struct {
	wellFormed bool
	size       int // its text, as Config.MaxStanza counts it
	held       bool
}

// textSize is the text of a token as Config.MaxStanza counts it: names,
// namespaces and attribute values, character data, comments, processing
// instructions and directives; end elements count nothing.
func textSize(tok xml.Token) int {
	switch t := tok.(type) {
	case xml.StartElement:
		n := len(t.Name.Local) + len(t.Name.Space)
		for _, a := range t.Attr {
			n += len(a.Name.Local) + len(a.Name.Space) + len(a.Value)
		}
		return n
	case xml.CharData:
		return len(t)
	case xml.Comment:
		return len(t)
	case xml.ProcInst:
		return len(t.Inst)
	case xml.Directive:
		return len(t)
	}
	return 0
}

// checkStanzaEffect checks what one stanza did to the tracker and wrote
// back.
func checkStanzaEffect(t *testing.T, i int, start *xml.StartElement, info stanzaInfo, before, after []presence.User, reply []byte) {
	t.Helper()
	fromAttr, nFrom := unqualified(start.Attr, "from")
	typ, nType := unqualified(start.Attr, "type")
	if nFrom > 1 || nType > 1 {
		return // duplicate attributes: not XML a server sends
	}
	var user string // the only user the stanza may change
	var from jid.JID
	isPresence := start.Name.Local == "presence"
	if isPresence && info.wellFormed && info.size <= fuzzMaxStanza && fromAttr != "" {
		// The addresses the component accepts (jidnorm: a fixed point).
		if j, err := jidnorm.Parse(fromAttr); err == nil && j.Localpart() != "" {
			from, user = j, j.Bare().String()
		}
	}
	changed := changedUsers(before, after)
	for _, u := range changed {
		if u != user {
			t.Fatalf("stanza %d (%v, from %q, type %q): user %q changed, but only %q may", i, start.Name, fromAttr, typ, u, user)
		}
	}
	if len(reply) > 0 {
		if !isPresence || user == "" || (typ != "subscribe" && typ != "probe") {
			t.Fatalf("stanza %d (type %q, user %q): unexpected reply %s", i, typ, user, reply)
		}
		checkReplies(t, i, reply)
	}
	if user == "" {
		return
	}
	u, found := userOf(after, user)
	res := from.Resourcepart()
	online := found && slices.ContainsFunc(u.Resources, func(r presence.Resource) bool { return r.Name == res })
	switch typ {
	case "":
		if !online && !info.held {
			t.Fatalf("stanza %d: available presence from %q, but %q/%q is not online: %+v", i, fromAttr, user, res, u)
		}
	case "unavailable", "error":
		if res == "" && found && u.Online || res != "" && online {
			t.Fatalf("stanza %d: %s presence from %q, but %q is still online: %+v", i, typ, fromAttr, user, u)
		}
	case "unsubscribed":
		if found && u.Online {
			t.Fatalf("stanza %d: unsubscribed from %q, but %q is still online", i, fromAttr, user)
		}
	}
}

// checkReplies checks that the component's replies are well-formed
// presence stanzas from its own address.
func checkReplies(t *testing.T, i int, reply []byte) {
	t.Helper()
	d := xml.NewDecoder(io.MultiReader(bytes.NewReader([]byte("<r>")), bytes.NewReader(reply), bytes.NewReader([]byte("</r>"))))
	depth := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("stanza %d: reply %s is not well-formed: %v", i, reply, err)
		}
		switch tt := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				if from, _ := unqualified(tt.Attr, "from"); tt.Name.Local != "presence" || from != "presence.localhost" {
					t.Fatalf("stanza %d: reply %s", i, reply)
				}
			}
		case xml.EndElement:
			depth--
		}
	}
}

// changedUsers returns the JIDs whose state differs between two snapshots
// (both sorted by JID), added and removed ones included.
func changedUsers(before, after []presence.User) []string {
	var out []string
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		switch {
		case j == len(after) || i < len(before) && before[i].JID < after[j].JID:
			out = append(out, before[i].JID)
			i++
		case i == len(before) || after[j].JID < before[i].JID:
			out = append(out, after[j].JID)
			j++
		default:
			if !reflect.DeepEqual(before[i], after[j]) {
				out = append(out, after[j].JID)
			}
			i++
			j++
		}
	}
	return out
}

func userOf(users []presence.User, jid string) (presence.User, bool) {
	i, ok := slices.BinarySearchFunc(users, jid, func(u presence.User, jid string) int {
		switch {
		case u.JID < jid:
			return -1
		case u.JID > jid:
			return 1
		}
		return 0
	})
	if !ok {
		return presence.User{}, false
	}
	return users[i], true
}

// validShows are the show values the tracker may hold.
var validShows = []presence.Show{presence.ShowNone, presence.ShowChat, presence.ShowAway, presence.ShowXA, presence.ShowDND}

// checkTracker checks that the tracker holds only normalized bare user
// JIDs, and resources that make valid full JIDs with them, with values in
// range.
func checkTracker(t *testing.T, users []presence.User) {
	t.Helper()
	for _, u := range users {
		j, err := jid.Parse(u.JID)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" || j.String() != u.JID {
			t.Fatalf("tracker holds user %q: not a normalized bare JID (%v)", u.JID, err)
		}
		if u.Online != (len(u.Resources) > 0) {
			t.Fatalf("user %q: online %v with %d resources", u.JID, u.Online, len(u.Resources))
		}
		for _, r := range u.Resources {
			if r.Name != "" {
				full, err := jid.Parse(u.JID + "/" + r.Name)
				if err != nil || full.Resourcepart() != r.Name || full.Bare().String() != u.JID {
					t.Fatalf("user %q holds resource %q: not a valid resourcepart (%v)", u.JID, r.Name, err)
				}
			}
			if r.Priority < -128 || r.Priority > 127 || !slices.Contains(validShows, r.Show) {
				t.Fatalf("user %q resource %q: priority %d, show %q", u.JID, r.Name, r.Priority, r.Show)
			}
		}
	}
}
