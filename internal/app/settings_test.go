package app

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the settings table")

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "presenced.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestParseOptions covers flags, the environment and the file, and the
// errors that name where a bad value came from.
func TestParseOptions(t *testing.T) {
	base := map[string]string{"PRESENCED_JID": "presence.localhost", "PRESENCED_SECRET": "s3", "PRESENCED_HTTP": "127.0.0.1:9"}
	good := writeConfig(t, `
jid = "presence.localhost"
secret = "from-file"
admins = ["ops@localhost", "example.org"]
ping-interval = "2m"
max-resources = 16
rate = 2.5
metrics = ""
`)
	for _, tt := range []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(Config) bool
	}{
		{"env only", nil, base, "", func(o Config) bool {
			return o.JID == "presence.localhost" && o.Secret == "s3" && o.HTTP == "127.0.0.1:9" && o.Server == "127.0.0.1:8888" && o.ProbeWait == 5*time.Second
		}},
		{"flag wins over env", []string{"-secret", "flag", "-probe-wait", "250ms"}, base, "", func(o Config) bool {
			return o.Secret == "flag" && o.ProbeWait == 250*time.Millisecond
		}},
		{"missing jid", nil, nil, "-jid (PRESENCED_JID) is required", nil},
		{"user jid", []string{"-jid", "alice@localhost"}, base, "not a domain JID", nil},
		{"bad store", []string{"-store", "redis"}, base, "unknown store", nil},
		{"bad duration", []string{"-probe-wait", "soon"}, base, "-probe-wait", nil},
		{"bad level", []string{"-log-level", "loud"}, base, "-log-level", nil},
		{"stray argument", []string{"extra"}, base, "unexpected arguments", nil},
		{"file", []string{"-config", good}, nil, "", func(o Config) bool {
			return o.JID == "presence.localhost" && o.Secret == "from-file" && len(o.Admins) == 2 &&
				o.PingInterval == 2*time.Minute && o.MaxResources == 16 && o.RatePerSecond == 2.5 && o.ProbeWait == 5*time.Second
		}},
		{"file from the environment", nil, map[string]string{"PRESENCED_CONFIG": good}, "", func(o Config) bool {
			return o.Secret == "from-file"
		}},
		{"environment over file", []string{"-config", good}, map[string]string{"PRESENCED_SECRET": "env"}, "", func(o Config) bool {
			return o.Secret == "env"
		}},
		{"flag over environment over file", []string{"-config", good, "-max-resources", "4"}, map[string]string{"PRESENCED_MAX_RESOURCES": "8"}, "", func(o Config) bool {
			return o.MaxResources == 4
		}},
		{"unknown key", []string{"-config", writeConfig(t, "jid = \"presence.localhost\"\npingg-interval = \"5s\"\n")}, nil, `unknown key "pingg-interval"`, nil},
		{"bad duration in file", []string{"-config", writeConfig(t, "ping-timeout = \"soon\"\n")}, nil, `key "ping-timeout": not a positive duration`, nil},
		{"number for a duration", []string{"-config", writeConfig(t, "ping-timeout = 30\n")}, nil, `key "ping-timeout": want a duration as a string`, nil},
		{"string for a number", []string{"-config", writeConfig(t, "max-users = \"many\"\n")}, nil, `key "max-users": not a non-negative whole number`, nil},
		{"list for a string", []string{"-config", writeConfig(t, "jid = [\"a\"]\n")}, nil, `key "jid": want a string, got a list`, nil},
		{"table", []string{"-config", writeConfig(t, "[xmpp]\njid = \"x\"\n")}, nil, `unknown key "xmpp"`, nil},
		{"syntax", []string{"-config", writeConfig(t, "jid = \n")}, nil, "line 1", nil},
		{"missing file", []string{"-config", "/nonexistent/presenced.toml"}, nil, "-config", nil},
		{"ejabberd API", []string{"-ejabberd-api", "http://127.0.0.1:5281/api", "-ejabberd-api-user", "presenced@localhost", "-reconcile-interval", "1m"},
			map[string]string{"PRESENCED_JID": "presence.localhost", "PRESENCED_SECRET": "s", "PRESENCED_EJABBERD_API_PASSWORD": "pw"}, "", func(o Config) bool {
				return o.Ejabberd.URL == "http://127.0.0.1:5281/api" && o.Ejabberd.User == "presenced@localhost" && o.Ejabberd.Password == "pw" &&
					o.ReconcileInterval == time.Minute && o.MongooseIM.Endpoint == ""
			}},
		{"two session sources", []string{"-ejabberd-api", "http://127.0.0.1:5281/api", "-mongooseim-graphql", "http://127.0.0.1:5551/api/graphql"}, base,
			"set one of them", nil},
		{"flush interval: the default", nil, base, "", func(o Config) bool {
			return o.StreamFlushInterval == 25*time.Millisecond
		}},
		{"flush interval: 0 turns the pause off, as Config says it", []string{"-stream-flush-interval", "0"}, base, "", func(o Config) bool {
			return o.StreamFlushInterval < 0
		}},
		{"bad env names the variable", nil, map[string]string{"PRESENCED_JID": "presence.localhost", "PRESENCED_SECRET": "s", "PRESENCED_USER_RATE": "0"}, "PRESENCED_USER_RATE: not a positive whole number", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseSettings(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(o) {
				t.Fatalf("got %+v, %v", o, err)
			}
		})
	}
}

// TestConfigurationReference keeps docs/configuration.md generated from
// the settings table: run with -update after changing a setting.
func TestConfigurationReference(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	got := reference()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Fatal("docs/configuration.md is out of date: go test ./internal/app -run TestConfigurationReference -update")
	}
}
