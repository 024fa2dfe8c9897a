package mongooseim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/presenced/presenced/presence"
)

func TestSchemaLoads(t *testing.T) {
	s, err := adminSchema()
	if err != nil {
		t.Fatal(err)
	}
	// The admin schema nests categories: Query.session.listSessions,
	// Mutation.roster.subscription.
	if s.Query.Name != "AdminQuery" || s.Mutation.Name != "AdminMutation" {
		t.Fatalf("root types %s, %s", s.Query.Name, s.Mutation.Name)
	}
	for _, q := range []string{queryListSessions, queryListAllSessions} {
		if _, errs := gqlparser.LoadQueryWithRules(s, q, rules.NewDefaultRules()); errs != nil {
			t.Errorf("%s: %v", q, errs)
		}
	}
	// And the fake rejects what the schema rejects.
	for _, q := range []string{
		`query { listSessions { user } }`,
		`query { session { listSessions(domain: "example.com") { user show } } }`,
		`mutation { roster { setMutualSubscription(userA: "a@example.com", userB: "b@example.com", action: BOTH) } }`,
	} {
		if _, errs := gqlparser.LoadQueryWithRules(s, q, rules.NewDefaultRules()); errs == nil {
			t.Errorf("the schema accepts %s", q)
		}
	}
}

func TestListSessions(t *testing.T) {
	tests := []struct {
		name     string
		domain   string
		sessions []fakeSession
		want     []presence.Session
	}{
		{
			name:   "empty",
			domain: "example.com",
			want:   []presence.Session{},
		},
		{
			name:   "split and normalize",
			domain: "example.com",
			sessions: []fakeSession{
				{"alice@example.com/phone", prio(5)},
				{"Bob@Example.COM/Laptop", prio(0)},
				{"alice@example.com/desk", prio(-1)},
			},
			want: []presence.Session{
				{User: "alice@example.com", Resource: "phone", Priority: 5},
				{User: "bob@example.com", Resource: "Laptop", Priority: 0},
				{User: "alice@example.com", Resource: "desk", Priority: -1},
			},
		},
		{
			name:   "without available presence, bad or bare addresses",
			domain: "example.com",
			sessions: []fakeSession{
				{"carol@example.com/new", nil},
				{"dave@example.com/a b\x00", prio(1)},
				{"erin@example.com", prio(1)},
				{"example.com/server", prio(1)},
				{"frank@example.com/ok", prio(1)},
			},
			want: []presence.Session{{User: "frank@example.com", Resource: "ok", Priority: 1}},
		},
		{
			name:     "priority clamped",
			domain:   "example.com",
			sessions: []fakeSession{{"a@example.com/x", prio(1000)}, {"b@example.com/y", prio(-1000)}},
			want: []presence.Session{
				{User: "a@example.com", Resource: "x", Priority: 127},
				{User: "b@example.com", Resource: "y", Priority: -128},
			},
		},
		{
			name:     "one domain only",
			domain:   "other.org",
			sessions: []fakeSession{{"a@example.com/x", prio(0)}, {"b@other.org/y", prio(0)}},
			want:     []presence.Session{{User: "b@other.org", Resource: "y"}},
		},
		{
			name:     "every domain",
			domain:   "",
			sessions: []fakeSession{{"a@example.com/x", prio(0)}, {"b@other.org/y", prio(0)}},
			want:     []presence.Session{{User: "a@example.com", Resource: "x"}, {User: "b@other.org", Resource: "y"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.setSessions(tt.sessions...)
			got, err := f.client().ListSessions(context.Background(), tt.domain)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestErrors covers what can go wrong between the client and the server;
// each error must start with "mongooseim: listSessions: " and say what
// happened.
func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(f *fakeServer, c *Client)
		domain    string
		contains  []string
		is        error
		wantError func(t *testing.T, err error)
	}{
		{
			name:     "GraphQL error",
			domain:   "nowhere.net",
			contains: []string{"Given domain does not exist (domain_not_found)"},
			wantError: func(t *testing.T, err error) {
				var e *Error
				if !errors.As(err, &e) || e.StatusCode != 200 || len(e.Errors) != 1 ||
					e.Errors[0].Code != "domain_not_found" || strings.Join(e.Errors[0].Path, ".") != "session.listSessions" {
					t.Errorf("error %#v", e)
				}
			},
		},
		{
			name:     "wrong password",
			setup:    func(f *fakeServer, c *Client) { c.Password = "guess" },
			contains: []string{"HTTP 401", "The provided credentials are wrong (wrong_credentials)"},
			is:       ErrUnauthorized,
		},
		{
			name:     "no credentials",
			setup:    func(f *fakeServer, c *Client) { c.User = "" },
			contains: []string{"HTTP 401"},
			is:       ErrUnauthorized,
		},
		{
			name: "HTTP 500 with GraphQL errors",
			setup: func(f *fakeServer, c *Client) {
				f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
					writeJSON(w, 500, errBody("internal_server_error", "GraphQL Internal Server Error"))
					return true
				}
			},
			contains: []string{"HTTP 500 Internal Server Error: GraphQL Internal Server Error (internal_server_error)"},
		},
		{
			name: "HTTP 502 from a proxy",
			setup: func(f *fakeServer, c *Client) {
				f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
					w.WriteHeader(502)
					io.WriteString(w, "<html>Bad Gateway</html>")
					return true
				}
			},
			contains: []string{"HTTP 502 Bad Gateway: \"<html>Bad Gateway</html>\""},
		},
		{
			name:     "wrong Host header",
			setup:    func(f *fakeServer, c *Client) { f.host = "localhost" },
			contains: []string{"HTTP 404", "Host header"},
		},
		{
			name:     "wrong path",
			setup:    func(f *fakeServer, c *Client) { c.Endpoint = f.srv.URL + "/graphql" },
			contains: []string{"HTTP 404"},
		},
		{
			name: "malformed JSON",
			setup: func(f *fakeServer, c *Client) {
				f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
					io.WriteString(w, `{"data": {"session": {"listSessions": [`)
					return true
				}
			},
			contains: []string{"malformed response"},
		},
		{
			name: "data of the wrong shape",
			setup: func(f *fakeServer, c *Client) {
				f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
					io.WriteString(w, `{"data": {"session": {"listSessions": [{"user": "a@example.com/x", "priority": "high"}]}}}`)
					return true
				}
			},
			contains: []string{"malformed data"},
		},
		{
			name: "neither data nor errors",
			setup: func(f *fakeServer, c *Client) {
				f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
					io.WriteString(w, `{}`)
					return true
				}
			},
			contains: []string{"without data or errors"},
		},
		{
			name: "null list without errors",
			setup: func(f *fakeServer, c *Client) {
				f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
					io.WriteString(w, `{"data": {"session": {"listSessions": null}}}`)
					return true
				}
			},
			contains: []string{"without session.listSessions"},
		},
		{
			name: "huge response",
			setup: func(f *fakeServer, c *Client) {
				c.MaxResponse = 4 << 10
				f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
					io.WriteString(w, `{"data": {"session": {"listSessions": [`)
					for i := range 10000 {
						if i > 0 {
							io.WriteString(w, ",")
						}
						io.WriteString(w, `{"user": "someone@example.com/resource", "priority": 0}`)
					}
					io.WriteString(w, `]}}}`)
					return true
				}
			},
			contains: []string{"response larger than 4096 bytes"},
		},
		{
			name: "many long errors are bounded",
			setup: func(f *fakeServer, c *Client) {
				// 10 MB of errors take seconds to encode under -race on a
				// loaded machine: more than DefaultTimeout.
				c.Timeout = time.Minute
				f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
					var errs []gqlErr
					for range 1000 {
						errs = append(errs, gqlErr{Message: strings.Repeat("é", 5000)})
					}
					writeJSON(w, 200, map[string]any{"data": nil, "errors": errs})
					return true
				}
			},
			contains: []string{"; and 97 more"},
			wantError: func(t *testing.T, err error) {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("%v is not an *Error", err)
				}
				if len(e.Errors) != maxErrors || len(e.Errors[0].Message) > maxMessage+len("…") {
					t.Errorf("errors not bounded: %d", len(e.Errors))
				}
			},
		},
		{
			name: "timeout",
			setup: func(f *fakeServer, c *Client) {
				c.Timeout = 50 * time.Millisecond
				f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
					return true
				}
			},
			contains: []string{"no answer within 50ms (Client.Timeout)"},
			is:       context.DeadlineExceeded,
		},
		{
			name:     "no endpoint",
			setup:    func(f *fakeServer, c *Client) { c.Endpoint = "" },
			contains: []string{"no Endpoint configured"},
		},
		{
			name:     "bad endpoint",
			setup:    func(f *fakeServer, c *Client) { c.Endpoint = "http://[::1" },
			contains: []string{"mongooseim: listSessions: "},
		},
		{
			name: "server gone",
			setup: func(f *fakeServer, c *Client) {
				f.srv.Close()
			},
			contains: []string{"connect"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c := f.client()
			if tt.setup != nil {
				tt.setup(f, c)
			}
			domain := tt.domain
			if domain == "" {
				domain = "example.com"
			}
			got, err := c.ListSessions(context.Background(), domain)
			if err == nil {
				t.Fatalf("no error; sessions %v", got)
			}
			if !strings.HasPrefix(err.Error(), "mongooseim: listSessions: ") {
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
			if tt.is != ErrUnauthorized && errors.Is(err, ErrUnauthorized) {
				t.Errorf("error %v is ErrUnauthorized", err)
			}
			if tt.wantError != nil {
				tt.wantError(t, err)
			}
		})
	}
}

func TestHostOverride(t *testing.T) {
	f := newFake(t)
	f.host = "localhost"
	f.setSessions(fakeSession{"a@example.com/x", prio(0)})
	c := f.client()
	c.Host = "localhost"
	got, err := c.ListSessions(context.Background(), "example.com")
	if err != nil || len(got) != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestCallerCancel(t *testing.T) {
	f := newFake(t)
	started := make(chan struct{})
	f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
		close(started)
		<-r.Context().Done()
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := f.client().ListSessions(ctx, "example.com")
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "Client.Timeout") {
		t.Fatalf("error %v", err)
	}
}

func TestNilClient(t *testing.T) {
	var c *Client
	if _, err := c.ListSessions(context.Background(), "example.com"); err == nil || !strings.HasPrefix(err.Error(), "mongooseim: ") {
		t.Errorf("ListSessions: %v", err)
	}
}
