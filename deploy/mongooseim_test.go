package deploy

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// renderMongooseIM runs deploy/mongooseim/render.sh as mongooseim-init
// would, on a fake release, and returns the configuration it wrote.
func renderMongooseIM(t *testing.T, vars map[string]string) (string, error) {
	t.Helper()
	return renderTemplate(t, "deploy/mongooseim/mongooseim.toml", vars)
}

// renderTemplate runs render.sh on the template at path (from the
// project's root) and returns the configuration it wrote.
func renderTemplate(t *testing.T, path string, vars map[string]string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	rel := filepath.Join(dir, "release", "lib", "mongooseim-0.0.0", "priv")
	if err := os.MkdirAll(rel, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rel, "pg.sql"), []byte("-- the release's schema\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "deploy/mongooseim/render.sh"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"),
		"MIM_TEMPLATE=" + filepath.Join(root, path),
		"MIM_CONFIG=" + filepath.Join(dir, "member", "mongooseim.toml"),
		"MIM_ROOT=" + filepath.Join(dir, "release"),
		"MIM_SCHEMA=" + filepath.Join(dir, "schema", "pg.sql"),
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "schema", "pg.sql")); err != nil || string(b) != "-- the release's schema\n" {
		t.Errorf("render.sh did not copy the release's pg.sql: %q %v", b, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "member", "mongooseim.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b), nil
}

func table(t *testing.T, m map[string]any, keys ...string) map[string]any {
	t.Helper()
	cur := m
	for _, k := range keys {
		next, ok := cur[k].(map[string]any)
		if !ok {
			t.Fatalf("mongooseim.toml: no table %s", strings.Join(keys, "."))
		}
		cur = next
	}
	return cur
}

func array(t *testing.T, m map[string]any, keys ...string) []map[string]any {
	t.Helper()
	parent := table(t, m, keys[:len(keys)-1]...)
	a, ok := parent[keys[len(keys)-1]].([]map[string]any)
	if !ok {
		t.Fatalf("mongooseim.toml: no array of tables %s", strings.Join(keys, "."))
	}
	return a
}

func TestMongooseIMConfig(t *testing.T) {
	p := project(t)
	initSvc := service(t, p, "mongooseim-init")
	pd := service(t, p, "presenced")

	// The committed file is TOML, filled in except for the secrets, and
	// holds none of them.
	tmpl := readFile(t, "deploy/mongooseim/mongooseim.toml")
	var m map[string]any
	if _, err := toml.Decode(tmpl, &m); err != nil {
		t.Fatalf("mongooseim.toml: %v", err)
	}
	var code strings.Builder // without the comments
	for _, line := range strings.Split(tmpl, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			code.WriteString(line + "\n")
		}
	}
	if strings.Contains(code.String(), "{{") {
		t.Error("mongooseim.toml still has a mustache {{...}} of the template")
	}
	// Each @NAME@ placeholder is a variable mongooseim-init is given.
	placeholders := regexp.MustCompile(`@([A-Z][A-Z_]*)@`).FindAllStringSubmatch(code.String(), -1)
	seen := map[string]bool{}
	for _, ph := range placeholders {
		if ph[1] == "HOST" {
			continue // MongooseIM's own (mod_vcard)
		}
		seen[ph[1]] = true
		if _, ok := initSvc.Environment[ph[1]]; !ok {
			t.Errorf("mongooseim.toml has @%s@, which mongooseim-init is not given", ph[1])
		}
	}
	if len(seen) == 0 {
		t.Fatal("mongooseim.toml has no placeholders: are secrets written in it?")
	}

	vars := map[string]string{}
	for name := range seen {
		vars[name] = env(t, initSvc, name)
	}
	out, err := renderMongooseIM(t, vars)
	if err != nil {
		t.Fatalf("render.sh: %v", err)
	}
	if !strings.Contains(out, "@HOST@") {
		t.Error("render.sh replaced MongooseIM's own @HOST@")
	}
	m = nil
	if _, err := toml.Decode(out, &m); err != nil {
		t.Fatalf("the rendered mongooseim.toml: %v", err)
	}

	// One domain, the parent of presenced's JID.
	jid := env(t, pd, "PRESENCED_JID")
	_, domain, _ := strings.Cut(jid, ".")
	hosts, _ := table(t, m, "general")["hosts"].([]any)
	if !slices.Contains(hosts, any(domain)) {
		t.Errorf("general.hosts = %v, want %s (PRESENCED_JID %s)", hosts, domain, jid)
	}

	// The component listener: on PRESENCED_SERVER's port, with its secret.
	comps := array(t, m, "listen", "component")
	if len(comps) != 1 {
		t.Fatalf("%d [[listen.component]], want 1", len(comps))
	}
	c := comps[0]
	server, port := hostPort(t, env(t, pd, "PRESENCED_SERVER"))
	if c["port"] != int64(port) {
		t.Errorf("[[listen.component]] port %v, PRESENCED_SERVER %s", c["port"], env(t, pd, "PRESENCED_SERVER"))
	}
	if _, err := p.GetService(server); err != nil {
		t.Errorf("PRESENCED_SERVER's host %s is not a service", server)
	}
	if c["ip_address"] != "0.0.0.0" {
		t.Errorf("component listener on %v: presenced, in another container, cannot reach it", c["ip_address"])
	}
	if c["password"] != composeEnv["PRESENCED_SECRET"] {
		t.Errorf("component password %q, want PRESENCED_SECRET %q", c["password"], composeEnv["PRESENCED_SECRET"])
	}
	if c["check_from"] != true || c["conflict_behaviour"] != "kick_old" {
		t.Errorf("component listener: check_from %v, conflict_behaviour %v; want true, kick_old", c["check_from"], c["conflict_behaviour"])
	}

	// The admin GraphQL endpoint with HTTP Basic credentials from the
	// environment.
	found := false
	for _, l := range array(t, m, "listen", "http") {
		hs, _ := l["handlers"].(map[string]any)
		gs, _ := hs["mongoose_graphql_handler"].([]map[string]any)
		for _, g := range gs {
			if g["schema_endpoint"] != "admin" {
				continue
			}
			found = true
			if g["username"] != env(t, initSvc, "MONGOOSEIM_ADMIN_USER") || g["password"] != composeEnv["MONGOOSEIM_ADMIN_PASSWORD"] {
				t.Errorf("admin GraphQL credentials %v/%v, want MONGOOSEIM_ADMIN_USER/MONGOOSEIM_ADMIN_PASSWORD", g["username"], g["password"])
			}
			if g["host"] != "_" || l["ip_address"] != "0.0.0.0" {
				t.Errorf("admin GraphQL on %v, host %v: other containers cannot reach it", l["ip_address"], g["host"])
			}
		}
	}
	if !found {
		t.Error("no admin GraphQL endpoint (schema_endpoint = \"admin\")")
	}
	// presenced's GraphQL settings point at that endpoint, with its
	// credentials.
	gql, err := url.Parse(env(t, pd, "PRESENCED_MONGOOSEIM_GRAPHQL"))
	if err != nil {
		t.Fatal(err)
	}
	_, gqlPort := hostPort(t, gql.Host)
	matched := false
	for _, l := range array(t, m, "listen", "http") {
		hs, _ := l["handlers"].(map[string]any)
		gs, _ := hs["mongoose_graphql_handler"].([]map[string]any)
		for _, g := range gs {
			if g["schema_endpoint"] == "admin" && l["port"] == int64(gqlPort) && g["path"] == gql.Path {
				matched = true
			}
		}
	}
	if !matched || gql.Hostname() != "mongooseim" {
		t.Errorf("PRESENCED_MONGOOSEIM_GRAPHQL %s is not MongooseIM's admin GraphQL endpoint", gql)
	}
	if env(t, pd, "PRESENCED_MONGOOSEIM_USER") != env(t, initSvc, "MONGOOSEIM_ADMIN_USER") ||
		env(t, pd, "PRESENCED_MONGOOSEIM_PASSWORD") != composeEnv["MONGOOSEIM_ADMIN_PASSWORD"] {
		t.Error("presenced's GraphQL credentials are not the admin endpoint's")
	}

	// PostgreSQL for MongooseIM's data, the compose service's database.
	conn := table(t, m, "outgoing_pools", "rdbms", "default", "connection")
	if conn["driver"] != "pgsql" || conn["database"] != "mongooseim" || conn["username"] != "mongooseim" ||
		conn["password"] != composeEnv["MONGOOSEIM_DB_PASSWORD"] {
		t.Errorf("rdbms pool %v: want pgsql, mongooseim/mongooseim, MONGOOSEIM_DB_PASSWORD", conn)
	}
	if h, _ := conn["host"].(string); func() error { _, err := p.GetService(h); return err }() != nil {
		t.Errorf("rdbms pool host %q is not a service", h)
	}
	table(t, m, "auth", "rdbms")
	if b := table(t, m, "modules", "mod_roster")["backend"]; b != "rdbms" {
		t.Errorf("mod_roster backend %v, want rdbms", b)
	}
	for _, mod := range []string{"mod_disco", "mod_last", "mod_ping", "mod_presence"} {
		table(t, m, "modules", mod)
	}

	// Every variable is required: render.sh stops on an empty one.
	for name := range seen {
		v := maps(vars)
		v[name] = ""
		if _, err := renderMongooseIM(t, v); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("render.sh with %s empty: %v, want an error naming it", name, err)
		}
	}

	// PostgreSQL's first-start script is valid bash.
	if out, err := exec.Command("bash", "-n", filepath.Join(root, "deploy/postgres/10-databases.sh")).CombinedOutput(); err != nil {
		t.Errorf("deploy/postgres/10-databases.sh: %v\n%s", err, out)
	}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestMongooseIMConfigsAgree: the configuration of the version
// docker-compose.yml pins (mongooseim.toml) and the tests' one for 6.1.0
// (mongooseim-6.1.0.toml, which scripts/mongooseim renders with the same
// render.sh) differ where 6.1.0 takes an older syntax, and agree on
// everything presenced relies on: what the tests check on the real 6.1.0
// is what the deployment gets.
func TestMongooseIMConfigsAgree(t *testing.T) {
	decode := func(path string, vars map[string]string) map[string]any {
		t.Helper()
		out, err := renderTemplate(t, path, vars)
		if err != nil {
			t.Fatalf("render.sh %s: %v", path, err)
		}
		var m map[string]any
		if _, err := toml.Decode(out, &m); err != nil {
			t.Fatalf("%s rendered: %v", path, err)
		}
		return m
	}
	secrets := map[string]string{"PRESENCED_SECRET": "s3cret", "MONGOOSEIM_ADMIN_USER": "admin",
		"MONGOOSEIM_ADMIN_PASSWORD": "pw", "MONGOOSEIM_DB_PASSWORD": "dbpw"}
	deployed := decode("deploy/mongooseim/mongooseim.toml", secrets)
	tests := maps(secrets)
	for k, v := range map[string]string{"XMPP_DOMAIN": "localhost", "C2S_PORT": "25222", "COMPONENT_PORT": "28888",
		"ADMIN_PORT": "25551", "DB_PORT": "25432"} {
		tests[k] = v
	}
	tested := decode("deploy/mongooseim/mongooseim-6.1.0.toml", tests)

	// The component listener: [[listen.component]] from 6.2 on,
	// [[listen.service]] in 6.1.0.
	listener := func(m map[string]any, name string) map[string]any {
		t.Helper()
		l := array(t, m, "listen", name)
		if len(l) != 1 {
			t.Fatalf("%d [[listen.%s]], want 1", len(l), name)
		}
		return l[0]
	}
	dc, tc := listener(deployed, "component"), listener(tested, "service")
	for _, k := range []string{"access", "password", "check_from", "conflict_behaviour"} {
		if dc[k] != tc[k] {
			t.Errorf("component listener %s: deployed %v, tested %v", k, dc[k], tc[k])
		}
	}
	// Hosts, and routing_modules left to the default that routes to
	// components (measured on 6.1.0: a list without the external routers
	// routes nothing from the component to local users).
	for name, m := range map[string]map[string]any{"deployed": deployed, "tested": tested} {
		g := table(t, m, "general")
		if hosts, _ := g["hosts"].([]any); len(hosts) != 1 || hosts[0] != "localhost" {
			t.Errorf("%s general.hosts = %v", name, g["hosts"])
		}
		if _, set := g["routing_modules"]; set {
			t.Errorf("%s sets general.routing_modules", name)
		}
		table(t, m, "auth", "rdbms")
		if d := table(t, m, "outgoing_pools", "rdbms", "default", "connection")["driver"]; d != "pgsql" {
			t.Errorf("%s rdbms driver %v", name, d)
		}
		for mod, backend := range map[string]string{"mod_roster": "rdbms", "mod_last": "rdbms", "mod_presence": "",
			"mod_ping": "", "mod_stream_management": "", "mod_disco": ""} {
			if b := table(t, m, "modules", mod)["backend"]; backend != "" && b != backend {
				t.Errorf("%s %s backend %v, want %s", name, mod, b, backend)
			}
		}
		// The admin APIs presenced calls: GraphQL (sessions) and REST
		// (provisioning), with the admin credentials.
		handlers := map[string]bool{}
		for _, l := range array(t, m, "listen", "http") {
			hs, _ := l["handlers"].(map[string]any)
			for kind, path := range map[string]string{"mongoose_graphql_handler": "/api/graphql", "mongoose_admin_api": "/api"} {
				list, _ := hs[kind].([]map[string]any)
				for _, h := range list {
					if kind == "mongoose_graphql_handler" && h["schema_endpoint"] != "admin" {
						continue
					}
					if h["path"] != path || h["host"] != "_" || h["username"] != "admin" || h["password"] != "pw" {
						t.Errorf("%s %s: %v", name, kind, h)
					}
					handlers[kind] = true
				}
			}
		}
		if !handlers["mongoose_graphql_handler"] || !handlers["mongoose_admin_api"] {
			t.Errorf("%s: admin handlers %v, want GraphQL (admin) and the REST admin API", name, handlers)
		}
		c2s := listener(m, "c2s")
		if c2s["max_stanza_size"] != int64(65536) {
			t.Errorf("%s c2s max_stanza_size %v", name, c2s["max_stanza_size"])
		}
	}
}
