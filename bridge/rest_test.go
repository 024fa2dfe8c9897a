package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/bridge/auth"
	"github.com/presenced/presenced/presence"
)

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return resp.StatusCode, resp.Header, m
}

func TestListPaginationAndFilters(t *testing.T) {
	tr := presence.New(presence.Options{})
	for i := range 7 {
		show := presence.ShowAway
		if i%2 == 0 {
			show = presence.ShowNone
		}
		up(tr, fmt.Sprintf("u%d@one", i), show, "")
	}
	up(tr, "z@two", presence.ShowDND, "")
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		code, _, m := call(t, srv, "GET", "/v1/presence?domains=one&limit=3"+cursor, "")
		if code != 200 || pages > 5 {
			t.Fatalf("page %d: %d %v", pages, code, m)
		}
		for _, u := range m["users"].([]any) {
			seen = append(seen, u.(map[string]any)["jid"].(string))
		}
		next, ok := m["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = "&cursor=" + next
	}
	if strings.Join(seen, ",") != "u0@one,u1@one,u2@one,u3@one,u4@one,u5@one,u6@one" {
		t.Fatalf("pages gave %v", seen)
	}
	_, _, m := call(t, srv, "GET", "/v1/presence?show=away,dnd", "")
	if n := len(m["users"].([]any)); n != 4 {
		t.Fatalf("show=away,dnd gave %d users", n)
	}
	for _, bad := range []string{"?limit=0", "?limit=x", "?show=sleepy", "?cursor=!!!", "?users=nobody"} {
		if code, _, m := call(t, srv, "GET", "/v1/presence"+bad, ""); code != 400 {
			t.Errorf("%s: %d %v", bad, code, m)
		}
	}
}

func TestCounts(t *testing.T) {
	tr := presence.New(presence.Options{})
	up(tr, "a@one", presence.ShowAway, "")
	up(tr, "b@one", presence.ShowNone, "")
	up(tr, "c@two", presence.ShowAway, "")
	tr.Apply(presence.Update{User: "c@two", Resource: "r"})
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	code, _, m := call(t, srv, "GET", "/v1/counts", "")
	if code != 200 || m["users"].(float64) != 3 || m["online"].(float64) != 2 {
		t.Fatalf("%d %v", code, m)
	}
	byShow := m["by_show"].(map[string]any)
	if byShow["away"].(float64) != 1 || byShow["available"].(float64) != 1 || byShow["offline"].(float64) != 1 || byShow["dnd"].(float64) != 0 {
		t.Fatalf("by_show %v", byShow)
	}
	two := m["by_domain"].(map[string]any)["two"].(map[string]any)
	if two["users"].(float64) != 1 || two["online"].(float64) != 0 {
		t.Fatalf("by_domain two %v", two)
	}
}

func TestWebPresence(t *testing.T) {
	clk := &fixedClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	tr := presence.New(presence.Options{Clock: clk})
	tr.Apply(presence.Update{User: "a@x", Resource: "xmpp", Available: true, Show: presence.ShowAway, Priority: 0})
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	code, _, m := call(t, srv, "POST", "/v1/webpresence", `{"jid":"a@x","resource":"tab1","show":"chat","status":"on the web","priority":1,"ttl":30}`)
	if code != 200 || m["show"] != "chat" || len(m["resources"].([]any)) != 2 {
		t.Fatalf("publish: %d %v", code, m)
	}
	// The TTL runs out without a refresh: the XMPP resource wins again.
	clk.add(31 * time.Second)
	tr.ExpireDue()
	if u, _ := tr.Get("a@x"); u.Show != presence.ShowAway || len(u.Resources) != 1 {
		t.Fatalf("after the TTL: %+v", u)
	}
	call(t, srv, "POST", "/v1/webpresence", `{"jid":"a@x","resource":"tab1","show":"dnd"}`)
	if code, _, _ := call(t, srv, "DELETE", "/v1/webpresence/tab1?jid=a@x", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if u, _ := tr.Get("a@x"); len(u.Resources) != 1 {
		t.Fatalf("after delete: %+v", u)
	}
	for _, bad := range []string{
		`{"jid":"a@x","resource":"t","show":"sleepy"}`,
		`{"jid":"a@x/res","resource":"t"}`,
		`{"jid":"a@x"}`,
		`{"jid":"a@x","resource":"t","ttl":1}`,
		`{"jid":"a@x","resource":"t","extra":1}`,
		`not json`,
		`{"jid":"a@x","resource":"t","status":"` + strings.Repeat("x", 5000) + `"}`,
	} {
		if code, _, m := call(t, srv, "POST", "/v1/webpresence", bad); code != 400 && code != 413 {
			t.Errorf("%.60s: %d %v", bad, code, m)
		}
	}
	if code, hdr, _ := call(t, srv, "GET", "/v1/webpresence", ""); code != 405 || hdr.Get("Allow") != "POST" {
		t.Errorf("GET /v1/webpresence: %d %q", code, hdr.Get("Allow"))
	}
}

func TestRESTAuthRateLimitsAndHistory(t *testing.T) {
	tr := presence.New(presence.Options{})
	up(tr, "a@x", presence.ShowNone, "")
	up(tr, "b@x", presence.ShowNone, "")
	var asked string
	b := New(Config{Tracker: tr, RatePerSecond: 1, RateBurst: 3,
		Authenticate: func(r *http.Request) (Access, error) {
			if r.Header.Get("Authorization") != "Bearer good" {
				return nil, errors.New("auth: bad signature")
			}
			return &auth.Claims{Subject: "a@x", Users: []string{"a@x"}}, nil
		},
		History: func(_ context.Context, jid string, since, until time.Time, limit int) ([]HistoryEntry, error) {
			asked = jid
			return []HistoryEntry{{Time: since, Resource: "r", Event: "online"}}, nil
		}})
	srv := httptest.NewServer(b)
	defer srv.Close()
	do := func(path, token string) (int, http.Header, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(data)
	}
	if code, hdr, body := do("/v1/presence", "forged"); code != 401 || !strings.Contains(body, "unauthorized") || hdr.Get("WWW-Authenticate") == "" {
		t.Fatalf("forged token: %d %s", code, body)
	}
	if code, _, body := do("/v1/presence", "good"); code != 200 || strings.Contains(body, "b@x") {
		t.Fatalf("the token sees only a@x: %d %s", code, body)
	}
	if code, _, _ := do("/v1/presence/b@x", "good"); code != 404 {
		t.Fatalf("a user the token may not see must look unknown: %d", code)
	}
	if code, _, body := do("/v1/presence/a@x/history?since=2026-11-26T00:00:00Z", "good"); code != 200 || asked != "a@x" || !strings.Contains(body, `"event":"online"`) {
		t.Fatalf("history: %d %s", code, body)
	}
	// The burst of 3 is used up by now (4 requests with the good token).
	code, hdr, _ := do("/v1/presence", "good")
	if code != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d, Retry-After %q", code, hdr.Get("Retry-After"))
	}
	if code, _, _ := do("/v1/health", ""); code != 200 {
		t.Fatalf("health must stay open: %d", code)
	}
	b.limits = newLimiter(100, 100) // a fresh budget for the admin checks
	if code, _, _ := do("/admin/v1/stats", "good"); code != 403 {
		t.Fatalf("admin stats without the admin scope: %d", code)
	}
}

func TestHistoryWithoutStore(t *testing.T) {
	tr := presence.New(presence.Options{})
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	if code, _, m := call(t, srv, "GET", "/v1/presence/a@x/history", ""); code != 501 || m["error"].(map[string]any)["code"] != "no_history" {
		t.Fatalf("%d %v", code, m)
	}
}

func TestAdminStats(t *testing.T) {
	tr := presence.New(presence.Options{})
	up(tr, "a@one", presence.ShowAway, "")
	tr.Apply(presence.Update{User: "a@one", Resource: "r2", Available: true})
	up(tr, "b@two", presence.ShowNone, "")
	b := New(Config{Tracker: tr, Checks: map[string]func() error{"store": func() error { return nil }},
		Authenticate: func(r *http.Request) (Access, error) { return &auth.Claims{Admin: true}, nil }})
	srv := httptest.NewServer(b)
	defer srv.Close()
	code, _, m := call(t, srv, "GET", "/admin/v1/stats", "")
	if code != 200 || m["users"].(float64) != 2 || m["resources"].(float64) != 3 || m["checks"].(map[string]any)["store"] != "ok" {
		t.Fatalf("%d %v", code, m)
	}
}

// TestCountsLabelsDoNotDependOnTheToken: a token's scope selects whom a
// client counts, but the domain labels are the served ones, those the
// request names, and other, as for a client without a token; a token that
// may see no one counts no one.
func TestCountsLabelsDoNotDependOnTheToken(t *testing.T) {
	tr := presence.New(presence.Options{Domains: []string{"a.example"}})
	up(tr, "u@a.example", presence.ShowNone, "")
	up(tr, "v@b.example", presence.ShowAway, "")
	up(tr, "w@c.example", presence.ShowNone, "")
	tokens := map[string]*auth.Claims{
		"b":    {Domains: []string{"b.example"}},
		"user": {Users: []string{"w@c.example"}},
		"none": {},
	}
	srv := httptest.NewServer(New(Config{Tracker: tr, Authenticate: func(r *http.Request) (Access, error) {
		return tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")], nil
	}}))
	defer srv.Close()
	counts := func(token, query string) (users float64, byDomain map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/counts"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /v1/counts%s as %s: %d %v", query, token, resp.StatusCode, err)
		}
		return m["users"].(float64), m["by_domain"].(map[string]any)
	}
	for _, tc := range []struct {
		token, query string
		users        float64
		labels       []string
	}{
		{"b", "", 1, []string{"other"}},
		{"b", "?domains=b.example", 1, []string{"b.example"}},
		{"user", "", 1, []string{"other"}},
		{"user", "?users=w@c.example", 1, []string{"c.example"}},
		{"none", "", 0, nil},
	} {
		users, byDomain := counts(tc.token, tc.query)
		var labels []string
		for d, c := range byDomain {
			if c.(map[string]any)["users"].(float64) > 0 {
				labels = append(labels, d)
			}
		}
		if users != tc.users || fmt.Sprint(labels) != fmt.Sprint(tc.labels) {
			t.Errorf("token %s%s: %v users under %v, want %v under %v", tc.token, tc.query, users, labels, tc.users, tc.labels)
		}
	}
}
