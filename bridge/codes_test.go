package bridge

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCodesAreDocumented reads the bridge's source and fails for an error
// code or close code it can send that the docs do not name: every code of
// an errorFrame or apiError (stream error frames, and REST), of the HTTP
// errors of the stream's upgrade (docs/websocket.md), of every writeError
// (docs/api.md), and every close code: the bridge's close* constants and
// wsframe's Close* ones, which its Reader reports (1005 is never sent).
func TestCodesAreDocumented(t *testing.T) {
	fset := token.NewFileSet()
	stream, rest := map[string]bool{}, map[string]bool{}
	closeConsts := map[string]ast.Expr{} // name (wsframe.X for wsframe's) → value
	// The functions whose writeError answers a stream request before the
	// upgrade.
	upgrade := []string{"stream", "authenticate", "tooMany", "upgradeError"}
	parse := func(dir string, prefix string) []*ast.File {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		var out []*ast.File
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if strings.HasPrefix(n.Name, prefix) && n.Name != prefix && i < len(vs.Values) { // wsframe.Close is an opcode
							closeConsts[strings.TrimPrefix(dir, "../internal/")+n.Name] = vs.Values[i]
						}
					}
				}
			}
			out = append(out, f)
		}
		return out
	}
	lit := func(e ast.Expr) string {
		if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
			s, _ := strconv.Unquote(b.Value)
			return s
		}
		return ""
	}
	for _, f := range parse(".", "close") {
		for _, d := range f.Decls {
			fn, _ := d.(*ast.FuncDecl)
			ast.Inspect(d, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					id, _ := n.Type.(*ast.Ident)
					switch {
					case id == nil:
					case id.Name == "errorFrame":
						for _, e := range n.Elts {
							if kv, ok := e.(*ast.KeyValueExpr); ok && kv.Key.(*ast.Ident).Name == "Code" && lit(kv.Value) != "" {
								stream[lit(kv.Value)] = true
							}
						}
					case id.Name == "apiError" && len(n.Elts) == 3:
						if c := lit(n.Elts[1]); c != "" {
							stream[c], rest[c] = true, true
						}
					}
				case *ast.CallExpr:
					if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "writeError" && len(n.Args) == 4 {
						if c := lit(n.Args[2]); c != "" {
							rest[c] = true
							if fn != nil && slices.Contains(upgrade, fn.Name.Name) {
								stream[c] = true
							}
						}
					}
				}
				return true
			})
		}
	}
	parse("../internal/wsframe", "Close")
	value := func(e ast.Expr) int {
		if sel, ok := e.(*ast.SelectorExpr); ok {
			e = closeConsts["wsframe"+sel.Sel.Name]
		}
		b, ok := e.(*ast.BasicLit)
		if !ok {
			t.Fatalf("close code %T is not a number", e)
		}
		v, _ := strconv.Atoi(b.Value)
		return v
	}
	closes := map[int]bool{}
	for name, e := range closeConsts {
		if name != "wsframeCloseNoStatus" {
			closes[value(e)] = true
		}
	}
	if len(stream) < 10 || len(rest) < 10 || len(closes) < 6 {
		t.Fatalf("found too few codes (stream %d, REST %d, close %d): the scan is broken", len(stream), len(rest), len(closes))
	}

	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join("..", "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	ws, api := read("websocket.md"), read("api.md")
	// named: as `code`, or at the end of a code span such as `400 code`.
	named := func(doc, code string) bool {
		return strings.Contains(doc, "`"+code+"`") || strings.Contains(doc, " "+code+"`")
	}
	for c := range stream {
		if !named(ws, c) {
			t.Errorf("docs/websocket.md does not name the error code `%s`", c)
		}
	}
	for c := range rest {
		if !named(api, c) {
			t.Errorf("docs/api.md does not name the error code `%s`", c)
		}
	}
	for c := range closes {
		if !strings.Contains(ws, "| "+strconv.Itoa(c)+" |") {
			t.Errorf("docs/websocket.md has no row for the close code %d", c)
		}
	}
}
