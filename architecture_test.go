package presenced_test

// The repository's own checks of its documentation: docs/ARCHITECTURE.md's
// table of packages must name every package there is, and say truly which
// of the project's packages each imports, so that the picture cannot drift
// from the code (it did, in six places, before this test).

import (
	"go/build"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/presenced/presenced"

// tablePackages reads the package table of docs/ARCHITECTURE.md: for each
// package named in a row's first column, the project packages named in its
// imports column (backticked names that are packages of the table).
func tablePackages(t *testing.T) map[string][]string {
	t.Helper()
	doc, err := os.ReadFile("docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "## Packages and the direction of their imports")
	if !ok {
		t.Fatal(`docs/ARCHITECTURE.md has no "## Packages and the direction of their imports"`)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	code := regexp.MustCompile("`([^`]+)`")
	rows := map[string][]string{} // package → backticked names of its imports column
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		var imports []string
		for _, m := range code.FindAllStringSubmatch(cells[3], -1) {
			imports = append(imports, m[1])
		}
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			if _, dup := rows[m[1]]; dup {
				t.Errorf("docs/ARCHITECTURE.md lists %s twice", m[1])
			}
			rows[m[1]] = imports
		}
	}
	out := map[string][]string{}
	for pkg, names := range rows {
		out[pkg] = []string{}
		for _, n := range names {
			if _, ok := rows[n]; ok {
				out[pkg] = append(out[pkg], n)
			}
		}
		slices.Sort(out[pkg])
	}
	return out
}

// packageDirs returns every directory of the repository that holds Go
// files, but the root (which holds this test only).
func packageDirs(t *testing.T) []string {
	t.Helper()
	set := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") && filepath.Dir(path) != "." {
			set[filepath.ToSlash(filepath.Dir(path))] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(set))
}

// projectImports returns the project packages that the package in dir
// imports: from its code, or, for a package of tests only (integration,
// deploy, whose code is at most a doc.go), from its tests. Files behind the integration tag count.
func projectImports(t *testing.T, dir string) []string {
	t.Helper()
	ctx := build.Default
	ctx.BuildTags = append(ctx.BuildTags, "integration")
	p, err := ctx.ImportDir(dir, 0)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	imports := p.Imports
	if len(p.GoFiles) == 0 || slices.Equal(p.GoFiles, []string{"doc.go"}) {
		imports = append(slices.Clone(p.TestImports), p.XTestImports...)
	}
	out := []string{}
	for _, imp := range imports {
		if rel, ok := strings.CutPrefix(imp, module+"/"); ok && rel != dir && !slices.Contains(out, rel) {
			out = append(out, rel)
		}
	}
	slices.Sort(out)
	return out
}

func TestArchitectureListsEveryPackage(t *testing.T) {
	table := tablePackages(t)
	dirs := packageDirs(t)
	for _, dir := range dirs {
		claimed, ok := table[dir]
		if !ok {
			t.Errorf("package %s is not in docs/ARCHITECTURE.md's table", dir)
			continue
		}
		if got := projectImports(t, dir); !slices.Equal(got, claimed) {
			t.Errorf("docs/ARCHITECTURE.md: %s imports %v of the project, the table says %v", dir, got, claimed)
		}
	}
	for pkg := range table {
		if !slices.Contains(dirs, pkg) {
			t.Errorf("docs/ARCHITECTURE.md lists %s, which is no package", pkg)
		}
	}
}
