package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/presenced/presenced/internal/app"
)

// A whole presenced in-process, as tests and tools start one: here with no
// XMPP server listening (the component keeps retrying in the background),
// on a port the system chooses.
func Example() {
	a, err := app.New(app.Config{
		JID: "presence.localhost", Secret: "s", Server: "127.0.0.1:1", HTTP: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := a.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer a.Stop(context.Background())

	resp, err := http.Get("http://" + a.Addr().String() + "/v1/presence")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}

// Settings as an operator gives them to the binary, here from a map for
// the environment.
func ExampleParseSettings() {
	env := map[string]string{"PRESENCED_JID": "presence.example.org", "PRESENCED_SECRET": "s", "PRESENCED_PING_INTERVAL": "2m"}
	cfg, err := app.ParseSettings([]string{"-max-resources", "8"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.JID, cfg.PingInterval, cfg.MaxResources, cfg.HTTP)
	// Output: presence.example.org 2m0s 8 127.0.0.1:8080
}
