package bridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/bridge/auth"
	"github.com/presenced/presenced/presence"
)

// fuzzAccess is what the authenticated fuzz clients may see: one domain
// and one user of another domain, like a token with those claims.
func fuzzAccess(jid string) bool {
	return strings.HasSuffix(jid, "@example.org") || jid == "bob@example.net"
}

// fuzzClaims are the claims of a token that sees what fuzzAccess allows,
// with subject sub ("": a token without sub).
func fuzzClaims(sub string) *auth.Claims {
	return &auth.Claims{Subject: sub, Domains: []string{"example.org"}, Users: []string{"bob@example.net"}}
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// errorCodes are the codes an error frame may carry (docs/websocket.md);
// rate_limited is the read loop's, not clientReply's.
var errorCodes = map[string]bool{
	"bad_message": true, "unknown_type": true, "bad_filter": true,
	"bad_show": true, "bad_jid": true, "bad_ttl": true, "bad_request": true, "bad_status": true, "not_yours": true, "no_subject": true,
	"too_many_resources": true, "too_many_users": true,
}

// FuzzClientMessage feeds arbitrary bytes as one client message of
// /v1/stream to clientReply, as a client without authentication (mode 0),
// with a token naming a subject (1) and with a token without one (2). No
// panic; every message gets a valid filter (subscribe), a published web
// presence (presence: nil, and the tracker has it, for the right user), or
// an error frame with a known, non-empty code and a message.
func FuzzClientMessage(f *testing.F) {
	for _, m := range []string{
		`{"type":"subscribe","domains":["example.org"],"users":[],"show":["away"]}`,
		`{"type":"subscribe"}`,
		`{"type":"subscribe","users":["bob@example.net","alice@example.org"],"show":["available","chat","away","xa","dnd","offline"]}`,
		`{"type":"subscribe","domains":["a@b"],"show":"away"}`,
		`{"type":"subscribe","domains":[" ","x/y"],"users":["nobody"],"show":["sleeping"]}`,
		`{"type":"presence","resource":"tab-1","show":"away","status":"in a meeting","priority":0,"ttl":60}`,
		`{"type":"presence","jid":"alice@example.org","resource":"tab-1"}`,
		`{"type":"presence","jid":"mallory@example.org","resource":"tab-1"}`,
		`{"type":"presence","jid":"Alice@Example.ORG/phone","resource":"x","show":["away"]}`,
		`{"type":"presence","jid":"alice@example.org","resource":"","ttl":3601,"priority":128}`,
		`{"type":"presence","jid":"alice@example.org","resource":"r","ttl":4}`,
		`{"type":"presence","jid":"@example.org","resource":"r"}`,
		`{"type":"hello"}`, `{"type":1}`, `{}`, `[]`, `null`, `"subscribe"`, ``, `{"type":"subscribe"`,
		"{\"type\":\"presence\",\"jid\":\"\xff@example.org\",\"resource\":\"\xc3\x28\"}",
		`{"type":"presence","jid":"alice@example.org","resource":"r","priority":1e3}`,
		`{"type":"presence","jid":"alice@example.org","resource":"r","ttl":9223372036854775807}`,
		`{"Type":"SUBSCRIBE","DOMAINS":["example.org"]}`,
		`{"type":"presence","jid":"alice@example.org","resource":"r","status":"` + strings.Repeat("s", 1025) + `"}`,
		`{"type":"subscribe","domains":[` + strings.Repeat(`"d",`, 1000) + `"d"]}`,
	} {
		for mode := range uint8(3) {
			f.Add([]byte(m), mode)
		}
	}
	b := New(Config{Tracker: presence.New(presence.Options{}), Logger: quietLog})
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		tr := presence.New(presence.Options{})
		b.cfg.Tracker = tr
		var access Access
		subject := ""
		b.cfg.Authenticate = nil
		switch mode % 3 {
		case 1:
			subject = "alice@example.org"
			access = fuzzClaims(subject)
		case 2:
			access = fuzzClaims("")
		}
		if access != nil {
			b.cfg.Authenticate = func(*http.Request) (Access, error) { return access, nil }
		}
		reply := b.clientReply(data, access)

		var m clientMessage
		decoded := json.Unmarshal(data, &m) == nil
		switch r := reply.(type) {
		case errorFrame:
			if r.Type != "error" || r.Code == "" || r.Message == "" || !errorCodes[r.Code] {
				t.Fatalf("bad error frame %+v", r)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("error frame does not encode: %v", err)
			}
			if !decoded && r.Code != "bad_message" {
				t.Fatalf("undecodable message answered %q", r.Code)
			}
		case *viewFilter:
			if r == nil || !decoded || m.Type != "subscribe" {
				t.Fatalf("filter %v for a message of type %q (decoded %v)", r, m.Type, decoded)
			}
			if r.access != access {
				t.Fatal("the filter lost the client's access")
			}
			if len(r.domains)+len(r.users) > maxFilterItems {
				t.Fatalf("filter of %d items", len(r.domains)+len(r.users))
			}
			for d := range r.domains {
				if d == "" || d != strings.TrimSpace(d) || strings.ContainsAny(d, "@/") {
					t.Fatalf("filter domain %q", d)
				}
			}
			for u := range r.users {
				if u != strings.TrimSpace(u) || !strings.Contains(u, "@") || strings.Contains(u, "/") {
					t.Fatalf("filter user %q", u)
				}
			}
			for s := range r.shows {
				if !wireShows[s] {
					t.Fatalf("filter show %q", s)
				}
			}
			// The filter never widens what the token may see.
			if access != nil && r.user("mallory@example.com") {
				t.Fatal("the filter lets through a user the token may not see")
			}
		case nil:
			if !decoded || m.Type != "presence" {
				t.Fatalf("no answer to a message of type %q (decoded %v)", m.Type, decoded)
			}
			if mode%3 == 2 {
				t.Fatal("a token without a subject published presence")
			}
			user := subject
			if user == "" {
				j, err := jid.Parse(m.JID)
				if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
					t.Fatalf("published presence for jid %q", m.JID)
				}
				user = j.Bare().String()
			} else if m.JID != "" && m.JID != subject {
				t.Fatalf("a token for %s published presence for %q", subject, m.JID)
			}
			if m.Resource == "" || len(m.Resource) > 64 || m.Priority < -128 || m.Priority > 127 || m.TTL != 0 && (m.TTL < 5 || m.TTL > 3600) ||
				len(m.Status) > maxStatus {
				t.Fatalf("published out-of-range presence %+v", m)
			}
			users, _ := tr.Snapshot()
			if len(users) != 1 || users[0].JID != user || !users[0].Online || len(users[0].Resources) != 1 ||
				users[0].Resources[0].Name != "web/"+m.Resource || users[0].Resources[0].Expires.IsZero() {
				t.Fatalf("tracker after publishing for %s: %+v", user, users)
			}
			return
		default:
			t.Fatalf("clientReply returned %T", reply)
		}
		if users, _ := tr.Snapshot(); len(users) != 0 {
			t.Fatalf("a refused or subscribe message changed the tracker: %+v", users)
		}
	})
}

// restFixture is a tracker with a few users of two domains, online and
// offline, with resources, statuses and a web presence.
func restFixture() *presence.Tracker {
	clk := &fixedClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	tr := presence.New(presence.Options{Clock: clk})
	tr.Apply(presence.Update{User: "alice@example.org", Resource: "pc", Available: true, Priority: 5, Status: "at my desk"})
	tr.Apply(presence.Update{User: "alice@example.org", Resource: "phone", Available: true, Show: presence.ShowAway, Priority: -1,
		Statuses: []presence.LangStatus{{Lang: "de", Text: "unterwegs"}}, Idle: clk.Now().Add(-time.Hour)})
	tr.Apply(presence.Update{User: "bob@example.net", Resource: "web/tab", Available: true, Show: presence.ShowDND, TTL: time.Minute})
	tr.Apply(presence.Update{User: "carol@example.org", Resource: "r", Available: true, Show: presence.ShowXA})
	tr.Apply(presence.Update{User: "dave@example.com", Resource: "r", Available: true, Show: presence.ShowChat})
	clk.add(time.Minute)
	tr.Apply(presence.Update{User: "erin@example.org", Resource: "r", Available: true})
	tr.Apply(presence.Update{User: "erin@example.org", Resource: "r"})
	return tr
}

// FuzzREST sends GET requests with arbitrary query strings (and, for
// /v1/presence/{jid}, an arbitrary JID) through the real handler: route
// picks /v1/presence, /v1/presence/{jid}, /v1/counts or
// /v1/presence/{jid}/history, authed whether a token (one domain, one
// user) is in force. No panic; 200 with JSON, or a 4xx with a JSON error
// body that has a code; never 5xx; and an authenticated client never sees
// a user its token does not allow.
func FuzzREST(f *testing.F) {
	for _, s := range []struct {
		route  uint8
		jid, q string
	}{
		{0, "", ""},
		{0, "", "domains=example.org&show=away,dnd&limit=1"},
		{0, "", "users=alice@example.org,bob@example.net&show=offline"},
		{0, "", "limit=2&cursor=" + base64.RawURLEncoding.EncodeToString([]byte("alice@example.org"))},
		{0, "", "cursor=%ZZ&limit=-1"},
		{0, "", "cursor=////&limit=99999999999999999999"},
		{0, "", "domains=,&users=a/b&show=sleeping"},
		{0, "", "limit=5000&limit=0&domains=example.org&domains=example.net"},
		{0, "", "show=%00%ff&cursor=%C3%28"},
		{1, "alice@example.org", ""},
		{1, "Alice@EXAMPLE.org/pc", "x=1"},
		{1, "example.org", ""},
		{1, "@example.org", ""},
		{1, "a@b@c", ""},
		{1, "\xff\xfe@example.org", ""},
		{1, strings.Repeat("a", 1100) + "@example.org", ""},
		{1, "mallory@example.com", ""},
		{2, "", "domains=example.org"},
		{2, "", "show=away,away,,"},
		{2, "", "users=%40"},
		{3, "alice@example.org", "since=2026-11-26T00:00:00Z&until=2026-11-27T00:00:00Z&limit=10"},
		{3, "alice@example.org", "since=yesterday&limit=0"},
		{3, "bob@example.net", "limit=10001"},
	} {
		f.Add(s.route, s.jid, s.q, false)
		f.Add(s.route, s.jid, s.q, true)
	}
	tr := restFixture()
	history := func(_ context.Context, jid string, since, until time.Time, limit int) ([]HistoryEntry, error) {
		return []HistoryEntry{{Time: since, Resource: "r", Event: "online", Show: "available"}}, nil
	}
	open := New(Config{Tracker: tr, Logger: quietLog, RatePerSecond: 1e9, RateBurst: 1 << 30, History: history})
	authed := New(Config{Tracker: tr, Logger: quietLog, RatePerSecond: 1e9, RateBurst: 1 << 30, History: history,
		Authenticate: func(*http.Request) (Access, error) { return fuzzClaims("alice@example.org"), nil }})
	f.Fuzz(func(t *testing.T, route uint8, user, query string, auth bool) {
		var path string
		switch route % 4 {
		case 0:
			path = "/v1/presence"
		case 1:
			if user == "" || user == "." || user == ".." {
				return // another route, or a redirect of the cleaned path
			}
			path = "/v1/presence/" + url.PathEscape(user)
		case 2:
			path = "/v1/counts"
		case 3:
			if user == "" || user == "." || user == ".." {
				return
			}
			path = "/v1/presence/" + url.PathEscape(user) + "/history"
		}
		target := path
		if query != "" {
			target += "?" + query
		}
		// What net/http's server would accept as a request target.
		u, err := url.ParseRequestURI(target)
		if err != nil || strings.ContainsAny(target, " \t\r\n") {
			return
		}
		req := &http.Request{Method: http.MethodGet, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Host: "presenced.test", RemoteAddr: "192.0.2.1:1234"}
		req = req.WithContext(context.Background())
		b := open
		if auth {
			b = authed
		}
		w := httptest.NewRecorder()
		b.ServeHTTP(w, req)
		body := w.Body.Bytes()
		switch {
		case w.Code == http.StatusOK:
			if !json.Valid(body) {
				t.Fatalf("200 with a body that is not JSON: %q", body)
			}
		case w.Code >= 400 && w.Code < 500:
			var e errorJSON
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%d without a JSON error body: %q", w.Code, body)
			}
			return
		default:
			t.Fatalf("GET %s: status %d: %s", target, w.Code, body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("200 with Content-Type %q", ct)
		}
		checkVisible(t, route%4, body, auth)
	})
}

// checkVisible checks that a 200 answer shows only users an authenticated
// client may see, and that a page is no longer than its limit.
func checkVisible(t *testing.T, route uint8, body []byte, auth bool) {
	t.Helper()
	switch route {
	case 0:
		var l listJSON
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(l.Users) > maxPageSize {
			t.Fatalf("page of %d users", len(l.Users))
		}
		for i, u := range l.Users {
			if auth && !fuzzAccess(u.JID) {
				t.Fatalf("the token sees %s", u.JID)
			}
			if i > 0 && l.Users[i-1].JID >= u.JID {
				t.Fatalf("list not sorted: %s then %s", l.Users[i-1].JID, u.JID)
			}
		}
		if l.NextCursor != "" {
			raw, err := base64.RawURLEncoding.DecodeString(l.NextCursor)
			if err != nil || len(l.Users) == 0 || string(raw) != l.Users[len(l.Users)-1].JID {
				t.Fatalf("next cursor %q after %d users", l.NextCursor, len(l.Users))
			}
		}
	case 1:
		var u userJSON
		if err := json.Unmarshal(body, &u); err != nil {
			t.Fatalf("user: %v", err)
		}
		if auth && !fuzzAccess(u.JID) {
			t.Fatalf("the token sees %s", u.JID)
		}
	case 2:
		var c countsJSON
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatalf("counts: %v", err)
		}
		for d := range c.ByDomain {
			if auth && d != "example.org" && d != "example.net" {
				t.Fatalf("the token counts users of %s", d)
			}
		}
		if c.Online > c.Users || c.Users > 5 {
			t.Fatalf("counts %+v", c)
		}
	}
}
