package bridge

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/presenced/presenced/presence"
)

// TestLimits: each bound the bridge enforces answers with its own status
// and code, and leaves the tracker as it was.
func TestLimits(t *testing.T) {
	tr := presence.New(presence.Options{MaxResources: 2, MaxUsers: 2})
	tr.Apply(presence.Update{User: "a@x", Resource: "xmpp", Available: true})
	srv := httptest.NewServer(New(Config{Tracker: tr}))
	defer srv.Close()
	many := strings.TrimSuffix(strings.Repeat("u@x,", maxFilterItems+1), ",")
	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"second resource", "POST", "/v1/webpresence", `{"jid":"a@x","resource":"t1"}`, 200, ""},
		{"third resource", "POST", "/v1/webpresence", `{"jid":"a@x","resource":"t2"}`, 429, "too_many_resources"},
		{"second user", "POST", "/v1/webpresence", `{"jid":"b@x","resource":"t1"}`, 200, ""},
		{"third user, all online", "POST", "/v1/webpresence", `{"jid":"c@x","resource":"t1"}`, 503, "too_many_users"},
		{"long status", "POST", "/v1/webpresence", `{"jid":"a@x","resource":"t1","status":"` + strings.Repeat("s", maxStatus+1) + `"}`, 400, "bad_status"},
		{"filter too large", "GET", "/v1/presence?users=" + many, "", 400, "bad_filter"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, m := call(t, srv, tt.method, tt.path, tt.body)
			var got any
			if e, ok := m["error"].(map[string]any); ok {
				got = e["code"]
			}
			if code != tt.status || (tt.code != "" && got != tt.code) {
				t.Fatalf("%d %v, want %d %s", code, m, tt.status, tt.code)
			}
		})
	}
	if u, _ := tr.Get("a@x"); len(u.Resources) != 2 {
		t.Fatalf("a@x has %d resources, want 2", len(u.Resources))
	}
	if _, ok := tr.Get("c@x"); ok {
		t.Fatal("c@x is tracked")
	}
}
