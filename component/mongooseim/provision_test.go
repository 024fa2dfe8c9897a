package mongooseim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const comp = "presence.example.com"

// newProvisioner returns a Provisioner on f, with its rosterStore on f's
// roster.
func newProvisioner(f *fakeREST, roster *fakeRoster) *Provisioner {
	roster.f, roster.component = f, comp
	return &Provisioner{
		REST:      f.rest(),
		Component: comp,
		openRoster: func(context.Context) (rosterStore, error) {
			return roster, nil
		},
	}
}

// result renders outcomes as "user: subscription" or "user: error".
func result(outs []Outcome) []string {
	var out []string
	for _, o := range outs {
		if o.Err != nil {
			out = append(out, o.User+": "+o.Err.Error())
		} else {
			out = append(out, o.User+": "+o.Subscription)
		}
	}
	return out
}

func TestProvision(t *testing.T) {
	type item = rosterItem
	for _, tt := range []struct {
		name    string
		items   map[string]item // the component's item before
		setup   func(f *fakeREST, r *fakeRoster)
		users   []string
		want    []string        // outcomes: the subscription, or words of the error
		after   map[string]item // the component's item after; {"", ""}: none
		wantErr string          // words of Provision's error
	}{
		{
			name:  "new and existing items",
			items: map[string]item{"carol@example.com": {"to", "none"}, "dave@example.com": {"from", "none"}, "erin@example.com": {"both", "none"}, "frank@example.com": {"none", "out"}},
			users: []string{"alice@example.com", "carol@example.com", "dave@example.com", "erin@example.com", "frank@example.com"},
			want:  []string{"alice@example.com: from", "carol@example.com: both", "dave@example.com: from", "erin@example.com: both", "frank@example.com: from"},
			after: map[string]item{"alice@example.com": {"from", "none"}, "carol@example.com": {"both", "none"}, "dave@example.com": {"from", "none"}, "erin@example.com": {"both", "none"}},
		},
		{
			name:  "normalized, duplicates once, invalid ones named",
			users: []string{"Alice@Example.COM", "alice@example.com", "alice@example.com/phone", "example.com", "", "bob@example.com"},
			want: []string{"alice@example.com: from", "alice@example.com/phone: mongooseim: provision alice@example.com/phone: not a bare user JID",
				"example.com: mongooseim: provision example.com: not a bare user JID", ": mongooseim: provision : not a bare user JID", "bob@example.com: from"},
		},
		{
			name:  "a user without an account, a domain not hosted",
			users: []string{"alice@example.com", "nobody@example.com", "alice@nowhere.net"},
			want: []string{"alice@example.com: from",
				"nobody@example.com: mongooseim: provision nobody@example.com: GET /contacts/nobody@example.com: no such user (HTTP 500 with an empty body",
				"alice@nowhere.net: mongooseim: provision alice@nowhere.net: GET /contacts/alice@nowhere.net: HTTP 404 Not Found: Domain not found"},
			after: map[string]item{"nobody@example.com": {}, "alice@nowhere.net": {}}, // nothing written for them
		},
		{
			name:  "an approval fails: items put back",
			items: map[string]item{"dave@example.com": {"from", "none"}},
			setup: func(f *fakeREST, r *fakeRoster) {
				f.failPut["bob@example.com"], f.failPut["dave@example.com"] = 500, 500
			},
			users: []string{"alice@example.com", "bob@example.com", "dave@example.com"},
			want: []string{"alice@example.com: from",
				"bob@example.com: mongooseim: provision bob@example.com: PUT /contacts/bob@example.com/presence.example.com subscribed: HTTP 500 Internal Server Error: Cannot subscribe: timeout; its roster item, if still pending, is back as it was",
				"dave@example.com: mongooseim: provision dave@example.com: PUT /contacts/dave@example.com/presence.example.com subscribed: HTTP 500 Internal Server Error: Cannot subscribe: timeout; its roster item, if still pending, is back as it was"},
			after: map[string]item{"bob@example.com": {}, "dave@example.com": {"from", "none"}},
		},
		{
			name: "an approval and its undo fail",
			setup: func(f *fakeREST, r *fakeRoster) {
				f.failPut["bob@example.com"] = 500
				r.failRestore = true
			},
			users: []string{"bob@example.com"},
			want:  []string{"bob@example.com: ", "Cannot subscribe: timeout; its roster item may be left pending (mongooseim: restoring the roster items: connection reset): run provision again"},
		},
		{
			name:  "the approval changes nothing: verification fails",
			setup: func(f *fakeREST, r *fakeRoster) { r.skip = map[string]bool{"bob@example.com": true} },
			users: []string{"alice@example.com", "bob@example.com"},
			want:  []string{"alice@example.com: from", "bob@example.com: mongooseim: provision bob@example.com: after the approval, presence.example.com is not on the roster; its roster item, if still pending, is back as it was"},
		},
		{
			name:  "one user's roster does not come: the others go on",
			setup: func(f *fakeREST, r *fakeRoster) { f.hangGet["bob@example.com"] = true },
			users: []string{"alice@example.com", "bob@example.com", "carol@example.com"},
			want:  []string{"alice@example.com: from", "bob@example.com: ", "no answer within 200ms (REST.Timeout)", "carol@example.com: from"},
			after: map[string]item{"bob@example.com": {}},
		},
		{
			name:    "wrong credentials: nothing written",
			setup:   func(f *fakeREST, r *fakeRoster) { f.pass = "changed" },
			users:   []string{"alice@example.com", "bob@example.com"},
			want:    []string{"alice@example.com: ", "not done: GET /contacts/", "HTTP 401", "bob@example.com: ", "not done: GET"},
			after:   map[string]item{"alice@example.com": {}, "bob@example.com": {}},
			wantErr: "HTTP 401",
		},
		{
			name:    "the database fails after the first user",
			setup:   func(f *fakeREST, r *fakeRoster) { r.failAfter = 1 },
			users:   []string{"alice@example.com", "bob@example.com", "carol@example.com"},
			want:    []string{"alice@example.com: from", "bob@example.com: mongooseim: provision bob@example.com: not done: writing the pending roster items: connection reset", "carol@example.com: ", "not done"},
			after:   map[string]item{"bob@example.com": {}, "carol@example.com": {}},
			wantErr: "connection reset",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeREST(t)
			for _, u := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
				f.addUsers(u + "@example.com")
			}
			for u, it := range tt.items {
				f.setItem(u, comp, it.sub, it.ask)
			}
			roster := &fakeRoster{}
			p := newProvisioner(f, roster)
			p.REST.Timeout = 200 * time.Millisecond
			if tt.setup != nil {
				tt.setup(f, roster)
			}
			outs, err := p.Provision(context.Background(), tt.users)
			got := strings.Join(result(outs), "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("outcomes\n%s\ndo not contain %q", got, w)
				}
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one with %q", err, tt.wantErr)
			}
			for _, o := range outs {
				if o.Err != nil {
					var ue *UserError
					if !errors.As(o.Err, &ue) || ue.User != o.User || !strings.HasPrefix(o.Err.Error(), "mongooseim: provision "+o.User+": ") {
						t.Errorf("%s: error %v is not its UserError", o.User, o.Err)
					}
					if err != nil && strings.Contains(o.Err.Error(), "not done") && !errors.Is(o.Err, err) {
						t.Errorf("%s: error %v does not wrap the run's %v", o.User, o.Err, err)
					}
				} else if o.Subscription != "from" && o.Subscription != "both" {
					t.Errorf("%s: no error, subscription %q", o.User, o.Subscription)
				}
			}
			for u, want := range tt.after {
				if got, _ := f.item(u, comp); got != want {
					t.Errorf("%s: the component's item is %v, want %v", u, got, want)
				}
			}
			if !roster.closed && roster.calls > 0 {
				t.Error("the roster store was not closed")
			}
			// No request is retried: at most a GET, a PUT and a GET per user.
			if n := f.count("GET") + f.count("PUT"); n > 3*len(tt.users) {
				t.Errorf("%d requests for %d users", n, len(tt.users))
			}
		})
	}
}

// TestProvisionTwice: a second run changes nothing and succeeds.
func TestProvisionTwice(t *testing.T) {
	f := newFakeREST(t)
	f.addUsers("alice@example.com", "bob@example.com")
	f.setItem("bob@example.com", comp, "to", "none")
	p := newProvisioner(f, &fakeRoster{})
	for round := 1; round <= 2; round++ {
		outs, err := p.Provision(context.Background(), []string{"alice@example.com", "bob@example.com"})
		if got := strings.Join(result(outs), ", "); err != nil || got != "alice@example.com: from, bob@example.com: both" {
			t.Fatalf("round %d: %s; %v", round, got, err)
		}
	}
}

// TestProvisionBounded: many users go in a few statements and at most
// Concurrency requests at a time, on as many keep-alive connections.
func TestProvisionBounded(t *testing.T) {
	f := newFakeREST(t)
	f.delay = 2 * time.Millisecond
	var users []string
	for i := range 200 {
		u := fmt.Sprintf("user%d@example.com", i)
		users = append(users, u)
		f.addUsers(u)
	}
	roster := &fakeRoster{}
	p := newProvisioner(f, roster)
	p.Concurrency = 4
	outs, err := p.Provision(context.Background(), users)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Err != nil || o.Subscription != "from" {
			t.Fatalf("%s: %s, %v", o.User, o.Subscription, o.Err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxInFlight > 4 || f.maxInFlight < 2 {
		t.Errorf("%d requests in flight at most, want 2 to 4", f.maxInFlight)
	}
	if len(f.conns) > 4 {
		t.Errorf("%d connections for 600 requests, 4 at a time: not kept alive", len(f.conns))
	}
	if roster.calls != 1 {
		t.Errorf("%d statements", roster.calls)
	}
}

// TestProvisionCancel: a run cancelled while approving stops starting
// requests, and puts back the items it had written for the users it did
// not finish.
func TestProvisionCancel(t *testing.T) {
	f := newFakeREST(t)
	var users []string
	for i := range 50 {
		u := fmt.Sprintf("user%d@example.com", i)
		users = append(users, u)
		f.addUsers(u)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	roster := &fakeRoster{}
	p := newProvisioner(f, roster)
	p.Concurrency = 2
	p.openRoster = func(context.Context) (rosterStore, error) {
		f.mu.Lock()
		f.delay = 20 * time.Millisecond
		f.mu.Unlock()
		time.AfterFunc(50*time.Millisecond, cancel)
		return roster, nil
	}
	roster.f, roster.component = f, comp
	outs, err := p.Provision(ctx, users)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
	done, undone := 0, 0
	for _, o := range outs {
		it, _ := f.item(o.User, comp)
		switch {
		case o.Err == nil:
			done++
			if it.sub != "from" {
				t.Errorf("%s provisioned, item %v", o.User, it)
			}
		default:
			undone++
			// Undone, or approved before the cancellation reached the check
			// (the PUT took effect, its GET was cancelled): never left pending.
			if it != (rosterItem{}) && it != (rosterItem{sub: "from", ask: "none"}) {
				t.Errorf("%s: %v; item left %v", o.User, o.Err, it)
			}
		}
	}
	if undone == 0 || f.count("PUT") >= len(users) {
		t.Errorf("%d done, %d not, %d PUTs: the run did not stop", done, undone, f.count("PUT"))
	}
}

func TestProvisionSettings(t *testing.T) {
	f := newFakeREST(t)
	for _, tt := range []struct {
		name string
		set  func(p *Provisioner)
		want string
	}{
		{"no REST URL", func(p *Provisioner) { p.REST.URL = "" }, "no REST URL configured"},
		{"no database", func(p *Provisioner) { p.openRoster = nil }, "no database URL configured"},
		{"a user's JID as the component", func(p *Provisioner) { p.Component = "presenced@example.com" }, "is not a bare domain"},
		{"no component", func(p *Provisioner) { p.Component = "" }, "is not a bare domain"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvisioner(f, &fakeRoster{})
			tt.set(p)
			outs, err := p.Provision(context.Background(), []string{"alice@example.com"})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "mongooseim: provision: ") || outs != nil {
				t.Errorf("%v, %v; want an error with %q", outs, err, tt.want)
			}
		})
	}
	var p *Provisioner
	if _, err := p.Provision(context.Background(), nil); err == nil {
		t.Error("nil Provisioner: no error")
	}
	// The database is not reached when nobody is left to write for.
	p = &Provisioner{REST: f.rest(), Component: comp, Database: "postgres://127.0.0.1:1/none?connect_timeout=1"}
	outs, err := p.Provision(context.Background(), []string{"nobody@example.com"})
	if err != nil || len(outs) != 1 || !errors.Is(outs[0].Err, ErrNoSuchUser) {
		t.Errorf("%v, %v", result(outs), err)
	}
	// A database that cannot be reached fails the run, naming it.
	f.addUsers("alice@example.com")
	outs, err = p.Provision(context.Background(), []string{"alice@example.com"})
	if err == nil || !strings.Contains(err.Error(), "mongooseim: connecting to the database 127.0.0.1:1/none") || !errors.Is(outs[0].Err, err) {
		t.Errorf("%v, %v", result(outs), err)
	}
	if _, ok := f.item("alice@example.com", comp); ok {
		t.Error("an item was written")
	}
}
