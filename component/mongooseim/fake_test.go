package mongooseim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"
	"mellium.im/xmpp/jid"
)

// The fake below stands in for MongooseIM's admin GraphQL handler. It
// validates every request against the real admin schema (testdata/schema,
// copied from esl/MongooseIM), checks Basic authentication and, like
// cowboy, the Host header, and answers in the shapes and with the error
// codes of mongoose_graphql_handler and mongoose_graphql_errors. It
// answers session.listSessions; what else the schema has answers
// not_implemented.

var (
	schemaOnce sync.Once
	schema     *ast.Schema
	schemaErr  error
)

// adminSchema loads every file of testdata/schema/admin and
// testdata/schema/global, as MongooseIM does for its admin endpoint.
func adminSchema() (*ast.Schema, error) {
	schemaOnce.Do(func() {
		var srcs []*ast.Source
		for _, dir := range []string{"admin", "global"} {
			files, err := filepath.Glob(filepath.Join("testdata", "schema", dir, "*.gql"))
			if err != nil || len(files) == 0 {
				schemaErr = fmt.Errorf("no schema files in testdata/schema/%s", dir)
				return
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					schemaErr = err
					return
				}
				srcs = append(srcs, &ast.Source{Name: f, Input: string(b)})
			}
		}
		// spectaql_dir.gql names an input type that SpectaQL (the
		// documentation generator) supplies; MongooseIM's own GraphQL
		// library does not check directive argument types. See README.md.
		srcs = append(srcs, &ast.Source{Name: "spectaql_stub.gql",
			Input: "input SpectaQLOption { key: String! value: String! }"})
		schema, schemaErr = gqlparser.LoadSchema(srcs...)
	})
	return schema, schemaErr
}

type fakeSession struct {
	JID      string
	Priority *int // nil: connected without available presence
}

func prio(p int) *int { return &p }

type fakeServer struct {
	tb  testing.TB // nil in examples
	srv *httptest.Server

	user, pass string
	host       string // if set, the Host header must match (cowboy routing)

	mu       sync.Mutex
	domains  map[string]bool
	sessions []fakeSession
	// intercept, if set and returning true, has answered the request.
	intercept func(w http.ResponseWriter, r *http.Request, query string) bool
	// onListSessions runs while listSessions is being answered.
	onListSessions func(domain string)

	requests int
	queries  []string
	invalid  []string
}

func newFake(tb testing.TB) *fakeServer {
	f := &fakeServer{
		tb:      tb,
		user:    "admin",
		pass:    "secret",
		domains: map[string]bool{"example.com": true, "other.org": true},
	}
	if _, err := adminSchema(); err != nil {
		if tb != nil {
			tb.Fatalf("loading the admin schema: %v", err)
		}
		panic(err)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	if tb != nil {
		tb.Cleanup(func() {
			f.srv.Close()
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, q := range f.invalid {
				tb.Errorf("the client sent a query the admin schema rejects:\n%s", q)
			}
		})
	}
	return f
}

func (f *fakeServer) client() *Client {
	return &Client{Endpoint: f.srv.URL + "/api/graphql", User: "admin", Password: "secret",
		Timeout: 5 * time.Second}
}

func (f *fakeServer) setSessions(s ...fakeSession) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = s
}

type gqlErr struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions,omitempty"`
	Path       []any          `json:"path,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func errBody(code, msg string) map[string]any {
	return map[string]any{"errors": []gqlErr{{Message: msg, Extensions: map[string]any{"code": code}}}}
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	f.mu.Unlock()
	if r.URL.Path != "/api/graphql" || (f.host != "" && hostOnly(r.Host) != f.host) {
		w.WriteHeader(http.StatusNotFound) // cowboy: no route, empty body
		return
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
		writeJSON(w, http.StatusUnauthorized, errBody("wrong_credentials", "The provided credentials are wrong"))
		return
	}
	var req struct {
		Query         string         `json:"query"`
		Variables     map[string]any `json:"variables"`
		OperationName string         `json:"operationName"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("invalid_json_body", "The request JSON body is invalid"))
		return
	}
	f.mu.Lock()
	f.queries = append(f.queries, req.Query)
	intercept := f.intercept
	f.mu.Unlock()
	if intercept != nil && intercept(w, r, req.Query) {
		return
	}
	sch, _ := adminSchema()
	doc, errs := gqlparser.LoadQueryWithRules(sch, req.Query, rules.NewDefaultRules())
	if len(errs) > 0 {
		f.mu.Lock()
		f.invalid = append(f.invalid, req.Query+"\n-> "+errs.Error())
		f.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, errBody("validation_error", errs.Error()))
		return
	}
	op := doc.Operations.ForName(req.OperationName)
	if op == nil {
		writeJSON(w, http.StatusBadRequest, errBody("validation_error", "no such operation"))
		return
	}
	vars, err := validator.VariableValues(sch, op, req.Variables)
	if err != nil {
		f.mu.Lock()
		f.invalid = append(f.invalid, req.Query+"\n-> variables: "+err.Error())
		f.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, errBody("validation_error", err.Error()))
		return
	}
	data, gerrs := f.execute(op, vars)
	body := map[string]any{"data": data}
	if len(gerrs) > 0 {
		body["errors"] = gerrs
	}
	writeJSON(w, http.StatusOK, body)
}

func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		return h[:i]
	}
	return h
}

// resolverError is what a resolver of MongooseIM returns on failure.
type resolverError struct{ code, msg string }

func (f *fakeServer) execute(op *ast.OperationDefinition, vars map[string]any) (map[string]any, []gqlErr) {
	data := map[string]any{}
	var errs []gqlErr
	for _, sel := range op.SelectionSet {
		cat, ok := sel.(*ast.Field)
		if !ok {
			errs = append(errs, gqlErr{Message: "fake: fragments are not supported"})
			continue
		}
		if len(cat.SelectionSet) == 0 { // checkAuth and the like
			errs = append(errs, gqlErr{Message: "fake: not implemented: " + cat.Name})
			continue
		}
		out := map[string]any{}
		for _, s := range cat.SelectionSet {
			fld, ok := s.(*ast.Field)
			if !ok {
				errs = append(errs, gqlErr{Message: "fake: fragments are not supported"})
				continue
			}
			v, rerr := f.resolve(op.Operation, cat.Name, fld.Name, fld.ArgumentMap(vars))
			if rerr != nil {
				errs = append(errs, gqlErr{Message: rerr.msg, Path: []any{cat.Alias, fld.Alias},
					Extensions: map[string]any{"code": rerr.code}})
				out[fld.Alias] = nil
				continue
			}
			out[fld.Alias] = project(v, fld.SelectionSet)
		}
		data[cat.Alias] = out
	}
	return data, errs
}

// project keeps what the selection set asks for, under its aliases.
func project(v any, sel ast.SelectionSet) any {
	if len(sel) == 0 || v == nil {
		return v
	}
	switch v := v.(type) {
	case []map[string]any:
		out := make([]any, len(v))
		for i, m := range v {
			out[i] = project(m, sel)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for _, s := range sel {
			if fld, ok := s.(*ast.Field); ok {
				out[fld.Alias] = project(v[fld.Name], fld.SelectionSet)
			}
		}
		return out
	}
	return v
}

func (f *fakeServer) resolve(opType ast.Operation, category, field string, args map[string]any) (any, *resolverError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch string(opType) + ":" + category + "." + field {
	case "query:session.listSessions":
		var domain string
		if d, ok := args["domain"].(string); ok {
			domain = strings.ToLower(d)
			if !f.domains[domain] {
				return nil, &resolverError{"domain_not_found", "Given domain does not exist"}
			}
		}
		if f.onListSessions != nil {
			hook := f.onListSessions
			f.mu.Unlock()
			hook(domain)
			f.mu.Lock()
		}
		list := []map[string]any{}
		for _, s := range f.sessions {
			j, err := jid.Parse(s.JID)
			if domain != "" && (err != nil || j.Domainpart() != domain) {
				continue
			}
			var p any
			if s.Priority != nil {
				p = *s.Priority
			}
			list = append(list, map[string]any{"user": s.JID, "priority": p, "connection": "c2s",
				"ip": "127.0.0.1", "port": 40000, "node": "mongooseim@localhost", "uptime": 42})
		}
		return list, nil
	}
	return nil, &resolverError{"not_implemented", fmt.Sprintf("fake: %s %s.%s is not implemented", opType, category, field)}
}

func (f *fakeServer) stats() (requests int, queries []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := append([]string(nil), f.queries...)
	sort.Strings(q)
	return f.requests, q
}
