package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandlerServesAssets(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, file, ctype string
	}{
		{"/", "index.html", "text/html; charset=utf-8"},
		{"/index.html", "index.html", "text/html; charset=utf-8"},
		{"/app.js", "app.js", "text/javascript; charset=utf-8"},
		{"/style.css", "style.css", "text/css; charset=utf-8"},
	} {
		resp := get(t, h, http.MethodGet, tc.path)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", tc.path, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		want, err := os.ReadFile("static/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != string(want) {
			t.Errorf("GET %s: body is not static/%s", tc.path, tc.file)
		}
		for _, k := range []string{"ETag", "Content-Security-Policy", "X-Content-Type-Options"} {
			if resp.Header.Get(k) == "" {
				t.Errorf("GET %s: no %s header", tc.path, k)
			}
		}
		if head := get(t, h, http.MethodHead, tc.path); head.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %d", tc.path, head.StatusCode)
		}
	}
}

func TestHandlerNotFound(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nope", "/static/app.js", "/app.js/", "/v1/presence", "/../dashboard.go", "/index.htm"} {
		if resp := get(t, h, http.MethodGet, p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestHandlerMethods(t *testing.T) {
	resp := get(t, Handler(), http.MethodPost, "/")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestHandlerRevalidates(t *testing.T) {
	h := Handler()
	etag := get(t, h, http.MethodGet, "/app.js").Header.Get("ETag")
	if resp := get(t, h, http.MethodGet, "/app.js", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET /app.js with its ETag: %d, want 304", resp.StatusCode)
	}
	if other := get(t, h, http.MethodGet, "/style.css").Header.Get("ETag"); other == etag {
		t.Error("app.js and style.css share an ETag")
	}
}

// The page references its assets relatively (so it works under a prefix)
// and loads nothing from elsewhere.
func TestIndexReferences(t *testing.T) {
	body, _ := io.ReadAll(get(t, Handler(), http.MethodGet, "/").Body)
	page := string(body)
	for _, want := range []string{`href="style.css"`, `src="app.js"`} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, "//cdn") {
		t.Error("index.html loads something from another origin")
	}
}
