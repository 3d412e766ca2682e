// Package archtest holds the rules of docs/architecture.md as tests: it reads
// the import graph with `go list` and fails on an arrow the architecture
// forbids. It has no code of its own.
package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/parley-cti/parley/"

// graph returns, for every non-test package of the module, the packages it
// imports (module packages without the module prefix).
func graph(t *testing.T) map[string][]string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	g := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(f[0], module)
		var imps []string
		for _, imp := range f[1:] {
			imps = append(imps, strings.TrimPrefix(imp, module))
		}
		g[pkg] = imps
	}
	if len(g) < 10 {
		t.Fatalf("go list found only %d packages; is the test running inside the module?", len(g))
	}
	return g
}

func under(pkg string, roots ...string) bool {
	for _, r := range roots {
		if pkg == r || strings.HasPrefix(pkg, r+"/") {
			return true
		}
	}
	return false
}

// storePackages may talk to a database; nothing else may.
var storePackages = []string{"internal/store/sqlite", "internal/store/postgres", "internal/store/storecopy"}

// domain packages decide; they never speak HTTP nor import a surface.
var domain = []string{
	"internal/stix", "internal/canonjson", "internal/fault", "internal/agreement", "internal/exchange", "internal/escrow",
	"internal/request", "internal/matching", "internal/match", "internal/ledger", "internal/party", "internal/store",
}

var surfaces = []string{"internal/taxii", "internal/api", "internal/web", "internal/ledgerhttp", "internal/server", "internal/client", "internal/node"}

var databaseImports = []string{"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/lib/pq"}

// harnesses are test drivers that start whole servers; they may choose a backend.
var harnesses = []string{"internal/tests/e2e", "internal/tests/crash", "internal/tests/multiinstance", "internal/tests/scriptcmd", "internal/tests/nodescripts", "internal/bench"}

// partySide is what a party runs on its own machine to check the server;
// it must not be built from the server's parts.
var partySide = []string{"internal/audit"}

// serverSide holds the server's decisions, storage and surfaces.
var serverSide = []string{"internal/server", "internal/api", "internal/taxii", "internal/web", "internal/ledgerhttp", "internal/store",
	"internal/exchange", "internal/escrow", "internal/request", "internal/matching", "internal/report",
	"internal/verification", "internal/metrics", "internal/authlimit", "internal/health", "internal/node"}

// violation says why pkg may not import imp, or "" when it may.
func violation(pkg, imp string) string {
	switch {
	case under(imp, databaseImports...) && !under(pkg, storePackages...):
		return "only the store packages may talk to a database"
	case under(pkg, domain...) && (under(imp, surfaces...) || imp == "net/http"):
		return "domain packages never import the HTTP layer"
	case under(pkg, "internal/canonjson", "internal/fault") && strings.HasPrefix(imp, "internal/"):
		return "it must import nothing of parley"
	case pkg == "internal/wire" && strings.HasPrefix(imp, "internal/"):
		return "the wire names are shared by server and client; it must import nothing of parley"
	case pkg == "internal/jsonscan" && strings.HasPrefix(imp, "internal/"):
		return "the JSON scanner is shared by server and client; it must import nothing of parley"
	case under(pkg, "internal/stix") && strings.HasPrefix(imp, "internal/") && imp != "internal/canonjson" && imp != "internal/fault":
		return "it may import only internal/canonjson (RFC 8785 for its fingerprints) and internal/fault (the error vocabulary) of parley"
	case under(pkg, "internal/ledger") && !under(pkg, "internal/ledger/ledgertest") && under(imp, "internal/store"):
		return "the ledger defines its own store interface; the arrow runs store → ledger"
	case pkg == "internal/store" && strings.HasPrefix(imp, "internal/") && imp != "internal/ledger" && imp != "internal/fault":
		return "the store interfaces may import only internal/ledger and internal/fault"
	case under(pkg, "internal/client") && under(imp, "internal/exchange", "internal/escrow", "internal/request",
		"internal/matching", "internal/store", "internal/server", "internal/taxii", "internal/api", "internal/web"):
		return "the client never links server-side packages"
	case under(pkg, partySide...) && under(imp, serverSide...):
		return "party-side verification never links server-side packages"
	case under(imp, "internal/store/sqlite", "internal/store/postgres") &&
		!under(pkg, "internal/server", "cmd/parley", "internal/store") && !under(pkg, harnesses...):
		return "only internal/server and cmd/parley choose a backend"
	}
	return ""
}

func TestImportRules(t *testing.T) {
	for pkg, imps := range graph(t) {
		for _, imp := range imps {
			if why := violation(pkg, imp); why != "" {
				t.Errorf("%s imports %s: %s", pkg, imp, why)
			}
		}
	}
}

// TestRulesCatchAViolation makes sure the rules can fail: one forbidden
// arrow of each kind must be refused, and a few allowed ones allowed.
func TestRulesCatchAViolation(t *testing.T) {
	for _, c := range []struct {
		pkg, imp string
		bad      bool
	}{
		{"internal/exchange", "database/sql", true},
		{"internal/web", "github.com/jackc/pgx/v5", true},
		{"internal/escrow", "net/http", true},
		{"internal/request", "internal/api", true},
		{"internal/stix", "internal/ledger", true},
		{"internal/wire", "internal/api", true},
		{"internal/jsonscan", "internal/fault", true},
		{"internal/taxii", "internal/jsonscan", false},
		{"internal/client", "internal/jsonscan", false},
		{"internal/canonjson", "internal/stix", true},
		{"internal/stix", "internal/canonjson", false},
		{"internal/stix", "internal/fault", false},
		{"internal/store", "internal/fault", false},
		{"internal/fault", "internal/stix", true},
		{"internal/ledger", "internal/store", true},
		{"internal/store", "internal/exchange", true},
		{"internal/client", "internal/store", true},
		{"internal/api", "internal/store/sqlite", true},
		{"internal/audit", "internal/exchange", true},
		{"internal/audit", "internal/store", true},
		{"internal/audit", "internal/ledger", false},
		{"internal/audit", "internal/ledgerhttp", true},
		{"internal/audit", "internal/client", false},
		{"internal/store/sqlite", "database/sql", false},
		{"internal/server", "internal/store/postgres", false},
		{"internal/exchange", "internal/store", false},
		{"internal/store", "internal/ledger", false},
	} {
		if got := violation(c.pkg, c.imp) != ""; got != c.bad {
			t.Errorf("%s → %s: refused=%v, want %v", c.pkg, c.imp, got, c.bad)
		}
	}
}

// TestServerDoesNotLinkTheClient: the server binary's packages (everything
// internal/server reaches) never import the party-side HTTP client; only
// the CLI in cmd/parley joins the two.
func TestServerDoesNotLinkTheClient(t *testing.T) {
	g := graph(t)
	if path := reaches(g, "internal/server", "internal/client"); path != nil {
		t.Errorf("internal/server links internal/client: %s", strings.Join(path, " → "))
	}
	// The check itself can fail: a graph with the arrow is refused.
	bad := map[string][]string{"internal/server": {"internal/audit"}, "internal/audit": {"internal/client/x"}}
	if reaches(bad, "internal/server", "internal/client") == nil {
		t.Error("reaches missed server → audit → client")
	}
}

// reaches returns an import path from one package to a package under
// root, or nil when there is none.
func reaches(g map[string][]string, from, root string) []string {
	seen := map[string]bool{}
	var walk func(pkg string) []string
	walk = func(pkg string) []string {
		if under(pkg, root) {
			return []string{pkg}
		}
		if seen[pkg] {
			return nil
		}
		seen[pkg] = true
		for _, imp := range g[pkg] {
			if p := walk(imp); p != nil {
				return append([]string{pkg}, p...)
			}
		}
		return nil
	}
	return walk(from)
}

// TestVerificationLinksNoServer: what `parley verify` runs (the party-side
// packages) reaches no server-side package, even through another package.
func TestVerificationLinksNoServer(t *testing.T) {
	g := graph(t)
	for _, from := range partySide {
		for _, to := range serverSide {
			if path := reaches(g, from, to); path != nil {
				t.Errorf("%s links %s: %s", from, to, strings.Join(path, " → "))
			}
		}
	}
}
