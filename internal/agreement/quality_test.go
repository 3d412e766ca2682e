package agreement

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/stix"
)

func TestTrivialName(t *testing.T) {
	for _, n := range []string{"", " ", "x", "X", "xxxx", "  aaaa ", "----", "???", "test", "Unknown", " N/A ", "lorem  ipsum", "12345", "…"} {
		if !TrivialName(n) {
			t.Errorf("%q is not trivial", n)
		}
	}
	for _, n := range []string{"APT28", "Lazarus Group", "ACME Bank", "Emotet", "xy", "ab", "Nöel"} {
		if TrivialName(n) {
			t.Errorf("%q is trivial", n)
		}
	}
}

// qualityDoc returns the example document with reciprocity.quality set.
func qualityDoc(t *testing.T, quality string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(exampleRaw(t), &m); err != nil {
		t.Fatal(err)
	}
	var q any
	if err := json.Unmarshal([]byte(quality), &q); err != nil {
		t.Fatal(err)
	}
	m["reciprocity"].(map[string]any)["quality"] = q
	raw, _ := json.Marshal(m)
	return raw
}

func TestQualityFloorInDocument(t *testing.T) {
	plain, err := ParseDocument(exampleRaw(t))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain.Canonical(), []byte("quality")) {
		t.Fatal("a document without floors encodes a quality member")
	}
	types := plain.Scope.Types
	q := fmt.Sprintf(`{%q: {"name_min_length": 4}, %q: {"requires": ["description", "name"]}}`, types[0], types[len(types)-1])
	d, err := ParseDocument(qualityDoc(t, q))
	if err != nil {
		t.Fatal(err)
	}
	if d.Reciprocity.Quality[types[0]].NameMinLength != 4 || len(d.Reciprocity.Quality[types[len(types)-1]].Requires) != 2 {
		t.Fatalf("floors %+v", d.Reciprocity.Quality)
	}
	again, err := ParseDocument(d.Canonical())
	if err != nil || again.Hash() != d.Hash() {
		t.Fatalf("round trip: %v", err)
	}
	if d.Hash() == plain.Hash() {
		t.Fatal("the floors are not covered by the hash")
	}
	for _, tc := range []struct{ quality, want string }{
		{`{"not-in-scope": {"name_min_length": 3}}`, `"not-in-scope" is not in scope.types`},
		{fmt.Sprintf(`{%q: {}}`, types[0]), "sets no rule"},
		{fmt.Sprintf(`{%q: {"name_min_length": -1}}`, types[0]), "name_min_length must be between 0 and 256"},
		{fmt.Sprintf(`{%q: {"name_min_length": 3, "colour": "red"}}`, types[0]), `unknown field "reciprocity.quality.` + types[0] + `.colour"`},
		{fmt.Sprintf(`{%q: {"requires": "name"}}`, types[0]), "requires must be an array"},
		{fmt.Sprintf(`{%q: {"requires": ["name", "name"]}}`, types[0]), `lists "name" twice`},
		{`[]`, "reciprocity.quality must be an object"},
	} {
		if _, err := ParseDocument(qualityDoc(t, tc.quality)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("quality %s: %v, want an error containing %q", tc.quality, err, tc.want)
		}
	}
}

func TestBelowFloor(t *testing.T) {
	obj := func(typ, extra string) *stix.Object {
		raw := fmt.Sprintf(`{"type":%q,"spec_version":"2.1","id":"%s--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z"%s}`, typ, typ, extra)
		o, err := stix.ParseObject([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return o
	}
	none := Terms{}
	floors := Terms{Quality: map[string]QualityFloor{"threat-actor": {NameMinLength: 5}, "malware": {Requires: []string{"description"}}}}
	for _, tc := range []struct {
		terms Terms
		obj   *stix.Object
		want  string // "" when it earns
	}{
		{none, obj("identity", `,"name":"x","identity_class":"group"`), "names nothing"},
		{none, obj("identity", `,"name":"ACME Bank","identity_class":"organization"`), ""},
		{none, obj("threat-actor", `,"name":"zzzz"`), "names nothing"},
		{none, obj("threat-actor", `,"name":"Fin7"`), ""},
		{floors, obj("threat-actor", `,"name":"Fin7"`), "shorter than the 5 characters"},
		{floors, obj("threat-actor", `,"name":"Wizard Spider"`), ""},
		{floors, obj("malware", `,"is_family":false`), "needs description"},
		{floors, obj("malware", `,"is_family":false,"description":"  "`), "needs description"},
		{floors, obj("malware", `,"is_family":false,"description":"Loader seen in phishing"`), ""},
		{none, obj("indicator", `,"name":"x","pattern":"[ipv4-addr:value = '192.0.2.1']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"`), ""},
	} {
		got := BelowFloor(tc.terms, tc.obj)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: BelowFloor = %q, want %q", tc.obj.Raw, got, tc.want)
		}
	}
}
