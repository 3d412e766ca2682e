package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestImportMedallionSmall imports a medallion data file written for this
// test (testdata/medallion/small.json) and reads it back through TAXII.
func TestImportMedallionSmall(t *testing.T) {
	checkMedallionImport(t, filepath.Join("testdata", "medallion", "small.json"))
}

// TestImportMedallionDefaultData imports the OASIS reference server's own
// data file, ../shared/testdata/taxii/default_data.json.
func TestImportMedallionDefaultData(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "..", "shared", "testdata", "taxii", "default_data.json")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("medallion's default_data.json is not available (%v); TestImportMedallionSmall covers the format", err)
	}
	checkMedallionImport(t, path)
}

// The file as the test reads it, independently of package medallion.
type medallionFile map[string]json.RawMessage

type medallionCollection struct {
	ID          string            `json:"id"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	CanRead     bool              `json:"can_read"`
	CanWrite    bool              `json:"can_write"`
	Objects     []json.RawMessage `json:"objects"`
	Manifest    []struct {
		ID, Version, DateAdded, MediaType string
	} `json:"-"`
	RawManifest []map[string]string `json:"manifest"`
}

type wantObject struct {
	value     any
	dateAdded time.Time
}

// checkMedallionImport imports path for a party "alpha", then checks
// through TAXII that every collection alpha may see has the file's id,
// title, description and flags, and that every STIX 2.1 object version
// reads back equal to the file's with the manifest's date_added; the
// file's STIX 2.0 objects are reported refused, nothing else is.
func checkMedallionImport(t *testing.T, path string) {
	ctx := context.Background()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file medallionFile
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	var colls []medallionCollection
	for name, r := range file {
		if name == "/discovery" {
			continue
		}
		var root struct {
			Collections []medallionCollection `json:"collections"`
		}
		if err := json.Unmarshal(r, &root); err != nil {
			t.Fatal(err)
		}
		colls = append(colls, root.Collections...)
	}

	dir := filepath.Join(t.TempDir(), "data")
	var out, errb lockedBuf
	if code := run(ctx, []string{"party", "add", "alpha", "--data", dir, "--json"}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	var alpha struct{ Token string }
	json.Unmarshal([]byte(out.String()), &alpha)
	out.b.Reset()
	if code := run(ctx, []string{"import", "--from-medallion", path, "--party", "alpha", "--data", dir, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("import: exit %d: %s", code, errb.String())
	}
	var reports []struct {
		ID      string   `json:"id"`
		Added   int      `json:"added"`
		Refused []string `json:"refused"`
	}
	if err := json.Unmarshal([]byte(out.String()), &reports); err != nil {
		t.Fatalf("import output %q: %v", out.String(), err)
	}
	if len(reports) != len(colls) {
		t.Fatalf("import reported %d collections, the file has %d", len(reports), len(colls))
	}
	// Importing again is refused: the collections exist.
	if code := run(ctx, []string{"import", "--from-medallion", path, "--data", dir}, &out, &errb); code == 0 {
		t.Errorf("a second import of the same file succeeded")
	}

	_, base := testServer(t, dir)
	get := func(u string, v any) {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+alpha.Token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d", u, res.StatusCode)
		}
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var list struct {
		Collections []struct {
			ID, Title, Description string
			CanRead                bool `json:"can_read"`
			CanWrite               bool `json:"can_write"`
		}
	}
	get(base+"/taxii2/shared/collections/", &list)
	visible := map[string]int{}
	for i, c := range list.Collections {
		visible[c.ID] = i
	}
	objectsSeen := 0
	for _, c := range colls {
		i, ok := visible[c.ID]
		if ok != (c.CanRead || c.CanWrite) {
			t.Errorf("collection %s (can_read %v, can_write %v): visible to alpha %v", c.ID, c.CanRead, c.CanWrite, ok)
			continue
		}
		var report = reports[0]
		for _, r := range reports {
			if r.ID == c.ID {
				report = r
			}
		}
		// What should be stored: every STIX 2.1 version, at its date_added.
		want := map[string]wantObject{}
		refused := 0
		for _, o := range c.Objects {
			var h struct{ ID, Modified, Created, SpecVersion string }
			var v any
			json.Unmarshal(o, &h)
			json.Unmarshal(o, &v)
			version := h.Modified
			if version == "" {
				version = h.Created
			}
			var added time.Time
			for _, m := range c.RawManifest {
				if m["id"] == h.ID && m["version"] == version {
					added, _ = time.Parse(time.RFC3339Nano, m["date_added"])
				}
			}
			if v.(map[string]any)["spec_version"] != "2.1" {
				refused++
				continue
			}
			want[h.ID+"@"+version] = wantObject{v, added}
		}
		if report.ID != c.ID || report.Added != len(want) || len(report.Refused) != refused {
			t.Errorf("collection %s: import reported %+v; want %d added and %d refused", c.ID, report, len(want), refused)
		}
		if !ok {
			continue
		}
		got := list.Collections[i]
		if got.Title != c.Title || got.Description != c.Description || got.CanRead != c.CanRead || got.CanWrite != c.CanWrite {
			t.Errorf("collection %s reads back as %+v; the file has %q %q %v %v", c.ID, got, c.Title, c.Description, c.CanRead, c.CanWrite)
		}
		if !c.CanRead {
			continue
		}
		coll := base + "/taxii2/shared/collections/" + url.PathEscape(c.ID)
		var env struct {
			More    bool
			Objects []json.RawMessage
		}
		get(coll+"/objects/?match[version]=all", &env)
		var manifest struct {
			Objects []struct {
				ID, Version string
				DateAdded   string `json:"date_added"`
			}
		}
		get(coll+"/manifest/?match[version]=all", &manifest)
		if env.More || len(env.Objects) != len(want) || len(manifest.Objects) != len(want) {
			t.Errorf("collection %s: %d objects and %d manifest records read back, want %d", c.ID, len(env.Objects), len(manifest.Objects), len(want))
		}
		for k, o := range env.Objects {
			var v any
			json.Unmarshal(o, &v)
			m := v.(map[string]any)
			version, _ := m["modified"].(string)
			if version == "" {
				version, _ = m["created"].(string)
			}
			w, ok := want[m["id"].(string)+"@"+version]
			if !ok || !reflect.DeepEqual(v, w.value) {
				t.Errorf("collection %s: object %s reads back as %s, not as in the file", c.ID, m["id"], o)
				continue
			}
			objectsSeen++
			if k < len(manifest.Objects) {
				rec := manifest.Objects[k]
				added, err := time.Parse(time.RFC3339Nano, rec.DateAdded)
				if rec.ID != m["id"] || err != nil || !added.Equal(w.dateAdded) {
					t.Errorf("collection %s: manifest record %+v; want %s added %s", c.ID, rec, m["id"], w.dateAdded.Format(time.RFC3339Nano))
				}
			}
		}
	}
	if objectsSeen == 0 {
		t.Fatalf("no object was read back from %s", path)
	}
	// Collections alpha cannot see were imported too.
	out.b.Reset()
	if code := run(ctx, []string{"collection", "list", "--data", dir}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	for _, c := range colls {
		if !strings.Contains(out.String(), c.ID) {
			t.Errorf("collection %s missing from collection list:\n%s", c.ID, out.String())
		}
	}
	t.Logf("%d collections, %d object versions read back identical", len(colls), objectsSeen)
}
