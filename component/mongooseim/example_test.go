package mongooseim_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/presenced/presenced/component/mongooseim"
	"github.com/presenced/presenced/component/sessions"
	"github.com/presenced/presenced/presence"
)

// Example reconciles a tracker with the sessions of a server. A stand-in
// answers as MongooseIM's admin API would: bob is online from his phone;
// alice, whom the tracker believes online, is gone.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != "admin" || p != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"data": {"session": {"listSessions": [
			{"user": "bob@example.com/phone", "priority": 5},
			{"user": "carol@example.com/starting", "priority": null}
		]}}}`)
	}))
	defer srv.Close()

	tracker := presence.New(presence.Options{})
	tracker.Apply(presence.Update{User: "alice@example.com", Resource: "laptop", Available: true})

	// The list-online policy (no Probe), which presenced runs with
	// -reconcile-listed online; its default probes instead.
	r := &sessions.Reconciler{
		Name: "mongooseim",
		Source: &mongooseim.Client{
			Endpoint: srv.URL + "/api/graphql", // http://localhost:5551/api/graphql in production
			User:     "admin",
			Password: "secret",
			Timeout:  10 * time.Second,
		},
		Tracker: tracker,
		Domains: []string{"example.com"},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	res, err := r.Once(context.Background()) // Run(ctx) repeats it every Interval
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("sessions %d, online %d, offline %d\n", res.Sessions, res.Online, res.Offline)
	for _, jid := range []string{"alice@example.com", "bob@example.com", "carol@example.com"} {
		u, _ := tracker.Get(jid)
		fmt.Println(jid, u.State())
	}
	// Output:
	// sessions 1, online 1, offline 1
	// alice@example.com offline
	// bob@example.com available
	// carol@example.com offline
}

// ExampleREST_Contacts reads a user's roster from MongooseIM's REST admin
// API, here a stand-in answering as MongooseIM 6.1.0 does, and tells a user
// without an account from the others.
func ExampleREST_Contacts() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != "admin" || p != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/api/contacts/alice@example.com":
			io.WriteString(w, `[{"subscription":"from","jid":"presence.example.com","ask":"none"}]`)
		default:
			w.WriteHeader(http.StatusInternalServerError) // 6.1.0, for a user without an account
		}
	}))
	defer srv.Close()

	api := &mongooseim.REST{
		URL:      srv.URL + "/api", // http://mongooseim:5551/api in production
		User:     "admin",
		Password: "secret",
	}
	for _, user := range []string{"alice@example.com", "nobody@example.com"} {
		contacts, err := api.Contacts(context.Background(), user)
		switch {
		case errors.Is(err, mongooseim.ErrNoSuchUser):
			fmt.Println(user, "has no account")
		case err != nil:
			fmt.Println(err)
		default:
			for _, c := range contacts {
				fmt.Println(user, "has", c.JID, "with subscription", c.Subscription)
			}
		}
	}
	// Output:
	// alice@example.com has presence.example.com with subscription from
	// nobody@example.com has no account
}
