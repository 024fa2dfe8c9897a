package bridge

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/presenced/presenced/presence"
)

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	spec, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Validate(context.Background()); err != nil {
		t.Fatalf("bridge/openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	return spec
}

func TestEveryRouteIsDocumented(t *testing.T) {
	spec := loadSpec(t)
	b := New(Config{Tracker: presence.New(presence.Options{})})
	for _, r := range b.routes {
		if spec.Paths.Find(r) == nil {
			t.Errorf("route %s is not in bridge/openapi.yaml", r)
		}
	}
	for path := range spec.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") && !strings.HasPrefix(path, "/admin/v1/") && path != "/healthz" && path != "/readyz" {
			t.Errorf("documented path %s is not under /v1/", path)
		}
	}
}

// TestRealTrafficMatchesTheSpec sends real requests to a bridge and
// validates each request and response against bridge/openapi.yaml.
func TestRealTrafficMatchesTheSpec(t *testing.T) {
	spec := loadSpec(t)
	spec.Servers = nil // match any host
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fixedClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	tr := presence.New(presence.Options{Clock: clk})
	tr.Apply(presence.Update{User: "a@x", Resource: "pc", Available: true, Status: "hi",
		Statuses: []presence.LangStatus{{Lang: "de", Text: "hallo"}}, Idle: clk.Now().Add(-time.Hour)})
	tr.Apply(presence.Update{User: "b@y", Resource: "phone", Available: true, Show: presence.ShowAway})
	tr.Apply(presence.Update{User: "b@y", Resource: "phone"})
	b := New(Config{Tracker: tr, Checks: map[string]func() error{"store": func() error { return nil }},
		History: func(context.Context, string, time.Time, time.Time, int) ([]HistoryEntry, error) {
			return []HistoryEntry{{Time: clk.Now(), Resource: "pc", Event: "offline", Show: "away", Reason: "timeout"}}, nil
		}})
	srv := httptest.NewServer(b)
	defer srv.Close()
	cases := []struct {
		method, path, body string
		code               int
		ctype              string // "": application/json when there is a body
	}{
		{"GET", "/v1/presence", "", 200, ""},
		{"GET", "/v1/presence?domains=x&limit=1", "", 200, ""},
		{"GET", "/v1/presence?show=sleepy", "", 400, ""},
		{"GET", "/v1/presence/a@x", "", 200, ""},
		{"GET", "/v1/presence/b@y", "", 200, ""},
		{"GET", "/v1/presence/nobody@x", "", 404, ""},
		{"GET", "/v1/presence/a@x/history?since=2026-11-26T00:00:00Z", "", 200, ""},
		{"GET", "/v1/counts", "", 200, ""},
		{"POST", "/v1/webpresence", `{"jid":"a@x","resource":"tab","show":"dnd","ttl":30}`, 200, ""},
		{"POST", "/v1/webpresence", `{"jid":"a@x","resource":"tab","show":"bogus"}`, 400, ""},
		{"DELETE", "/v1/webpresence/tab?jid=a@x", "", 204, ""},
		{"POST", "/v1/webpresence", `{"jid":"a@x","resource":"tab"}`, 415, "text/plain"},
		{"POST", "/v1/webpresence", `{"jid":"a@x","resource":"tab"}{}`, 400, ""},
		{"GET", "/v1/presence/a@x%2Fpc", "", 400, ""},
		{"GET", "/v1/presence?cursor=%%%", "", 400, ""},
		{"GET", "/v1/presence?access_token=abc", "", 400, ""},
		{"GET", "/v1/stream", "", 400, ""},
		{"GET", "/v1/health", "", 200, ""},
		{"GET", "/healthz", "", 200, ""},
		{"GET", "/readyz", "", 200, ""},
		{"GET", "/admin/v1/stats", "", 200, ""},
		{"GET", "/v1/openapi.yaml", "", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			} else if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("not in the spec: %v", err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if c.code < 400 {
				if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
					t.Fatalf("request does not match the spec: %v", err)
				}
			}
			req2, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
			req2.Header = req.Header
			resp, err := http.DefaultClient.Do(req2)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.code, body)
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
				Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body))}
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Fatalf("response does not match the spec: %v\n%s", err, body)
			}
		})
	}
}
