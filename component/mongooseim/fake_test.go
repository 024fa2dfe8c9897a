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
// codes of mongoose_graphql_handler and mongoose_graphql_errors. Roster
// subscriptions follow mod_roster's state tables; an external component
// behaves like package component (answers subscribe with subscribed and
// asks back once).

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

type rosterItem struct{ sub, ask string } // lower case, as mod_roster

// fakeComponent is the component's memory of one user, as in package
// component.
type fakeComponent struct{ asked, to bool }

type fakeServer struct {
	tb  testing.TB // nil in examples
	srv *httptest.Server

	user, pass string
	host       string // if set, the Host header must match (cowboy routing)
	pathWithOp bool   // lead error paths with the operation's name

	mu       sync.Mutex
	domains  map[string]bool
	sessions []fakeSession
	accounts map[string]bool
	roster   map[[2]string]*rosterItem // {user, contact}
	// component is the external component's address; componentOnline says
	// whether it is connected, componentSilent whether it answers.
	component       string
	componentOnline bool
	componentSilent bool
	compState       map[string]*fakeComponent
	// failMutation makes roster.subscription fail for these users.
	failMutation map[string]bool
	// intercept, if set and returning true, has answered the request.
	intercept func(w http.ResponseWriter, r *http.Request, query string) bool
	// onListSessions runs while listSessions is being answered.
	onListSessions func(domain string)

	requests  int
	queries   []string
	invalid   []string
	maxAlias  int
	mutations int
}

func newFake(tb testing.TB) *fakeServer {
	f := &fakeServer{
		tb:              tb,
		user:            "admin",
		pass:            "secret",
		domains:         map[string]bool{"example.com": true, "other.org": true},
		accounts:        map[string]bool{},
		roster:          map[[2]string]*rosterItem{},
		compState:       map[string]*fakeComponent{},
		component:       "presence.example.com",
		componentOnline: true,
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
		Timeout: 5 * time.Second, SubscribeWait: 2 * time.Second}
}

func (f *fakeServer) addUsers(jids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range jids {
		f.accounts[j] = true
	}
}

func (f *fakeServer) setSessions(s ...fakeSession) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = s
}

func (f *fakeServer) item(user, contact string) rosterItem {
	f.mu.Lock()
	defer f.mu.Unlock()
	if it := f.roster[[2]string{user, contact}]; it != nil {
		return *it
	}
	return rosterItem{}
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
		f.mu.Lock()
		f.maxAlias = max(f.maxAlias, len(cat.SelectionSet))
		f.mu.Unlock()
		for _, s := range cat.SelectionSet {
			fld, ok := s.(*ast.Field)
			if !ok {
				errs = append(errs, gqlErr{Message: "fake: fragments are not supported"})
				continue
			}
			v, rerr := f.resolve(op.Operation, cat.Name, fld.Name, fld.ArgumentMap(vars))
			if rerr != nil {
				path := []any{cat.Alias, fld.Alias}
				if f.pathWithOp {
					path = append([]any{op.Name}, path...)
				}
				errs = append(errs, gqlErr{Message: rerr.msg, Path: path,
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

func jidArg(args map[string]any, name string) (jid.JID, *resolverError) {
	s, _ := args[name].(string)
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, &resolverError{"bad_jid", fmt.Sprintf("Cannot parse JID %q", s)}
	}
	return j, nil
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
	case "query:account.checkUser":
		u, err := jidArg(args, "user")
		if err != nil {
			return nil, err
		}
		exist := f.accounts[u.Bare().String()]
		msg := fmt.Sprintf("User %s does not exist", u)
		if exist {
			msg = fmt.Sprintf("User %s exists", u)
		}
		return map[string]any{"exist": exist, "message": msg}, nil
	case "query:roster.getContact":
		u, err := jidArg(args, "user")
		if err != nil {
			return nil, err
		}
		c, err := jidArg(args, "contact")
		if err != nil {
			return nil, err
		}
		if !f.domains[u.Domainpart()] {
			return nil, &resolverError{"unknown_domain", "Domain not found"}
		}
		it := f.roster[[2]string{u.Bare().String(), c.Bare().String()}]
		if it == nil {
			return nil, &resolverError{"contact_not_found", "Given contact does not exist"}
		}
		return map[string]any{"jid": c.Bare().String(), "name": "", "groups": []string{},
			"subscription": strings.ToUpper(it.sub), "ask": strings.ToUpper(it.ask)}, nil
	case "mutation:roster.subscription":
		f.mutations++
		u, err := jidArg(args, "user")
		if err != nil {
			return nil, err
		}
		c, err := jidArg(args, "contact")
		if err != nil {
			return nil, err
		}
		if !f.domains[u.Domainpart()] {
			return nil, &resolverError{"unknown_domain", "Domain not found"}
		}
		if f.failMutation[u.Bare().String()] {
			return nil, &resolverError{"internal", "Cannot subscribe a contact because: timeout"}
		}
		typ := map[string]string{"INVITE": "subscribe", "ACCEPT": "subscribed",
			"DECLINE": "unsubscribed", "CANCEL": "unsubscribe"}[args["action"].(string)]
		user, contact := u.Bare().String(), c.Bare().String()
		f.stateChangeLocked(user, contact, typ, outState)
		if contact == f.component && f.componentOnline && !f.componentSilent {
			f.componentReceivesLocked(user, typ)
		}
		return fmt.Sprintf("Subscription stanza with type %s sent successfully", typ), nil
	}
	return nil, &resolverError{"not_implemented", fmt.Sprintf("fake: %s %s.%s is not implemented", opType, category, field)}
}

// componentReceivesLocked is the component's answer to a subscription
// stanza of user, as package component answers.
func (f *fakeServer) componentReceivesLocked(user, typ string) {
	st := f.compState[user]
	if st == nil {
		st = &fakeComponent{}
		f.compState[user] = st
	}
	switch typ {
	case "subscribe":
		f.stateChangeLocked(user, f.component, "subscribed", inState)
		if !st.to && !st.asked {
			st.asked = true
			f.stateChangeLocked(user, f.component, "subscribe", inState)
		}
	case "subscribed":
		st.to, st.asked = true, false
	}
}

// stateChangeLocked applies mod_roster's process_subscription to the
// user's item for contact.
func (f *fakeServer) stateChangeLocked(user, contact, typ string, table map[string]string) {
	key := [2]string{user, contact}
	it := f.roster[key]
	cur := rosterItem{"none", "none"}
	if it != nil {
		cur = *it
	}
	next, ok := table[cur.sub+","+cur.ask+","+typ]
	if !ok || next == "" {
		return // no change
	}
	sub, ask, _ := strings.Cut(next, ",")
	if sub == "none" && ask == "none" && cur.sub == "none" && cur.ask == "in" {
		delete(f.roster, key)
		return
	}
	f.roster[key] = &rosterItem{sub, ask}
}

// inState and outState are mod_roster's in_state_change and
// out_state_change: "subscription,ask,type" -> "subscription,ask", "" for
// no change.
var inState = map[string]string{
	"none,none,subscribe": "none,in", "none,none,subscribed": "", "none,none,unsubscribe": "", "none,none,unsubscribed": "",
	"none,out,subscribe": "none,both", "none,out,subscribed": "to,none", "none,out,unsubscribe": "", "none,out,unsubscribed": "none,none",
	"none,in,subscribe": "", "none,in,subscribed": "", "none,in,unsubscribe": "none,none", "none,in,unsubscribed": "",
	"none,both,subscribe": "", "none,both,subscribed": "to,in", "none,both,unsubscribe": "none,out", "none,both,unsubscribed": "none,in",
	"to,none,subscribe": "to,in", "to,none,subscribed": "", "to,none,unsubscribe": "", "to,none,unsubscribed": "none,none",
	"to,in,subscribe": "", "to,in,subscribed": "", "to,in,unsubscribe": "to,none", "to,in,unsubscribed": "none,in",
	"from,none,subscribe": "", "from,none,subscribed": "both,none", "from,none,unsubscribe": "none,none", "from,none,unsubscribed": "",
	"from,out,subscribe": "", "from,out,subscribed": "both,none", "from,out,unsubscribe": "none,out", "from,out,unsubscribed": "from,none",
	"both,none,subscribe": "", "both,none,subscribed": "", "both,none,unsubscribe": "to,none", "both,none,unsubscribed": "from,none",
}

var outState = map[string]string{
	"none,none,subscribe": "none,out", "none,none,subscribed": "", "none,none,unsubscribe": "", "none,none,unsubscribed": "",
	"none,out,subscribe": "none,out", "none,out,subscribed": "", "none,out,unsubscribe": "none,none", "none,out,unsubscribed": "",
	"none,in,subscribe": "none,both", "none,in,subscribed": "from,none", "none,in,unsubscribe": "", "none,in,unsubscribed": "none,none",
	"none,both,subscribe": "", "none,both,subscribed": "from,out", "none,both,unsubscribe": "none,in", "none,both,unsubscribed": "none,out",
	"to,none,subscribe": "", "to,none,subscribed": "both,none", "to,none,unsubscribe": "none,none", "to,none,unsubscribed": "",
	"to,in,subscribe": "", "to,in,subscribed": "both,none", "to,in,unsubscribe": "none,in", "to,in,unsubscribed": "to,none",
	"from,none,subscribe": "from,out", "from,none,subscribed": "", "from,none,unsubscribe": "", "from,none,unsubscribed": "none,none",
	"from,out,subscribe": "", "from,out,subscribed": "", "from,out,unsubscribe": "from,none", "from,out,unsubscribed": "none,out",
	"both,none,subscribe": "", "both,none,subscribed": "", "both,none,unsubscribe": "from,none", "both,none,unsubscribed": "to,none",
}

func (f *fakeServer) stats() (requests, mutations, maxAlias int, queries []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := append([]string(nil), f.queries...)
	sort.Strings(q)
	return f.requests, f.mutations, f.maxAlias, q
}
