package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// medallionCollection is the collection of medallion's default_data.json
// that holds objects.
const medallionCollection = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"

// startMedallion runs the OASIS reference TAXII 2.1 server (medallion) on
// a loopback port over a copy of its default_data.json, with pages of at
// most three objects, and returns its base URL. It skips the test, saying
// why, unless PARLEY_TEST_MEDALLION names a directory holding medallion's
// source (its `medallion` package; version 3.0.0 needs only flask,
// Flask-HTTPAuth, pytz and six) and the Python (PARLEY_TEST_PYTHON, default
// /usr/bin/python3) can import it, and unless ../shared/testdata is there.
func startMedallion(t *testing.T) string {
	t.Helper()
	src := os.Getenv("PARLEY_TEST_MEDALLION")
	if src == "" {
		t.Skip("PARLEY_TEST_MEDALLION is unset: set it to a directory holding medallion's source (the OASIS reference TAXII server) to run this test")
	}
	python := os.Getenv("PARLEY_TEST_PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	probe := exec.Command(python, "-c", "import flask, flask_httpauth, pytz, six, medallion.scripts.run")
	probe.Env = append(os.Environ(), "PYTHONPATH="+src)
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("%s cannot run medallion from %s: %v\n%s", python, src, err, out)
	}
	fixture := filepath.Join("..", "..", "..", "..", "shared", "testdata", "taxii", "default_data.json")
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Skipf("medallion's default_data.json is not available (%v)", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `{"backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend", "filename": "` +
		filepath.Join(dir, "data.json") + `"}, "users": {"admin": "Password0"}, "taxii": {"max_page_size": 3}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(python, "-m", "medallion.scripts.run", "--host", "127.0.0.1", "--port", fmt.Sprint(port), filepath.Join(dir, "config.json"))
	cmd.Env = append(os.Environ(), "PYTHONPATH="+src)
	logf, err := os.Create(filepath.Join(dir, "medallion.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; ; i++ {
		req, _ := http.NewRequest(http.MethodGet, base+"/taxii2/", nil)
		req.SetBasicAuth("admin", "Password0")
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if i == 300 {
			log, _ := os.ReadFile(filepath.Join(dir, "medallion.log"))
			t.Fatalf("medallion did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A mirror from the OASIS reference TAXII server: HTTP Basic, pages of
// three with medallion's own next tokens; its in-scope objects arrive in
// the party's contributions, the rest is refused and counted.
func TestMirrorFromMedallion(t *testing.T) {
	base := startMedallion(t)
	// What medallion serves by default: the last version of each object.
	var file map[string]json.RawMessage
	raw, _ := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "testdata", "taxii", "default_data.json"))
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	var root struct {
		Collections []struct {
			ID      string `json:"id"`
			Objects []struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"objects"`
		} `json:"collections"`
	}
	if err := json.Unmarshal(file["trustgroup1"], &root); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, c := range root.Collections {
		if c.ID == medallionCollection {
			for _, o := range c.Objects {
				ids[o.ID] = o.Type
			}
		}
	}
	var inScope []string
	for id, typ := range ids {
		if typ == "indicator" || typ == "malware" {
			inScope = append(inScope, id)
		}
	}
	sort.Strings(inScope)
	if len(ids) < 4 || len(inScope) == 0 {
		t.Fatalf("the fixture changed: %d objects, %d in scope", len(ids), len(inScope))
	}

	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "beta")
	d := Document(t, a, b, nil)
	Activate(t, a, b, d)
	m, err := a.C.AddMirror(ctx, client.MirrorSpec{Agreement: d.ID, SourceURL: base + "/trustgroup1/", Collection: medallionCollection,
		User: "admin", Token: "Password0"})
	if err != nil {
		t.Fatal(err)
	}
	m = waitMirror(t, a, m.ID, "caught up with medallion", func(m *client.Mirror) bool {
		return m.Accepted+m.Refused == int64(len(ids)) && !m.Paging
	})
	if m.Accepted != int64(len(inScope)) || m.Failures != 0 || m.Pages < 2 || m.AddedAfter == "" {
		t.Fatalf("after the pull: %+v; want %d accepted (%v) over several pages", m, len(inScope), inScope)
	}
	t.Logf("from medallion: %d accepted, %d refused (last: %s), %d pages, resumes after %s", m.Accepted, m.Refused, m.LastRefusal, m.Pages, m.AddedAfter)
	own, _ := Collections(t, a, d.ID)
	got := ReadAll(t, a, d.ID, own, 100)
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(inScope, " ") {
		t.Fatalf("alpha's contributions: %v\nwant medallion's in-scope objects %v", got, inScope)
	}
	// Asked again later, medallion has nothing new after the cursor.
	before := m.Pages
	m = waitMirror(t, a, m.ID, "asked medallion again", func(m *client.Mirror) bool { return m.Pages > before })
	if m.Accepted != int64(len(inScope)) || m.Failures != 0 {
		t.Fatalf("a second session pulled again: %+v", m)
	}
}
