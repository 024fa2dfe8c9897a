package mongooseim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRESTContacts(t *testing.T) {
	f := newFakeREST(t)
	f.addUsers("alice@example.com", "jörg@example.com")
	f.setItem("alice@example.com", "presence.example.com", "from", "none")
	f.setItem("alice@example.com", "bob@example.com", "both", "none")
	f.setItem("jörg@example.com", "presence.example.com", "none", "in")
	for _, tt := range []struct {
		user string
		url  string // instead of the fake's
		want []Contact
	}{
		{user: "alice@example.com", want: []Contact{
			{JID: "bob@example.com", Subscription: "both", Ask: "none"},
			{JID: "presence.example.com", Subscription: "from", Ask: "none"},
		}},
		{user: "jörg@example.com", want: []Contact{{JID: "presence.example.com", Subscription: "none", Ask: "in"}}},
		{user: "alice@example.com", url: f.srv.URL + "/api/", want: []Contact{
			{JID: "bob@example.com", Subscription: "both", Ask: "none"},
			{JID: "presence.example.com", Subscription: "from", Ask: "none"},
		}},
	} {
		t.Run(tt.user, func(t *testing.T) {
			r := f.rest()
			if tt.url != "" {
				r.URL = tt.url
			}
			got, err := r.Contacts(context.Background(), tt.user)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestRESTErrors covers what can go wrong between the client and the
// REST API; every error starts with "mongooseim: " and the request, and
// says what happened.
func TestRESTErrors(t *testing.T) {
	odd := func(status int, body string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	for _, tt := range []struct {
		name     string
		setup    func(f *fakeREST, r *REST)
		user     string
		put      bool // Subscribed instead of Contacts
		contains []string
		is       error
	}{
		{name: "no such user", user: "nobody@example.com",
			contains: []string{"GET /contacts/nobody@example.com: no such user (HTTP 500 with an empty body"}, is: ErrNoSuchUser},
		{name: "unknown domain", user: "alice@nowhere.net",
			contains: []string{"HTTP 404 Not Found: Domain not found"}},
		{name: "unknown domain, put", user: "alice@nowhere.net", put: true,
			contains: []string{"PUT /contacts/alice@nowhere.net/presence.example.com subscribed: HTTP 404 Not Found: Domain not found"}},
		{name: "put fails", user: "alice@example.com", put: true,
			setup:    func(f *fakeREST, r *REST) { f.failPut["alice@example.com"] = 500 },
			contains: []string{"HTTP 500 Internal Server Error: Cannot subscribe: timeout"}},
		{name: "wrong password", setup: func(f *fakeREST, r *REST) { r.Password = "guess" },
			contains: []string{"HTTP 401", "check the handler's username and password"}, is: ErrUnauthorized},
		{name: "no credentials", setup: func(f *fakeREST, r *REST) { r.User = "" },
			contains: []string{"HTTP 401"}, is: ErrUnauthorized},
		{name: "wrong path", setup: func(f *fakeREST, r *REST) { r.URL = f.srv.URL + "/rest" },
			contains: []string{"HTTP 404", "no such route"}},
		{name: "proxy error", setup: func(f *fakeREST, r *REST) { r.URL = odd(502, "<html>Bad Gateway</html>").URL },
			contains: []string{`HTTP 502 Bad Gateway: "<html>Bad Gateway</html>"`}},
		{name: "malformed answer", setup: func(f *fakeREST, r *REST) { r.URL = odd(200, `[{"jid": 1`).URL },
			contains: []string{"malformed answer"}},
		{name: "huge answer", setup: func(f *fakeREST, r *REST) {
			r.URL, r.MaxResponse = odd(200, "["+strings.Repeat(`{"jid":"a@b","subscription":"none","ask":"none"},`, 1000)+"{}]").URL, 1024
		}, contains: []string{"answer larger than 1024 bytes"}},
		{name: "timeout", user: "slow@example.com", setup: func(f *fakeREST, r *REST) {
			r.Timeout = 50 * time.Millisecond
			f.hangGet["slow@example.com"] = true
		}, contains: []string{"no answer within 50ms (REST.Timeout)"}, is: context.DeadlineExceeded},
		{name: "server gone", setup: func(f *fakeREST, r *REST) { f.srv.Close() }, contains: []string{"connect"}},
		{name: "no URL", setup: func(f *fakeREST, r *REST) { r.URL = "" }, contains: []string{"no URL configured"}},
		{name: "bad URL", setup: func(f *fakeREST, r *REST) { r.URL = "http://[::1" }, contains: []string{"mongooseim: GET /contacts/"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeREST(t)
			f.addUsers("alice@example.com")
			r := f.rest()
			if tt.setup != nil {
				tt.setup(f, &r)
			}
			user := tt.user
			if user == "" {
				user = "alice@example.com"
			}
			var err error
			if tt.put {
				err = r.Subscribed(context.Background(), user, "presence.example.com")
			} else {
				var got []Contact
				got, err = r.Contacts(context.Background(), user)
				if err == nil {
					t.Fatalf("no error; contacts %v", got)
				}
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "mongooseim: ") {
				t.Errorf("error without prefix: %v", err)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, other := range []error{ErrUnauthorized, ErrNoSuchUser} {
				if tt.is != other && errors.Is(err, other) {
					t.Errorf("error %v is %v", err, other)
				}
			}
		})
	}
}

func TestRESTSubscribed(t *testing.T) {
	f := newFakeREST(t)
	f.addUsers("alice@example.com", "bob@example.com")
	f.setItem("alice@example.com", "presence.example.com", "none", "in")
	f.setItem("bob@example.com", "presence.example.com", "to", "in")
	r := f.rest()
	for user, want := range map[string]rosterItem{
		"alice@example.com": {"from", "none"},
		"bob@example.com":   {"both", "none"},
	} {
		if err := r.Subscribed(context.Background(), user, "presence.example.com"); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.item(user, "presence.example.com"); got != want {
			t.Errorf("%s: item %v, want %v", user, got, want)
		}
	}
	// Without a pending request, MongooseIM answers 204 and changes nothing.
	if err := r.Subscribed(context.Background(), "nobody@example.com", "presence.example.com"); err != nil {
		t.Errorf("a user without an account: %v", err)
	}
	if _, ok := f.item("nobody@example.com", "presence.example.com"); ok {
		t.Error("an item for a user without an account")
	}
}

func TestRESTNil(t *testing.T) {
	var r *REST
	if _, err := r.Contacts(context.Background(), "a@example.com"); err == nil || !strings.HasPrefix(err.Error(), "mongooseim: ") {
		t.Errorf("Contacts: %v", err)
	}
	if err := r.Subscribed(context.Background(), "a@example.com", "presence.example.com"); err == nil {
		t.Error("Subscribed: no error")
	}
}
