package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	data        []byte
	contentType string
	etag        string
}

// assets maps a request path to its file; built once from static.
var assets = func() map[string]asset {
	types := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
	}
	out := make(map[string]asset)
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		data, err := static.ReadFile("static/" + name)
		if err != nil {
			panic("dashboard: embedded asset missing: " + name)
		}
		sum := sha256.Sum256(data)
		a := asset{
			data:        data,
			contentType: types[name[strings.LastIndexByte(name, '.'):]],
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		out["/"+name] = a
	}
	out["/"] = out["/index.html"]
	return out
}()

// csp allows the page's own files and same-origin connections (the API and
// the WebSocket: CSP Level 3 browsers match ws: and wss: on 'self').
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the dashboard at the path it is mounted on ("/"):
// index.html for "/", the assets by name, 404 otherwise. Only GET and HEAD
// are allowed (405 otherwise). Responses carry an ETag and must be
// revalidated, so a new binary's page is picked up at once.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", csp)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
	})
}
