package deploy

// Checks of the deployment files without a container engine:
// docker-compose.yml through the Compose Specification's own Go loader
// (compose-go), the Dockerfile and .dockerignore by reading them,
// MongooseIM's configuration by filling it in with
// deploy/mongooseim/render.sh and parsing the TOML, the Prometheus
// configuration and alert rules with promtool (check config, check rules and
// a rule unit test per alert), the metric names and label values of the
// rules against the Go sources, and the provisioning SQL of
// setup-mongooseim.md against a real PostgreSQL.
//
// What this cannot check: that the images and tags exist, that the
// containers start and talk to each other, and that MongooseIM accepts its
// configuration (no MongooseIM runs here).

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v4"

	"github.com/presenced/presenced/internal/pgtest"
)

const root = ".." // the repository, seen from deploy/

// composeEnv is the environment the compose file is loaded with: every
// secret it requires, with values that show up if they leak elsewhere.
var composeEnv = map[string]string{
	"PRESENCED_SECRET":          `comp-"secret"\&/$1`,
	"MONGOOSEIM_ADMIN_PASSWORD": "admin-pw&/x",
	"POSTGRES_PASSWORD":         "postgres-pw",
	"MONGOOSEIM_DB_PASSWORD":    `mim-db-'pw"`,
	"PRESENCED_DB_PASSWORD":     "0123456789abcdef",
}

// requiredSecrets must each be set: loading without one fails.
var requiredSecrets = []string{"PRESENCED_SECRET", "MONGOOSEIM_ADMIN_PASSWORD", "POSTGRES_PASSWORD", "MONGOOSEIM_DB_PASSWORD", "PRESENCED_DB_PASSWORD"}

func loadCompose(t *testing.T, env map[string]string, interpolate bool) (*types.Project, error) {
	t.Helper()
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnv(list), cli.WithInterpolation(interpolate))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func project(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, composeEnv, true)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return s
}

func env(t *testing.T, s types.ServiceConfig, name string) string {
	t.Helper()
	v, ok := s.Environment[name]
	if !ok || v == nil {
		t.Fatalf("docker-compose.yml: service %s has no %s", s.Name, name)
	}
	return *v
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	return h, n
}

func TestComposeServices(t *testing.T) {
	p := project(t)
	for _, name := range []string{"mongooseim-init", "postgres", "mongooseim", "presenced-migrate", "presenced", "prometheus"} {
		service(t, p, name)
	}

	// Every image is pinned to a tag (no digest, not latest), and the two
	// MongooseIM services run the same release.
	for _, s := range p.Services {
		if s.Build != nil {
			continue
		}
		_, tag, ok := strings.Cut(s.Image, ":")
		if !ok || tag == "" || tag == "latest" || strings.Contains(s.Image, "@") {
			t.Errorf("service %s: image %q is not pinned to a tag", s.Name, s.Image)
		}
	}
	if a, b := service(t, p, "mongooseim-init").Image, service(t, p, "mongooseim").Image; a != b || !strings.HasPrefix(a, "erlangsolutions/mongooseim:") {
		t.Errorf("mongooseim-init runs %q, mongooseim %q: want the same erlangsolutions/mongooseim release", a, b)
	}
	if img := service(t, p, "postgres").Image; img != "postgres:15" {
		t.Errorf("postgres image %q, want postgres:15", img)
	}
	if img := service(t, p, "prometheus").Image; !strings.HasPrefix(img, "prom/prometheus:v") {
		t.Errorf("prometheus image %q, want prom/prometheus:vX.Y.Z", img)
	}

	// presenced and its migration are built from this repository.
	pd, mig := service(t, p, "presenced"), service(t, p, "presenced-migrate")
	for _, s := range []types.ServiceConfig{pd, mig} {
		abs, _ := filepath.Abs(root)
		if s.Build == nil || filepath.Clean(s.Build.Context) != abs {
			t.Errorf("service %s: want build: . (the repository)", s.Name)
		}
	}
	if pd.Image != mig.Image {
		t.Errorf("presenced runs %q, presenced-migrate %q: want one image", pd.Image, mig.Image)
	}
	if !slices.Equal([]string(mig.Command), []string{"migrate"}) {
		t.Errorf("presenced-migrate command %q, want [migrate] (presenced migrate)", mig.Command)
	}
	if env(t, mig, "PRESENCED_STORE") != env(t, pd, "PRESENCED_STORE") {
		t.Error("presenced-migrate and presenced use different PRESENCED_STORE")
	}

	// presenced's settings.
	if v := env(t, pd, "PRESENCED_SERVER"); v != "mongooseim:8888" {
		t.Errorf("PRESENCED_SERVER = %q, want mongooseim:8888", v)
	}
	if v := env(t, pd, "PRESENCED_SECRET"); v != composeEnv["PRESENCED_SECRET"] {
		t.Errorf("PRESENCED_SECRET = %q, want the environment's", v)
	}
	if v := env(t, pd, "PRESENCED_METRICS"); v != "0.0.0.0:9464" {
		t.Errorf("PRESENCED_METRICS = %q, want 0.0.0.0:9464", v)
	}
	if v := env(t, pd, "PRESENCED_HTTP"); v != "0.0.0.0:8080" {
		t.Errorf("PRESENCED_HTTP = %q, want 0.0.0.0:8080", v)
	}
	if v := env(t, pd, "PRESENCED_JID"); !strings.HasPrefix(v, "presence.") {
		t.Errorf("PRESENCED_JID = %q", v)
	}
	store, err := url.Parse(env(t, pd, "PRESENCED_STORE"))
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := store.User.Password()
	if store.Scheme != "postgres" || store.Hostname() != "postgres" || store.Path != "/presenced" ||
		store.User.Username() != "presenced" || pw != composeEnv["PRESENCED_DB_PASSWORD"] {
		t.Errorf("PRESENCED_STORE = %s: want postgres://presenced:$PRESENCED_DB_PASSWORD@postgres:5432/presenced", store.Redacted())
	}

	// Every PRESENCED_* variable is a setting of the configuration
	// reference (docs/configuration.md, generated from the code).
	reference := readFile(t, "docs/configuration.md")
	for _, s := range []types.ServiceConfig{pd, mig} {
		for k := range s.Environment {
			if strings.HasPrefix(k, "PRESENCED_") && !strings.Contains(reference, "`"+k+"`") {
				t.Errorf("service %s sets %s, which docs/configuration.md does not know", s.Name, k)
			}
		}
	}

	// The API is published; its port is the one presenced listens on.
	_, httpPort := hostPort(t, env(t, pd, "PRESENCED_HTTP"))
	published := false
	for _, port := range pd.Ports {
		if port.Target == uint32(httpPort) {
			published = true
		}
	}
	if !published {
		t.Errorf("presenced does not publish its HTTP port %d", httpPort)
	}

	// Start order: health and completion conditions.
	wantDep := func(s types.ServiceConfig, on, cond string) {
		t.Helper()
		d, ok := s.DependsOn[on]
		if !ok || d.Condition != cond {
			t.Errorf("service %s: want depends_on %s with condition %s, have %+v", s.Name, on, cond, d)
		}
	}
	wantDep(pd, "presenced-migrate", types.ServiceConditionCompletedSuccessfully)
	wantDep(pd, "mongooseim", types.ServiceConditionHealthy)
	wantDep(pd, "postgres", types.ServiceConditionHealthy)
	wantDep(mig, "postgres", types.ServiceConditionHealthy)
	wantDep(service(t, p, "mongooseim"), "postgres", types.ServiceConditionHealthy)
	wantDep(service(t, p, "mongooseim"), "mongooseim-init", types.ServiceConditionCompletedSuccessfully)
	wantDep(service(t, p, "postgres"), "mongooseim-init", types.ServiceConditionCompletedSuccessfully)
	for _, name := range []string{"postgres", "mongooseim"} {
		if hc := service(t, p, name).HealthCheck; hc == nil || len(hc.Test) == 0 || hc.Disable {
			t.Errorf("service %s has no healthcheck, but others wait for it to be healthy", name)
		}
	}
	// MongooseIM is healthy when its component listener accepts connections.
	_, compPort := hostPort(t, env(t, pd, "PRESENCED_SERVER"))
	if hc := service(t, p, "mongooseim").HealthCheck; hc == nil || !strings.Contains(strings.Join(hc.Test, " "), "/"+strconv.Itoa(compPort)) {
		t.Errorf("mongooseim's healthcheck does not test the component port %d", compPort)
	}
	// The same secrets reach every service that uses them.
	if v := env(t, service(t, p, "mongooseim-init"), "PRESENCED_SECRET"); v != composeEnv["PRESENCED_SECRET"] {
		t.Errorf("mongooseim-init PRESENCED_SECRET = %q", v)
	}
	for _, name := range []string{"MONGOOSEIM_DB_PASSWORD", "PRESENCED_DB_PASSWORD", "POSTGRES_PASSWORD"} {
		if v := env(t, service(t, p, "postgres"), name); v != composeEnv[name] {
			t.Errorf("postgres %s = %q", name, v)
		}
	}
}

// TestComposeSecretsFromEnvironment: no secret is written in the file; each
// is ${NAME:?message}, so compose refuses to start without it.
func TestComposeSecretsFromEnvironment(t *testing.T) {
	for _, name := range requiredSecrets {
		e := map[string]string{}
		for k, v := range composeEnv {
			if k != name {
				e[k] = v
			}
		}
		if _, err := loadCompose(t, e, true); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("docker-compose.yml loads without %s (err %v): it must be required", name, err)
		}
	}

	raw, err := loadCompose(t, nil, false)
	if err != nil {
		t.Fatalf("docker-compose.yml without interpolation: %v", err)
	}
	required := regexp.MustCompile(`\$\{([A-Z_]+):\?[^}]+\}`)
	for _, s := range raw.Services {
		for k, v := range s.Environment {
			if v == nil {
				continue
			}
			isSecret := strings.Contains(k, "SECRET") || strings.Contains(k, "PASSWORD") || k == "PRESENCED_STORE"
			if !isSecret {
				continue
			}
			// Each secret (or URL carrying one) names a required variable,
			// and holds no literal password.
			m := required.FindAllStringSubmatch(*v, -1)
			if len(m) == 0 {
				t.Errorf("service %s: %s = %q is not taken from a required variable", s.Name, k, *v)
			}
			if k != "PRESENCED_STORE" && (len(m) != 1 || m[0][0] != *v) {
				t.Errorf("service %s: %s = %q: want exactly ${VAR:?message}", s.Name, k, *v)
			}
		}
	}
	// And nothing in the file looks like a committed secret value.
	text := readFile(t, "docker-compose.yml")
	for _, v := range composeEnv {
		if strings.Contains(text, v) {
			t.Errorf("docker-compose.yml contains the test secret %q?", v)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dockerfile returns the Dockerfile's instructions (continuations joined,
// comments dropped) and its comments.
func dockerfile(t *testing.T) (instrs [][2]string, comments string) {
	t.Helper()
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(readFile(t, "Dockerfile")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			comments += line + "\n"
			continue
		}
		if line == "" && cur.Len() == 0 {
			continue
		}
		if rest, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		kw, args, _ := strings.Cut(cur.String(), " ")
		instrs = append(instrs, [2]string{strings.ToUpper(kw), strings.TrimSpace(args)})
		cur.Reset()
	}
	return instrs, comments
}

func TestDockerfile(t *testing.T) {
	instrs, comments := dockerfile(t)
	var froms, runs, users, exposes, entrypoints []string
	for _, in := range instrs {
		switch in[0] {
		case "FROM":
			froms = append(froms, in[1])
		case "RUN":
			runs = append(runs, in[1])
		case "USER":
			users = append(users, in[1])
		case "EXPOSE":
			exposes = append(exposes, strings.Fields(in[1])...)
		case "ENTRYPOINT":
			entrypoints = append(entrypoints, in[1])
		case "HEALTHCHECK":
			t.Errorf("HEALTHCHECK %s: distroless has no shell to run it", in[1])
		}
	}
	if len(froms) != 2 || !strings.HasPrefix(froms[0], "golang:1.26") || strings.Contains(froms[0], "@") {
		t.Errorf("FROM %q: want a build stage golang:1.26 (a tag, no digest) and a final stage", froms)
	}
	if final := froms[len(froms)-1]; final != "gcr.io/distroless/static-debian12:nonroot" && final != "scratch" {
		t.Errorf("final stage FROM %s: want distroless static nonroot or scratch", final)
	}
	build := strings.Join(runs, "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, "./cmd/presenced"} {
		if !strings.Contains(build, want) {
			t.Errorf("the build does not use %s", want)
		}
	}
	// The last USER is what the container runs as: not root.
	if len(users) == 0 {
		t.Fatal("no USER: the container would run as root")
	}
	user, _, _ := strings.Cut(users[len(users)-1], ":")
	if user == "root" || user == "0" || user == "" {
		t.Errorf("USER %s is root", users[len(users)-1])
	}
	// It exposes the ports docker-compose.yml has presenced listen on.
	p := project(t)
	pd := service(t, p, "presenced")
	for _, v := range []string{"PRESENCED_HTTP", "PRESENCED_METRICS"} {
		_, port := hostPort(t, env(t, pd, v))
		if !slices.Contains(exposes, strconv.Itoa(port)) {
			t.Errorf("EXPOSE %v lacks %s's port %d", exposes, v, port)
		}
	}
	if len(entrypoints) != 1 || !strings.HasSuffix(strings.Trim(entrypoints[0], `[]" `), "/presenced") {
		t.Errorf("ENTRYPOINT %q: want the presenced binary (exec form)", entrypoints)
	}
	if !strings.Contains(comments, "HEALTHCHECK") || !strings.Contains(comments, "/healthz") {
		t.Error("the Dockerfile does not say why there is no HEALTHCHECK and what to probe instead")
	}

	// .dockerignore keeps what the build needs.
	var patterns []string
	for _, line := range strings.Split(readFile(t, ".dockerignore"), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			if strings.HasPrefix(line, "!") {
				t.Fatalf(".dockerignore: exceptions (%s) are not understood by this test", line)
			}
			patterns = append(patterns, strings.TrimPrefix(line, "/"))
		}
	}
	needed := []string{"go.mod", "go.sum", "cmd/presenced/main.go", "bridge/openapi.yaml",
		"bridge/dashboard/static", "store/pgstore/migrations"}
	for _, f := range needed {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Fatal(err)
		}
		for _, pat := range patterns {
			if ignored(pat, f) {
				t.Errorf(".dockerignore %q excludes %s, which the build needs", pat, f)
			}
		}
	}
	for _, f := range []string{".env", ".git", "bin", "component.test", "integration/dashboard/node_modules"} {
		hit := false
		for _, pat := range patterns {
			hit = hit || ignored(pat, f)
		}
		if !hit {
			t.Errorf(".dockerignore does not exclude %s", f)
		}
	}
}

// ignored reports whether a .dockerignore pattern excludes name or one of
// its parent directories (** matches any number of directories).
func ignored(pattern, name string) bool {
	parts := strings.Split(name, "/")
	for i := 1; i <= len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		if ok, _ := path.Match(pattern, p); ok {
			return true
		}
		if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
			for j := 0; j < i; j++ {
				if ok, _ := path.Match(rest, strings.Join(parts[j:i], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

// renderMongooseIM runs deploy/mongooseim/render.sh as mongooseim-init
// would, on a fake release, and returns the configuration it wrote.
func renderMongooseIM(t *testing.T, vars map[string]string) (string, error) {
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
		"MIM_TEMPLATE=" + filepath.Join(root, "deploy/mongooseim/mongooseim.toml"),
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

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not on PATH (Debian: apt-get install prometheus; scripts/test installs it)")
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestPrometheusConfig(t *testing.T) {
	promtool(t, "check", "config", filepath.Join(root, "deploy/prometheus/prometheus.yml"))
	promtool(t, "check", "rules", filepath.Join(root, "deploy/prometheus/alerts.yml"))

	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy/prometheus/prometheus.yml")), &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.RuleFiles, "alerts.yml") {
		t.Errorf("prometheus.yml rule_files %v lacks alerts.yml", cfg.RuleFiles)
	}
	// The presenced job scrapes presenced's metrics listener.
	p := project(t)
	_, port := hostPort(t, env(t, service(t, p, "presenced"), "PRESENCED_METRICS"))
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, _ := hostPort(t, target)
				if _, err := p.GetService(host); err != nil {
					t.Errorf("job %s scrapes %s, not a service", sc.JobName, target)
				}
				if sc.JobName == "presenced" && target != "presenced:"+strconv.Itoa(port) {
					t.Errorf("job presenced scrapes %s, presenced's metrics are on port %d", target, port)
				}
			}
		}
	}
	if !jobs["presenced"] {
		t.Fatal("prometheus.yml has no job presenced")
	}
	// Prometheus reads the directory the config is in.
	mounted := false
	for _, v := range service(t, p, "prometheus").Volumes {
		abs, _ := filepath.Abs(filepath.Join(root, "deploy/prometheus"))
		mounted = mounted || (v.Source == abs && v.Target == "/etc/prometheus")
	}
	if !mounted {
		t.Error("prometheus does not mount deploy/prometheus at /etc/prometheus")
	}

	checkRules(t, jobs)
}

// goSources returns the text of the non-test Go files of the repository.
func goSources(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// anchor is GitHub's anchor of a Markdown heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(t *testing.T, doc string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, line := range strings.Split(readFile(t, doc), "\n") {
		if h := strings.TrimLeft(line, "#"); len(h) < len(line) && strings.HasPrefix(h, " ") {
			out[anchor(h)] = true
		}
	}
	return out
}

// checkRules checks that each rule's series exist in presenced (or are
// Prometheus's up), that its label values are ones presenced uses, that
// its runbook section exists, and runs promtool's rule unit test on it.
func checkRules(t *testing.T, jobs map[string]bool) {
	var rf ruleFile
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy/prometheus/alerts.yml")), &rf); err != nil {
		t.Fatal(err)
	}
	src := goSources(t)
	opsAnchors := anchors(t, "docs/operations.md")
	series := regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	matcher := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	names := regexp.MustCompile(`\bpresence_[a-z0-9_]+\b`)
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			for _, name := range names.FindAllString(r.Expr, -1) {
				base := name
				for _, suffix := range []string{"_count", "_sum", "_bucket"} {
					if b, ok := strings.CutSuffix(name, suffix); ok && strings.Contains(src, `"`+b+`"`) {
						base = b
					}
				}
				if !strings.Contains(src, `"`+base+`"`) {
					t.Errorf("alert %s uses %s, which presenced does not export", r.Alert, name)
				}
			}
			for _, sm := range series.FindAllStringSubmatch(r.Expr, -1) {
				if sm[1] != "up" && !strings.HasPrefix(sm[1], "presence_") {
					t.Errorf("alert %s uses the series %s, neither presenced's nor up", r.Alert, sm[1])
				}
				for _, mm := range matcher.FindAllStringSubmatch(sm[2], -1) {
					label, value := mm[1], mm[3]
					switch label {
					case "job":
						if !jobs[value] {
							t.Errorf("alert %s selects job=%q, not a job of prometheus.yml", r.Alert, value)
						}
					case "instance":
					case "code": // an HTTP status, formatted by strconv
						if _, err := strconv.Atoi(value); err != nil {
							t.Errorf("alert %s: code=%q", r.Alert, value)
						}
					default:
						for _, v := range strings.Split(value, "|") {
							if !strings.Contains(src, `"`+v+`"`) {
								t.Errorf("alert %s selects %s=%q, a value presenced never sets", r.Alert, label, v)
							}
						}
					}
				}
			}
			rb := r.Annotations["runbook"]
			doc, frag, _ := strings.Cut(rb, "#")
			if doc != "docs/operations.md" || !opsAnchors[frag] {
				t.Errorf("alert %s: runbook %q is not a section of docs/operations.md", r.Alert, rb)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: want severity, summary and description", r.Alert)
			}
		}
	}
	ruleUnitTests(t, rf, alerts)
}

// alertCase is one promtool rule unit test: the series, the time, and
// whether the alert fires then.
type alertCase struct {
	alert  string
	series map[string]string // series selector (without job/instance) → values
	at     string
	fires  bool
	labels map[string]string // extra labels of the alert (besides job, instance, severity)
}

var alertCases = []alertCase{
	{alert: "PresencedDown", series: map[string]string{"up": "1 0 0 0"}, at: "3m", fires: true},
	{alert: "PresencedDown", series: map[string]string{"up": "1 1 1 1"}, at: "3m"},
	{alert: "PresencedXMPPLinkDown", series: map[string]string{"presence_component_link_up": "1 0 0 0 0 0"}, at: "5m", fires: true},
	{alert: "PresencedXMPPLinkDown", series: map[string]string{"presence_component_link_up": "1 0 0 1 1 1"}, at: "5m"},
	{alert: "PresencedStoreWritesFailing", series: map[string]string{
		`presence_store_flush_duration_seconds_count{result="error"}`: "0+1x20",
		`presence_store_flush_duration_seconds_count{result="ok"}`:    "0x20"}, at: "10m", fires: true},
	{alert: "PresencedStoreWritesFailing", series: map[string]string{
		`presence_store_flush_duration_seconds_count{result="error"}`: "3x20",
		`presence_store_flush_duration_seconds_count{result="ok"}`:    "0+100x20"}, at: "10m"},
	{alert: "PresencedStoreBacklog", series: map[string]string{"presence_store_queue_events": "20000x10"}, at: "8m", fires: true},
	{alert: "PresencedStoreBacklog", series: map[string]string{"presence_store_queue_events": "9000x10"}, at: "8m"},
	{alert: "PresencedStoreDroppingHistory", series: map[string]string{"presence_store_dropped_rows_total": "0 0 5 5"}, at: "3m", fires: true},
	{alert: "PresencedStoreDroppingHistory", series: map[string]string{"presence_store_dropped_rows_total": "5x20"}, at: "15m"},
	{alert: "PresencedSlowStreamClients", series: map[string]string{
		`presence_bridge_stream_closed_total{reason="slow"}`: "0+5x30"}, at: "25m", fires: true},
	{alert: "PresencedSlowStreamClients", series: map[string]string{
		`presence_bridge_stream_closed_total{reason="slow"}`:        "0+0.5x30",
		`presence_bridge_stream_closed_total{reason="write_error"}`: "0+50x30"}, at: "25m"},
	{alert: "PresencedPresenceTooBig", series: map[string]string{
		`presence_component_presence_limited_total{reason="too_big"}`: "0 1 1"}, at: "2m", fires: true},
	{alert: "PresencedPresenceTooBig", series: map[string]string{
		`presence_component_presence_limited_total{reason="held"}`: "0+100x5"}, at: "4m"},
	{alert: "PresencedPresenceHeld", series: map[string]string{
		`presence_component_presence_limited_total{reason="held"}`: "0+1200x30"}, at: "25m", fires: true},
	{alert: "PresencedPresenceHeld", series: map[string]string{
		`presence_component_presence_limited_total{reason="held"}`: "0+60x30"}, at: "25m"},
	{alert: "PresencedTrackerRefused", series: map[string]string{"presence_tracker_refused_total": "0 0 3"}, at: "2m", fires: true},
	{alert: "PresencedTrackerRefused", series: map[string]string{"presence_tracker_refused_total": "3x20"}, at: "15m"},
	{alert: "PresencedNoEvents", series: map[string]string{
		"presence_tracker_events_total": "5x90", "presence_component_link_up": "1x90"}, at: "70m", fires: true},
	{alert: "PresencedNoEvents", series: map[string]string{
		"presence_tracker_events_total": "0+1x90", "presence_component_link_up": "1x90"}, at: "70m"},
	{alert: "PresencedNoEvents", series: map[string]string{
		"presence_tracker_events_total": "5x90", "presence_component_link_up": "0x90"}, at: "70m"},
}

// expand fills the {{ $labels.name }} of an annotation.
func expand(t *testing.T, s string, labels map[string]string) string {
	t.Helper()
	re := regexp.MustCompile(`\{\{\s*\$labels\.([a-zA-Z_]+)\s*\}\}`)
	out := re.ReplaceAllStringFunc(s, func(m string) string {
		return labels[re.FindStringSubmatch(m)[1]]
	})
	if strings.Contains(out, "{{") {
		t.Fatalf("annotation %q: this test only expands {{ $labels.x }}", s)
	}
	return out
}

func ruleUnitTests(t *testing.T, rf ruleFile, alerts []string) {
	t.Helper()
	type rule = struct {
		labels, annotations map[string]string
	}
	rules := map[string]rule{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			rules[r.Alert] = rule{r.Labels, r.Annotations}
		}
	}
	const job, instance = "presenced", "presenced:9464"
	tested := map[string]bool{}
	var tests []any
	for _, c := range alertCases {
		r, ok := rules[c.alert]
		if !ok {
			t.Fatalf("alertCases names %s, which alerts.yml does not have", c.alert)
		}
		if c.fires {
			tested[c.alert] = true
		}
		var input []any
		keys := make([]string, 0, len(c.series))
		for k := range c.series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, sel := range keys {
			name, rest, _ := strings.Cut(sel, "{")
			rest = strings.TrimSuffix(rest, "}")
			lbls := fmt.Sprintf(`job=%q,instance=%q`, job, instance)
			if rest != "" {
				lbls += "," + rest
			}
			input = append(input, map[string]string{"series": name + "{" + lbls + "}", "values": c.series[sel]})
		}
		exp := []any{}
		if c.fires {
			labels := map[string]string{"job": job, "instance": instance}
			for k, v := range r.labels {
				labels[k] = v
			}
			for k, v := range c.labels {
				labels[k] = v
			}
			annotations := map[string]string{}
			for k, v := range r.annotations {
				annotations[k] = expand(t, v, labels)
			}
			exp = append(exp, map[string]any{"exp_labels": labels, "exp_annotations": annotations})
		}
		tests = append(tests, map[string]any{
			"interval":     "1m",
			"input_series": input,
			"alert_rule_test": []any{map[string]any{
				"eval_time": c.at, "alertname": c.alert, "exp_alerts": exp,
			}},
		})
	}
	for _, a := range alerts {
		if !tested[a] {
			t.Errorf("alert %s has no case in alertCases where it fires", a)
		}
	}
	abs, err := filepath.Abs(filepath.Join(root, "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := yaml.Marshal(map[string]any{
		"rule_files":          []string{abs},
		"evaluation_interval": "1m",
		"tests":               tests,
	})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "alerts_test.yml")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, "test", "rules", file)
}

// The tables of MongooseIM's PostgreSQL schema that roster provisioning
// touches, as in priv/pg.sql of esl/MongooseIM at
// 475087c6e8ccc752f20a810c3c47d00f78bc637d.
const mongooseimRosterSchema = `
CREATE TABLE users (
    username varchar(250),
    server varchar(250),
    "password" text NOT NULL,
    pass_details text,
    created_at TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (server, username)
);
CREATE TABLE rosterusers (
    server varchar(250) NOT NULL,
    username varchar(250) NOT NULL,
    jid text NOT NULL,
    nick text NOT NULL,
    subscription character(1) NOT NULL,
    ask character(1) NOT NULL,
    askmessage text NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (server, username, jid)
);
CREATE TABLE rostergroups (
    server varchar(250) NOT NULL,
    username varchar(250) NOT NULL,
    jid text NOT NULL,
    grp text NOT NULL,
    PRIMARY KEY (server, username, jid, grp)
);
CREATE TABLE roster_version (
    server varchar(250),
    username varchar(250),
    version text NOT NULL,
    PRIMARY KEY (server, username)
);
`

// sqlBlocks returns the ```sql blocks of a Markdown file.
func sqlBlocks(t *testing.T, doc string) []string {
	t.Helper()
	var blocks []string
	var cur *strings.Builder
	for _, line := range strings.Split(readFile(t, doc), "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sql":
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// testDatabase returns the URL of an empty database, dropped at the end
// (internal/pgtest).
func testDatabase(t *testing.T) string {
	t.Helper()
	return pgtest.NewDB(t, pgtest.Admin(t, root), "presenced_docs")
}

// TestMongooseIMProvisioningSQL runs the SQL of setup-mongooseim.md, twice,
// on MongooseIM's roster tables, and checks the rosters it leaves.
func TestMongooseIMProvisioningSQL(t *testing.T) {
	blocks := sqlBlocks(t, "docs/setup-mongooseim.md")
	if len(blocks) == 0 {
		t.Fatal("setup-mongooseim.md has no ```sql block")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, mongooseimRosterSchema+`
INSERT INTO users (username, server, password) VALUES
  ('alice', 'example.org', 'x'), ('bob', 'example.org', 'x'),
  ('carol', 'example.org', 'x'), ('dave', 'other.example', 'x');
-- alice has a friend; bob already receives presenced's presence (to);
-- carol has it already (from).
INSERT INTO rosterusers (server, username, jid, nick, subscription, ask, askmessage) VALUES
  ('example.org', 'alice', 'bob@example.org', 'Bob', 'B', 'N', ''),
  ('example.org', 'bob', 'presence.example.org', 'P', 'T', 'N', ''),
  ('example.org', 'carol', 'presence.example.org', 'Mine', 'F', 'N', '');
`); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ { // idempotent
		for i, b := range blocks {
			if _, err := conn.Exec(ctx, b); err != nil {
				t.Fatalf("round %d, sql block %d of setup-mongooseim.md: %v\n%s", round, i+1, err, b)
			}
		}
	}
	rows, err := conn.Query(ctx, `SELECT username || '@' || server, jid, nick, subscription, ask FROM rosterusers ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var u, j, n, s, a string
		err := r.Scan(&u, &j, &n, &s, &a)
		return strings.Join([]string{u, j, n, s, a}, " "), err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"alice@example.org bob@example.org Bob B N",
		"alice@example.org presence.example.org Presence F N",
		"bob@example.org presence.example.org P B N",
		"carol@example.org presence.example.org Mine F N",
		// dave is on another domain: the recipe is for one domain.
	}
	if !slices.Equal(got, want) {
		t.Errorf("rosterusers after the recipe:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
