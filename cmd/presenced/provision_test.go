package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestProvisionArguments(t *testing.T) {
	base := map[string]string{"PRESENCED_JID": "presence.localhost", "PRESENCED_SECRET": "s"}
	rest := map[string]string{"PRESENCED_MONGOOSEIM_REST": "http://127.0.0.1:1/api", "PRESENCED_MONGOOSEIM_REST_USER": "admin",
		"PRESENCED_MONGOOSEIM_REST_PASSWORD": "pw", "PRESENCED_MONGOOSEIM_DATABASE": "postgres://127.0.0.1:1/mongooseim"}
	without := func(key string) map[string]string {
		m := map[string]string{}
		for k, v := range rest {
			if k != key {
				m[k] = v
			}
		}
		return m
	}
	for _, tt := range []struct {
		name  string
		args  []string
		env   map[string]string
		stdin string
		code  int
		say   string
	}{
		{"no REST API", []string{"alice@localhost"}, without("PRESENCED_MONGOOSEIM_REST"), "", 2, "-mongooseim-rest (PRESENCED_MONGOOSEIM_REST) is required"},
		{"no REST user", []string{"alice@localhost"}, without("PRESENCED_MONGOOSEIM_REST_USER"), "", 2, "-mongooseim-rest-user (PRESENCED_MONGOOSEIM_REST_USER) is required"},
		{"no REST password", []string{"alice@localhost"}, without("PRESENCED_MONGOOSEIM_REST_PASSWORD"), "", 2, "-mongooseim-rest-password (PRESENCED_MONGOOSEIM_REST_PASSWORD) is required"},
		{"no database", []string{"alice@localhost"}, without("PRESENCED_MONGOOSEIM_DATABASE"), "", 2, "-mongooseim-database (PRESENCED_MONGOOSEIM_DATABASE) is required"},
		{"not a PostgreSQL URL", []string{"-mongooseim-database", "mysql://db", "alice@localhost"}, rest, "", 2, "-mongooseim-database (PRESENCED_MONGOOSEIM_DATABASE): not a PostgreSQL URL"},
		{"not an HTTP URL", []string{"-mongooseim-rest", "mongooseim:8088/api", "alice@localhost"}, rest, "", 2, "is not an http:// or https:// URL"},
		{"no users", nil, rest, "", 2, "no users"},
		{"not a bare JID", []string{"alice@localhost/phone"}, rest, "", 2, "not a bare user JID"},
		{"stdin, comments skipped, server down", []string{"-"}, rest, "# users\nalice@localhost\n\n", 1, "0 of 1 users"},
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
