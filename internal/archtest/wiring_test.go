package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// surfacePackages turn HTTP into calls on services; internal/server
// builds those services once and hands them over.
var surfacePackages = []string{"internal/api", "internal/taxii", "internal/web", "internal/ledgerhttp"}

// serviceConstructors are the domain services a surface must be handed,
// never build (by import path, without the module prefix).
var serviceConstructors = []string{"internal/exchange", "internal/party", "internal/escrow", "internal/request",
	"internal/matching", "internal/report", "internal/verification"}

// wiringViolations lists, for one Go source file, every place it holds a
// whole store (store.Store or store.Handle) or builds a service (calls a
// domain package's New).
func wiringViolations(fset *token.FileSet, f *ast.File) []string {
	names := map[string]string{} // local import name → path without module prefix
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		path = strings.TrimPrefix(path, module)
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = path
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && names[x.Name] == "internal/store" && (n.Sel.Name == "Store" || n.Sel.Name == "Handle") {
				out = append(out, fset.Position(n.Pos()).String()+": holds a store."+n.Sel.Name+"; take the services it needs instead")
			}
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "New" {
				if x, ok := sel.X.(*ast.Ident); ok && under(names[x.Name], serviceConstructors...) {
					out = append(out, fset.Position(n.Pos()).String()+": builds a "+x.Name+" service; internal/server builds it once and hands it over")
				}
			}
		}
		return true
	})
	return out
}

// TestSurfacesReceiveServices: api, taxii, web and ledgerhttp never hold a
// store nor build a domain service (their tests may).
func TestSurfacesReceiveServices(t *testing.T) {
	for _, pkg := range surfacePackages {
		dir := filepath.Join("../..", pkg)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		files := 0
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files++
			for _, v := range wiringViolations(fset, f) {
				t.Errorf("%s: %s", pkg, v)
			}
		}
		if files == 0 {
			t.Errorf("%s: no Go files read; did the package move?", pkg)
		}
	}
}

// TestWiringRulesCatchAViolation makes sure the check can fail: the code
// api held before the server handed it services is refused, and a handed
// service allowed.
func TestWiringRulesCatchAViolation(t *testing.T) {
	for _, c := range []struct {
		src  string
		want int
	}{
		{`package api
import ("github.com/parley-cti/parley/internal/store"; "github.com/parley-cti/parley/internal/escrow")
type Server struct{ st store.Store }
func (s *Server) handovers() *escrow.Service { return escrow.New(s.st, nil) }`, 2},
		{`package api
import st "github.com/parley-cti/parley/internal/store"
func f(h st.Handle) {}`, 1},
		{`package api
import ("github.com/parley-cti/parley/internal/store"; "github.com/parley-cti/parley/internal/escrow")
type Server struct{ h *escrow.Service }
func view(x store.Handover) {}`, 0},
	} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "x.go", c.src, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := wiringViolations(fset, f); len(got) != c.want {
			t.Errorf("%d violations %q; want %d in\n%s", len(got), got, c.want, c.src)
		}
	}
}
