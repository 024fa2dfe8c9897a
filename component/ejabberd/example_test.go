package ejabberd_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/presenced/presenced/component/ejabberd"
)

// Example lists the sessions of a server. A stand-in answers with what a
// real ejabberd 23.01 answered (testdata/connected_users_info.json): alice
// has two sessions, bob one with presence and one without any yet.
func Example() {
	golden, err := os.ReadFile("testdata/connected_users_info.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); r.URL.Path != "/api/connected_users_info" || u != "presenced@localhost" || p != "apipw" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(golden)
	}))
	defer srv.Close()

	c := &ejabberd.Client{
		URL:      srv.URL + "/api", // http://127.0.0.1:5281/api in production
		User:     "presenced@localhost",
		Password: "apipw",
		Timeout:  10 * time.Second,
	}
	list, err := c.ListSessions(context.Background(), "localhost")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range list {
		fmt.Printf("%s show=%q status=%q priority=%d\n", s.User, s.Show, s.Status, s.Priority)
	}
	// Output:
	// bob@localhost show="dnd" status="busy" priority=0
	// alice@localhost show="" status="" priority=-1
	// alice@localhost show="away" status="at lunch \"quoted\" é" priority=5
}
