package archtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestArchitectureMapMatchesFiles: docs/architecture.md's map names, for
// every package, exactly the Go files it holds outside tests: a file added,
// renamed or removed without the map following fails here.
func TestArchitectureMapMatchesFiles(t *testing.T) {
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	mapped, err := parseMap(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	onDisk := sourceFiles(t, "../..")
	for dir, files := range onDisk {
		got, ok := mapped[dir]
		if !ok {
			t.Errorf("docs/architecture.md's map has no row for %s (%s)", dir, strings.Join(files, " "))
			continue
		}
		for _, f := range files {
			if !slices.Contains(got, f) {
				t.Errorf("the map's row for %s does not name %s", dir, f)
			}
		}
		for _, f := range got {
			if !slices.Contains(files, f) {
				t.Errorf("the map's row for %s names %s, which is not there", dir, f)
			}
		}
	}
	for dir := range mapped {
		if _, ok := onDisk[dir]; !ok {
			t.Errorf("the map has a row for %s, which holds no Go file outside tests", dir)
		}
	}
}

var (
	mapRow  = regexp.MustCompile("^\\| `([a-z0-9/_]+)` \\|(.*)\\|$")
	goFile  = regexp.MustCompile("`([a-z0-9_]+\\.go)`")
	mapHead = "## Map:"
)

// parseMap reads the map section's rows: package → the .go files named.
func parseMap(doc string) (map[string][]string, error) {
	i := strings.Index(doc, mapHead)
	if i < 0 {
		return nil, os.ErrNotExist
	}
	out := map[string][]string{}
	for _, line := range strings.Split(doc[i:], "\n") {
		m := mapRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, f := range goFile.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(out[m[1]], f[1]) {
				out[m[1]] = append(out[m[1]], f[1])
			}
		}
	}
	return out, nil
}

// sourceFiles lists, by directory, the non-test Go files under cmd and
// internal.
func sourceFiles(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, top := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(d.Name(), ".go") || strings.HasSuffix(d.Name(), "_test.go") {
				return nil
			}
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			out[rel] = append(out[rel], d.Name())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestMapParserCatchesDrift: the check can fail — a row missing a file and
// a row naming one that does not exist are both reported by the parser's
// comparison.
func TestMapParserCatchesDrift(t *testing.T) {
	doc := "## Map: x\n| package | files |\n|---|---|\n| `internal/a` | `a.go` the a; `gone.go` |\n"
	m, err := parseMap(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m["internal/a"], []string{"a.go", "gone.go"}) || len(m) != 1 {
		t.Fatalf("parsed %v", m)
	}
	if _, err := parseMap("no map here"); err == nil {
		t.Fatal("a document without the map parsed")
	}
}
