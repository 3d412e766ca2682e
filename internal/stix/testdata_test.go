package stix

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// testdataDir returns <repo root>/../shared/testdata/stix, skipping the test
// when it is absent.
func testdataDir(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata", "stix")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("shared STIX test data not found at " + dir)
	}
	return dir
}

// testdataDirOrEmpty is testdataDir for fuzz seeding, where a missing
// directory only means fewer seeds.
func testdataDirOrEmpty() string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata", "stix")
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

// splitObjects returns the raw objects of a bundle, an envelope holding
// "objects", a bare array, or a single object.
func splitObjects(data []byte) ([]json.RawMessage, error) {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "[") {
		var arr []json.RawMessage
		err := json.Unmarshal(data, &arr)
		return arr, err
	}
	var env struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, err
	}
	if env.Objects != nil {
		return env.Objects, nil
	}
	return []json.RawMessage{data}, nil
}

type fileObject struct {
	file string // relative to the stix testdata dir
	id   string
	raw  json.RawMessage
}

func loadDir(t testing.TB, sub string) []fileObject {
	t.Helper()
	root := testdataDir(t)
	var out []fileObject
	err := filepath.WalkDir(filepath.Join(root, sub), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		objs, err := splitObjects(data)
		if err != nil {
			out = append(out, fileObject{file: rel, raw: data})
			return nil
		}
		for _, o := range objs {
			var head struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(o, &head)
			out = append(out, fileObject{file: rel, id: head.ID, raw: o})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].file < out[j].file })
	return out
}

// knownDefective lists objects under valid/ that are truly defective, with
// the reason ParseObject must give.
var knownDefective = map[string]struct{ reason, why string }{
	"relationship--1621d4d4-b67d-11e3-9670-f01faf20d111": {
		reason: `property "created": "2022-101-27T13:49:54.326Z"`,
		why:    "using-tlp2.0-green.json: created has a three-digit month (README: broken timestamp)",
	},
	"artifact--ca17bcf8-9846-5ab4-8662-75c1bf6e63ee": {
		reason: `property "payload_bin" is not valid base64`,
		why:    "python-stix2 example payload_bin ends in \"== ...\" (README: fails the base64 pattern)",
	},
	"artifact--6f437177-6e48-5cf8-9d9e-872a2bddd641": {
		reason: `property "payload_bin" is not valid base64`,
		why:    "same truncated example payload",
	},
	"artifact--4cce66f8-6eaa-53cb-85d5-3a85fca3a6c5": {
		reason: `property "payload_bin" is not valid base64`,
		why:    "same truncated example payload",
	},
}

func TestValidTestdata(t *testing.T) {
	objs := loadDir(t, "valid")
	if len(objs) < 3000 {
		t.Fatalf("loaded only %d objects from valid/", len(objs))
	}
	seen := map[string]bool{}
	for _, fo := range objs {
		obj, err := ParseObject(fo.raw)
		if d, ok := knownDefective[fo.id]; ok {
			seen[fo.id] = true
			if err == nil || !strings.Contains(err.Error(), d.reason) {
				t.Errorf("%s %s: want rejection containing %q (%s), got %v", fo.file, fo.id, d.reason, d.why, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", fo.file, err)
			continue
		}
		if obj.ID != fo.id || string(obj.Raw) != string(fo.raw) {
			t.Errorf("%s %s: got id %q, raw preserved %v", fo.file, fo.id, obj.ID, string(obj.Raw) == string(fo.raw))
		}
	}
	for id := range knownDefective {
		if !seen[id] {
			t.Errorf("known-defective object %s not found in test data", id)
		}
	}
}

func TestInvalidTestdata(t *testing.T) {
	root := testdataDir(t)
	// Every file under invalid/, with the sentinel and reason it must be
	// rejected with. The validator's test set also holds valid controls
	// (its MANIFEST says so); those are listed with a nil sentinel.
	want := map[string]struct {
		sentinel error
		reason   string
	}{
		"invalid/v21/invalid_braces.json":    {ErrNotJSON, "invalid character '<'"},
		"invalid/v21/invalid_comma.json":     {ErrNotJSON, "expected a property name"},
		"invalid/v21/invalid_identity.json":  {ErrInvalid, `missing required property "modified"`},
		"invalid/v21/invalid_timestamp.json": {ErrInvalid, "modified is before created"},
		"invalid/v21/identity_custom.json":   {ErrInvalid, `custom property "foo" must start with x_`},
		"invalid/v21/tool.json":              {ErrInvalid, `custom property "foo_value" must start with x_`},
		// Valid controls in the OASIS validator's test set.
		"invalid/v21/identity.json":         {nil, "valid control"},
		"invalid/v21/identity_warning.json": {nil, "valid control (the validator only warns on it)"},
		"invalid/v21/identity_unicode.json": {nil, "valid control: non-ASCII name"},
		"invalid/v21/tlp-amber.json":        {nil, "valid control: the standard TLP 2.0 AMBER marking"},
		// STIX 2.0 versions: wrong version, except the two that are not
		// JSON at all (no version can be read from them).
		"invalid/v20/identity.json":          {ErrWrongSpecVersion, "spec_version is missing"},
		"invalid/v20/identity_custom.json":   {ErrWrongSpecVersion, "spec_version is missing"},
		"invalid/v20/identity_warning.json":  {ErrWrongSpecVersion, "spec_version is missing"},
		"invalid/v20/invalid_identity.json":  {ErrWrongSpecVersion, "spec_version is missing"},
		"invalid/v20/invalid_timestamp.json": {ErrWrongSpecVersion, "spec_version is missing"},
		"invalid/v20/invalid_braces.json":    {ErrNotJSON, "invalid character '<'"},
		"invalid/v20/invalid_comma.json":     {ErrNotJSON, "expected a property name"},
	}
	files, _ := filepath.Glob(filepath.Join(root, "invalid", "*", "*.json"))
	if len(files) != len(want) {
		t.Errorf("found %d files under invalid/, table has %d", len(files), len(want))
	}
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		w, ok := want[rel]
		if !ok {
			t.Errorf("%s: not in the table", rel)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		objs, jerr := splitObjects(data)
		if jerr != nil {
			objs = []json.RawMessage{data}
		}
		for _, o := range objs {
			_, err := ParseObject(o)
			switch {
			case w.sentinel == nil && err != nil:
				t.Errorf("%s (%s): rejected: %v", rel, w.reason, err)
			case w.sentinel != nil && !errors.Is(err, w.sentinel):
				t.Errorf("%s: want %v, got %v", rel, w.sentinel, err)
			case w.sentinel != nil && !strings.Contains(err.Error(), w.reason):
				t.Errorf("%s: want reason containing %q, got %q", rel, w.reason, err)
			}
		}
	}
}
