package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestProvisionArguments(t *testing.T) {
	base := map[string]string{"PRESENCED_JID": "presence.localhost", "PRESENCED_SECRET": "s"}
	for _, tt := range []struct {
		name  string
		args  []string
		env   map[string]string
		stdin string
		code  int
		say   string
	}{
		{"no endpoint", []string{"alice@localhost"}, nil, "", 2, "-mongooseim-graphql"},
		{"no users", []string{"-mongooseim-graphql", "http://127.0.0.1:1/api/graphql"}, nil, "", 2, "no users"},
		{"not a bare JID", []string{"-mongooseim-graphql", "http://127.0.0.1:1/api/graphql", "alice@localhost/phone"}, nil, "", 2, "not a bare user JID"},
		{"stdin, comments skipped, server down", []string{"-mongooseim-graphql", "http://127.0.0.1:1/api/graphql", "-"}, nil, "# users\nalice@localhost\n\n", 1, "0 of 1 users"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			var out bytes.Buffer
			code := provision(tt.args, func(k string) string { return env[k] }, strings.NewReader(tt.stdin), &out)
			if code != tt.code || !strings.Contains(out.String(), tt.say) {
				t.Fatalf("exit %d, said %q; want %d and %q", code, out.String(), tt.code, tt.say)
			}
		})
	}
}
