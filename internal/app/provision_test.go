package app

import (
	"io"
	"strings"
	"testing"
)

// TestProvisionerSettings: `presenced provision` takes the REST admin API
// and MongooseIM's database from its settings, and names the first one
// missing.
func TestProvisionerSettings(t *testing.T) {
	all := map[string]string{
		"PRESENCED_JID": "presence.localhost", "PRESENCED_SECRET": "s",
		"PRESENCED_MONGOOSEIM_REST": "http://mongooseim:5551/api", "PRESENCED_MONGOOSEIM_REST_USER": "admin",
		"PRESENCED_MONGOOSEIM_REST_PASSWORD": "pw", "PRESENCED_MONGOOSEIM_DATABASE": "postgres://mongooseim:pw@db/mongooseim",
	}
	for _, tt := range []struct {
		unset, want string
	}{
		{"", ""},
		{"PRESENCED_MONGOOSEIM_REST", "-mongooseim-rest (PRESENCED_MONGOOSEIM_REST) is required"},
		{"PRESENCED_MONGOOSEIM_REST_USER", "-mongooseim-rest-user (PRESENCED_MONGOOSEIM_REST_USER) is required"},
		{"PRESENCED_MONGOOSEIM_REST_PASSWORD", "-mongooseim-rest-password (PRESENCED_MONGOOSEIM_REST_PASSWORD) is required"},
		{"PRESENCED_MONGOOSEIM_DATABASE", "-mongooseim-database (PRESENCED_MONGOOSEIM_DATABASE) is required"},
	} {
		t.Run("without "+tt.unset, func(t *testing.T) {
			o, err := ParseSettings(nil, func(k string) string {
				if k == tt.unset {
					return ""
				}
				return all[k]
			}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			p, err := o.Provisioner()
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil || p.REST.URL != all["PRESENCED_MONGOOSEIM_REST"] || p.REST.User != "admin" || p.REST.Password != "pw" ||
				p.Database != all["PRESENCED_MONGOOSEIM_DATABASE"] || p.Component != "presence.localhost" {
				t.Fatalf("%+v, %v", p, err)
			}
		})
	}
}
