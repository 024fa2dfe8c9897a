package mongooseim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// fakeREST stands in for MongooseIM 6.1.0's REST admin API
// (mongoose_admin_api, the contacts routes), answering as measured on the
// real server: Basic authentication (401 with an empty body), cowboy's 404
// with an empty body for a path without a route, 404 "Domain not found"
// for a domain it does not host, HTTP 500 with an empty body for the GET
// of a user without an account (the handler crashes on user_not_exist),
// 204 for a PUT of such a user (it changes nothing), 400 "Invalid action",
// 415 without a JSON Content-Type. A PUT subscribed applies mod_roster's
// out_state_change to the user's item. Its roster is also the table that
// fakeRoster, the provisioner's rosterStore in these tests, writes.
type fakeREST struct {
	srv        *httptest.Server
	user, pass string

	mu       sync.Mutex
	domains  map[string]bool
	accounts map[string]bool
	roster   map[[2]string]*rosterItem // {user, contact}, mod_roster's words

	// failPut answers a PUT of these users with this status and message.
	failPut map[string]int
	// hangGet makes the GETs of these users wait for the request's end.
	hangGet map[string]bool
	// delay is added to every request.
	delay time.Duration

	requests    map[string]int // by method
	inFlight    int
	maxInFlight int
	conns       map[string]bool // remote addresses seen
}

type rosterItem struct{ sub, ask string }

func newFakeREST(t testing.TB) *fakeREST {
	f := &fakeREST{
		user: "admin", pass: "secret",
		domains:  map[string]bool{"example.com": true},
		accounts: map[string]bool{},
		roster:   map[[2]string]*rosterItem{},
		failPut:  map[string]int{},
		hangGet:  map[string]bool{},
		requests: map[string]int{},
		conns:    map[string]bool{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeREST) rest() REST {
	return REST{URL: f.srv.URL + "/api", User: "admin", Password: "secret", Timeout: 5 * time.Second}
}

func (f *fakeREST) addUsers(jids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range jids {
		f.accounts[j] = true
	}
}

func (f *fakeREST) setItem(user, contact, sub, ask string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roster[[2]string{user, contact}] = &rosterItem{sub, ask}
}

func (f *fakeREST) item(user, contact string) (rosterItem, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	it := f.roster[[2]string{user, contact}]
	if it == nil {
		return rosterItem{}, false
	}
	return *it, true
}

func (f *fakeREST) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[method]
}

func writeRESTError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(msg) // jiffy:encode(BinMessage)
}

func (f *fakeREST) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests[r.Method]++
	f.conns[r.RemoteAddr] = true
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	delay := f.delay
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if delay > 0 {
		time.Sleep(delay)
	}
	// cowboy_router: /api/contacts/:user/[:contact], segments decoded.
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/contacts/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) > 2 || parts[0] == "" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	for i := range parts {
		if parts[i], ok = unescape(parts[i]); !ok {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
		w.Header().Set("WWW-Authenticate", `Basic realm="mongooseim"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	user, err := jid.Parse(parts[0])
	if err != nil {
		writeRESTError(w, http.StatusBadRequest, "Invalid user JID")
		return
	}
	bare := user.Bare().String()
	switch r.Method {
	case http.MethodGet:
		f.mu.Lock()
		hang := f.hangGet[bare]
		f.mu.Unlock()
		if hang {
			<-r.Context().Done()
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.domains[user.Domainpart()] {
			writeRESTError(w, http.StatusNotFound, "Domain not found")
			return
		}
		if !f.accounts[bare] {
			w.WriteHeader(http.StatusInternalServerError) // the crash
			return
		}
		list := []map[string]string{}
		for k, it := range f.roster {
			if k[0] == bare {
				list = append(list, map[string]string{"jid": k[1], "subscription": it.sub, "ask": it.ask})
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i]["jid"] < list[j]["jid"] })
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	case http.MethodPut:
		if len(parts) != 2 {
			writeRESTError(w, http.StatusBadRequest, "Missing contact JID")
			return
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		var body struct {
			Action string `json:"action"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeRESTError(w, http.StatusBadRequest, "Invalid request body")
			return
		}
		contact, err := jid.Parse(parts[1])
		if err != nil {
			writeRESTError(w, http.StatusBadRequest, "Invalid contact JID")
			return
		}
		if body.Action != "subscribed" && body.Action != "subscribe" {
			writeRESTError(w, http.StatusBadRequest, "Invalid action")
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if st := f.failPut[bare]; st != 0 {
			writeRESTError(w, st, "Cannot subscribe: timeout")
			return
		}
		if !f.domains[user.Domainpart()] {
			writeRESTError(w, http.StatusNotFound, "Domain not found")
			return
		}
		key := [2]string{bare, contact.Bare().String()}
		if it := f.roster[key]; it != nil && f.accounts[bare] {
			if next, ok := outState[it.sub+","+it.ask+","+body.Action]; ok && next != "" {
				it.sub, it.ask, _ = strings.Cut(next, ",")
			}
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func unescape(s string) (string, bool) {
	u, err := url.PathUnescape(s)
	return u, err == nil
}

// outState is the part of mod_roster's out_state_change the provisioner
// drives: "subscription,ask,type" -> "subscription,ask", "" for no
// change (as in MongooseIM's mod_roster.erl).
var outState = map[string]string{
	"none,none,subscribed": "", "none,out,subscribed": "", "none,in,subscribed": "from,none", "none,both,subscribed": "from,out",
	"to,none,subscribed": "", "to,in,subscribed": "both,none",
	"from,none,subscribed": "", "from,out,subscribed": "",
	"both,none,subscribed": "",
	"none,none,subscribe":  "none,out", "none,in,subscribe": "none,both", "from,none,subscribe": "from,out",
}

// fakeRoster is the provisioner's rosterStore on fakeREST's roster,
// following sqlPending and sqlRestore.
type fakeRoster struct {
	f         *fakeREST
	component string
	// failAfter, if > 0, fails pending after that many keys.
	failAfter   int
	failRestore bool
	// skip: pending writes nothing for these users (as if MongooseIM
	// keyed them otherwise).
	skip map[string]bool

	mu       sync.Mutex
	calls    int // statements
	restored []string
	closed   bool
}

var (
	fromLetter = map[string]string{"N": "none", "T": "to", "F": "from", "B": "both"}
	askFrom    = map[string]string{"N": "none", "I": "in", "O": "out", "B": "both", "S": "subscribe", "U": "unsubscribe"}
)

func (r *fakeRoster) pending(ctx context.Context, keys []rosterKey) (int, error) {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	for n, k := range keys {
		if r.failAfter > 0 && n == r.failAfter {
			return n, errors.New("mongooseim: writing the pending roster items: connection reset")
		}
		if r.skip[k.String()] {
			continue
		}
		key := [2]string{k.String(), r.component}
		it := r.f.roster[key]
		switch {
		case it == nil:
			r.f.roster[key] = &rosterItem{"none", "in"}
		case it.sub == "from":
			it.sub, it.ask = "none", "in"
		case it.sub == "both":
			it.sub, it.ask = "to", "in"
		default:
			it.ask = "in"
		}
	}
	return len(keys), nil
}

func (r *fakeRoster) restore(ctx context.Context, rows []restoreRow) error {
	r.mu.Lock()
	r.calls++
	fail := r.failRestore
	r.mu.Unlock()
	if fail {
		return errors.New("mongooseim: restoring the roster items: connection reset")
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	for _, row := range rows {
		key := [2]string{row.key.String(), r.component}
		it := r.f.roster[key]
		if it == nil || it.ask != "in" {
			continue
		}
		r.mu.Lock()
		r.restored = append(r.restored, row.key.String())
		r.mu.Unlock()
		if !row.existed {
			if it.sub == "none" {
				delete(r.f.roster, key)
			}
			continue
		}
		pendingSub := map[string]string{"F": "none", "B": "to"}[row.subscription]
		if pendingSub == "" {
			pendingSub = fromLetter[row.subscription]
		}
		if it.sub == pendingSub {
			it.sub, it.ask = fromLetter[row.subscription], askFrom[row.ask]
		}
	}
	return nil
}

func (r *fakeRoster) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
}
