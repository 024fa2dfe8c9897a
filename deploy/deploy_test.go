package deploy

// Checks of the deployment files without a container engine, a file per
// thing deployed:
//
//   - deploy_test.go: docker-compose.yml through the Compose
//     Specification's own Go loader (compose-go);
//   - dockerfile_test.go: the Dockerfile and .dockerignore, by reading them;
//   - mongooseim_test.go: MongooseIM's configuration, filled in with
//     deploy/mongooseim/render.sh and parsed as TOML;
//   - prometheus_test.go (build tag integration: it needs promtool): the
//     Prometheus configuration and alert rules with promtool (check config,
//     check rules and a rule unit test per alert), and the metric names and
//     label values of the rules against the Go sources;
//   - provisioning_test.go (build tag integration: it needs PostgreSQL):
//     the provisioning SQL of docs/setup-mongooseim.md against a real
//     PostgreSQL.
//
// What this cannot check: that the images and tags exist, that the
// containers start and talk to each other, and that MongooseIM accepts its
// configuration (no MongooseIM runs here).

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
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
