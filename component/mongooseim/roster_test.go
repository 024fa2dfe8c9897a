package mongooseim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const comp = "presence.example.com"

func TestSubscribe(t *testing.T) {
	tests := []struct {
		name          string
		before        *rosterItem // the user's item for the component
		silent        bool        // the component does not answer
		wantMutations int
	}{
		// INVITE; the component answers subscribed and asks back; ACCEPT.
		{name: "new contact", wantMutations: 2},
		{name: "already both", before: &rosterItem{"both", "none"}, wantMutations: 0},
		// The component asked earlier: ACCEPT (from), then INVITE (both).
		{name: "component asked first", before: &rosterItem{"none", "in"}, silent: false, wantMutations: 2},
		// The user receives the component's presence only: INVITE makes
		// the component ask back, ACCEPT.
		{name: "to only", before: &rosterItem{"to", "none"}, wantMutations: 2},
		// The component gets the user's presence already: INVITE (both).
		{name: "from only", before: &rosterItem{"from", "none"}, wantMutations: 1},
		// An earlier subscribe went unanswered: INVITE again, ACCEPT.
		{name: "pending out", before: &rosterItem{"none", "out"}, wantMutations: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.addUsers("alice@example.com")
			if tt.before != nil {
				f.roster[[2]string{"alice@example.com", comp}] = tt.before
			}
			f.componentSilent = tt.silent
			if err := f.client().Subscribe(context.Background(), "alice@example.com", comp); err != nil {
				t.Fatal(err)
			}
			if it := f.item("alice@example.com", comp); it != (rosterItem{"both", "none"}) {
				t.Errorf("roster item %+v, want both", it)
			}
			if _, m, _, _ := f.stats(); m != tt.wantMutations {
				t.Errorf("%d mutations, want %d", m, tt.wantMutations)
			}
		})
	}
}

func TestSubscribeFailures(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fakeServer, c *Client)
		users    []string
		comp     string
		contains []string
		ok       []string // users that must end subscribed
	}{
		{
			name:     "component offline",
			setup:    func(f *fakeServer, c *Client) { f.componentOnline = false; c.SubscribeWait = 200 * time.Millisecond },
			users:    []string{"alice@example.com"},
			contains: []string{"mongooseim: subscribe alice@example.com: no mutual subscription with presence.example.com within 200ms", "subscription NONE, ask OUT", "is the component connected?"},
		},
		{
			name:     "unknown user among known ones",
			users:    []string{"alice@example.com", "nobody@example.com", "bob@example.com"},
			contains: []string{"subscribe nobody@example.com: no such user"},
			ok:       []string{"alice@example.com", "bob@example.com"},
		},
		{
			name:     "unknown domain",
			users:    []string{"alice@example.com", "zed@nowhere.net"},
			contains: []string{"mongooseim: subscribe zed@nowhere.net: getContact: Domain not found (unknown_domain)"},
			ok:       []string{"alice@example.com"},
		},
		{
			name:     "bad user addresses",
			users:    []string{"example.com", "alice@example.com/phone", "@@", "alice@example.com"},
			contains: []string{`subscribe "example.com": not a bare user JID`, `"alice@example.com/phone"`, `"@@"`},
			ok:       []string{"alice@example.com"},
		},
		{
			name:     "bad component address",
			users:    []string{"alice@example.com"},
			comp:     "presence.example.com/res",
			contains: []string{"invalid component address"},
		},
		{
			name: "errors with the operation's name in their path",
			setup: func(f *fakeServer, c *Client) {
				f.pathWithOp = true
			},
			users:    []string{"alice@example.com", "zed@nowhere.net"},
			contains: []string{"Domain not found (unknown_domain)"},
			ok:       []string{"alice@example.com"},
		},
		{
			name: "a mutation fails for one user",
			setup: func(f *fakeServer, c *Client) {
				f.pathWithOp = true
				f.failMutation = map[string]bool{"bob@example.com": true}
			},
			users:    []string{"alice@example.com", "bob@example.com"},
			contains: []string{"mongooseim: subscribe bob@example.com: subscription: Cannot subscribe a contact because: timeout (internal)"},
			ok:       []string{"alice@example.com"},
		},
		{
			name: "server error fails the batch",
			setup: func(f *fakeServer, c *Client) {
				f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
					writeJSON(w, 500, errBody("internal_server_error", "GraphQL Internal Server Error"))
					return true
				}
			},
			users:    []string{"alice@example.com", "bob@example.com"},
			contains: []string{"mongooseim: subscribe alice@example.com: getContact: HTTP 500", "mongooseim: subscribe bob@example.com: getContact: HTTP 500"},
		},
		{
			name: "unattributed GraphQL error fails the batch",
			setup: func(f *fakeServer, c *Client) {
				f.intercept = func(w http.ResponseWriter, r *http.Request, q string) bool {
					writeJSON(w, 200, map[string]any{"data": nil, "errors": []gqlErr{{Message: "boom", Extensions: map[string]any{"code": "resolver_crash"}}}})
					return true
				}
			},
			users:    []string{"alice@example.com"},
			contains: []string{"mongooseim: subscribe alice@example.com: getContact: boom (resolver_crash)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.addUsers("alice@example.com", "bob@example.com", "zed@nowhere.net")
			c := f.client()
			if tt.setup != nil {
				tt.setup(f, c)
			}
			component := comp
			if tt.comp != "" {
				component = tt.comp
			}
			err := c.SubscribeAll(context.Background(), tt.users, component)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if tt.comp == "" {
				var ue *UserError
				if !errors.As(err, &ue) || ue.User == "" {
					t.Errorf("error %v is no *UserError", err)
				}
			}
			for _, u := range tt.ok {
				if it := f.item(u, comp); it != (rosterItem{"both", "none"}) {
					t.Errorf("%s: roster item %+v, want both", u, it)
				}
				if strings.Contains(err.Error(), "subscribe "+u+":") {
					t.Errorf("error names %s: %v", u, err)
				}
			}
		})
	}
}

func TestSubscribeAllBatches(t *testing.T) {
	f := newFake(t)
	var users []string
	for i := range 250 {
		u := fmt.Sprintf("user%d@example.com", i)
		users = append(users, u)
		f.addUsers(u)
	}
	f.roster[[2]string{"user7@example.com", comp}] = &rosterItem{"both", "none"}
	c := f.client()
	c.BatchSize = 100
	users = append(users, "User3@Example.com") // a duplicate, differently written
	if err := c.SubscribeAll(context.Background(), users, comp); err != nil {
		t.Fatal(err)
	}
	for _, u := range users[:250] {
		if it := f.item(u, comp); it != (rosterItem{"both", "none"}) {
			t.Fatalf("%s: roster item %+v", u, it)
		}
	}
	requests, mutations, maxAlias, _ := f.stats()
	if maxAlias > 100 {
		t.Errorf("%d fields in one request, BatchSize 100", maxAlias)
	}
	if mutations != 2*249 {
		t.Errorf("%d mutations, want %d", mutations, 2*249)
	}
	// Per batch: state, invite, state, accept, state.
	if requests > 3*5 {
		t.Errorf("%d requests for 3 batches", requests)
	}
}

func TestSubscribeCancel(t *testing.T) {
	f := newFake(t)
	f.addUsers("alice@example.com")
	f.componentOnline = false
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := f.client().Subscribe(ctx, "alice@example.com", comp)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v", err)
	}
	if time.Since(began) > time.Second {
		t.Errorf("took %v after the context ended", time.Since(began))
	}
}
