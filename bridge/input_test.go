package bridge

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/presenced/presenced/presence"
)

// TestInputsRefused: inputs the bridge once took (issue 13, point 5) get a
// clear 4xx with their own code, and the tracker is left as it was.
func TestInputsRefused(t *testing.T) {
	tr := presence.New(presence.Options{})
	tr.Apply(presence.Update{User: "a@x", Resource: "phone", Available: true})
	srv := httptest.NewServer(New(Config{Tracker: tr, Logger: quietLog}))
	defer srv.Close()
	const ok = `{"jid":"b@x","resource":"tab"}`
	for _, tt := range []struct {
		name, method, path, ctype, body string
		hdr                             http.Header
		status                          int
		code                            string
	}{
		{"JSON body", "POST", "/v1/webpresence", "application/json", ok, nil, 200, ""},
		{"JSON with a charset", "POST", "/v1/webpresence", "application/json; charset=utf-8", ok, nil, 200, ""},
		{"trailing white space", "POST", "/v1/webpresence", "application/json", ok + " \n", nil, 200, ""},
		{"text/plain (a cross-site form needs no preflight)", "POST", "/v1/webpresence", "text/plain", ok, nil, 415, "unsupported_media_type"},
		{"form", "POST", "/v1/webpresence", "application/x-www-form-urlencoded", ok, nil, 415, "unsupported_media_type"},
		{"no Content-Type", "POST", "/v1/webpresence", "", ok, nil, 415, "unsupported_media_type"},
		{"a look-alike type", "POST", "/v1/webpresence", "application/jsonp", ok, nil, 415, "unsupported_media_type"},
		{"a second JSON value", "POST", "/v1/webpresence", "application/json", ok + `{"x":1}`, nil, 400, "bad_json"},
		{"a stray brace after the value", "POST", "/v1/webpresence", "application/json", ok + `}`, nil, 400, "bad_json"},
		{"NUL in the resource", "POST", "/v1/webpresence", "application/json", `{"jid":"b@x","resource":"t\u0000ab"}`, nil, 400, "bad_request"},
		{"escape in the resource", "POST", "/v1/webpresence", "application/json", `{"jid":"b@x","resource":"\u001b[31mred"}`, nil, 400, "bad_request"},
		{"newline in the resource", "POST", "/v1/webpresence", "application/json", `{"jid":"b@x","resource":"t\nab"}`, nil, 400, "bad_request"},
		{"DEL in the resource", "POST", "/v1/webpresence", "application/json", `{"jid":"b@x","resource":"t\u007fab"}`, nil, 400, "bad_request"},
		{"NUL in the resource to delete", "DELETE", "/v1/webpresence/t%00ab?jid=a@x", "", "", nil, 400, "bad_request"},
		{"%2F in the path JID", "GET", "/v1/presence/a@x%2Fphone", "", "", nil, 400, "bad_jid"},
		{"%2F in the path JID of the history", "GET", "/v1/presence/a@x%2Fphone/history", "", "", nil, 400, "bad_jid"},
		{"a cursor that does not decode", "GET", "/v1/presence?cursor=%%%", "", "", nil, 400, "bad_query"},
		{"a cursor that is not base64", "GET", "/v1/presence?cursor=!!!", "", "", nil, 400, "bad_cursor"},
		{"a bad escape elsewhere in the query", "GET", "/v1/counts?domains=x&y=%zz", "", "", nil, 400, "bad_query"},
		{"a token in a REST URL", "GET", "/v1/presence?access_token=abc", "", "", nil, 400, "token_in_query"},
		{"a token in a REST URL, with a header too", "GET", "/v1/counts?access_token=abc", "", "",
			http.Header{"Authorization": {"Bearer abc"}}, 400, "token_in_query"},
		{"a stream query that does not decode", "GET", "/v1/stream?resume=%%%", "", "", nil, 400, "bad_query"},
		{"a stream upgrade from a foreign Origin", "GET", "/v1/stream", "", "",
			http.Header{"Origin": {"https://evil.example"}, "Connection": {"Upgrade"}, "Upgrade": {"websocket"},
				"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}, 403, "forbidden"},
		{"a stream request that is no upgrade", "GET", "/v1/stream", "", "", nil, 400, "bad_upgrade"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			for k, v := range tt.hdr {
				req.Header[k] = v
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			var e errorJSON
			_ = json.Unmarshal(data, &e)
			if resp.StatusCode != tt.status || e.Error.Code != tt.code || (tt.code != "" && e.Error.Message == "") {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, data, tt.status, tt.code)
			}
		})
	}
	if u, _ := tr.Get("a@x"); len(u.Resources) != 1 {
		t.Fatalf("a@x has %d resources, want 1", len(u.Resources))
	}
	if u, _ := tr.Get("b@x"); len(u.Resources) != 1 {
		t.Fatalf("b@x has %d resources, want the one tab", len(u.Resources))
	}
}
