package deploy

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

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
