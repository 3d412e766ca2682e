package stix

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/parley-cti/parley/internal/canonjson"
)

func mustFingerprint(t *testing.T, raw string) Fingerprint {
	t.Helper()
	obj, err := ParseObject([]byte(raw))
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	fp, err := ContentFingerprint([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if fp != obj.Fingerprint {
		t.Fatalf("ContentFingerprint and ParseObject disagree on %s", raw)
	}
	return fp
}

const fpIdentity = `{"type":"identity","spec_version":"2.1","id":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"ACME Bank","identity_class":"organization","sectors":["financial-services","technology"],"description":"Retail bank"}`

func TestFingerprintSameContent(t *testing.T) {
	base := mustFingerprint(t, fpIdentity)
	for name, variant := range map[string]string{
		"new id and timestamps": `{"type":"identity","spec_version":"2.1","id":"identity--0b3c8a4e-1e7f-4c62-9d1f-6a5b1f0f6c11","created":"2026-05-01T10:00:00.000Z","modified":"2026-06-01T10:00:00.123Z","name":"ACME Bank","identity_class":"organization","sectors":["financial-services","technology"],"description":"Retail bank"}`,
		"key order and white space": `{ "description" : "Retail bank", "name":"ACME Bank","sectors":["financial-services","technology"],"identity_class":"organization",
			"type":"identity","id":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","spec_version":"2.1","modified":"2026-01-01T00:00:00.000Z","created":"2026-01-01T00:00:00.000Z"}`,
		"white space and case inside strings": `{"type":"identity","spec_version":"2.1","id":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"  acme   BANK ","identity_class":"organization","sectors":["financial-services","technology"],"description":"Retail\tbank\n"}`,
		"list order and repeats":              `{"type":"identity","spec_version":"2.1","id":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"ACME Bank","identity_class":"organization","sectors":["technology","financial-services","technology"],"description":"Retail bank"}`,
		"bookkeeping and custom properties": `{"type":"identity","spec_version":"2.1","id":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"ACME Bank","identity_class":"organization","sectors":["financial-services","technology"],"description":"Retail bank",
			"created_by_ref":"identity--0b3c8a4e-1e7f-4c62-9d1f-6a5b1f0f6c11","labels":["copy"],"confidence":99,"lang":"en","x_nonce":"1234","revoked":false,
			"object_marking_refs":["` + TLP2Green + `"],"granular_markings":[{"selectors":["description"],"marking_ref":"` + TLP2Amber + `"}],
			"external_references":[{"source_name":"somewhere","url":"https://example.org/x"}]}`,
	} {
		if got := mustFingerprint(t, variant); got != base {
			t.Errorf("%s: a new fingerprint for the same content", name)
		}
	}
	for name, variant := range map[string]string{
		"another name":        strings.Replace(fpIdentity, `"ACME Bank"`, `"ACME Insurance"`, 1),
		"another description": strings.Replace(fpIdentity, `"Retail bank"`, `"Investment bank"`, 1),
		"a sector less":       strings.Replace(fpIdentity, `"financial-services",`, ``, 1),
		"another class":       strings.Replace(fpIdentity, `"organization"`, `"group"`, 1),
	} {
		if got := mustFingerprint(t, variant); got == base {
			t.Errorf("%s: the same fingerprint for different content", name)
		}
	}
}

func TestFingerprintIndicatorIsItsPattern(t *testing.T) {
	ind := func(id, name, pattern, validFrom string) string {
		return `{"type":"indicator","spec_version":"2.1","id":"indicator--` + id + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"` + name + `","pattern":"` + pattern + `","pattern_type":"stix","valid_from":"` + validFrom + `"}`
	}
	base := mustFingerprint(t, ind("8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "C2", "[ipv4-addr:value = '203.0.113.7']", "2026-01-01T00:00:00Z"))
	same := []string{
		ind("0b3c8a4e-1e7f-4c62-9d1f-6a5b1f0f6c11", "another name", "[ipv4-addr:value = '203.0.113.7']", "2026-02-01T00:00:00Z"),
		ind("0b3c8a4e-1e7f-4c62-9d1f-6a5b1f0f6c12", "C2", "[ipv4-addr:value='203.0.113.7']", "2026-01-01T00:00:00Z"),
		ind("0b3c8a4e-1e7f-4c62-9d1f-6a5b1f0f6c13", "C2", "[ ipv4-addr:value  =  '203.0.113.7' ]", "2026-01-01T00:00:00Z"),
	}
	for _, raw := range same {
		if mustFingerprint(t, raw) != base {
			t.Errorf("the same pattern gave a new fingerprint: %s", raw)
		}
	}
	if mustFingerprint(t, ind("0b3c8a4e-1e7f-4c62-9d1f-6a5b1f0f6c14", "C2", "[ipv4-addr:value = '203.0.113.8']", "2026-01-01T00:00:00Z")) == base {
		t.Error("another pattern gave the same fingerprint")
	}
}

// TestFingerprintCanonicalIsRFC8785: the canonical writer agrees with
// package canonjson (which the signatures use) on every valid test object.
func TestFingerprintCanonicalIsRFC8785(t *testing.T) {
	extra := [][]byte{
		[]byte(`{"type":"x","n":[1.0,1e21,1e-7,-0,0.000001,123456789012345678901234,5e-324],"s":"\u00e9\u2028\u0001\"\\/","\u00e9":1,"z":2,"a":{"b":[true,false,null]}}`),
		[]byte(`{"type":"x","\ud83d\ude00":1,"\ufb01":2}`),
	}
	n := 0
	check := func(raw []byte) {
		root, err := parseJSON(raw)
		if err != nil {
			return
		}
		want, err := canonjson.Canonicalize(raw)
		if err != nil {
			return
		}
		if got := appendCanonical(nil, &root); string(got) != string(want) {
			t.Errorf("canonical form differs from RFC 8785\n got %s\nwant %s", got, want)
		}
		n++
	}
	for _, raw := range extra {
		check(raw)
	}
	for _, fo := range loadDir(t, "valid") {
		check(fo.raw)
	}
	if n < 10 {
		t.Fatalf("only %d objects compared", n)
	}
}

func TestContentFingerprintRefusesNonObjects(t *testing.T) {
	for _, raw := range []string{`[]`, `{"type":1}`, `{`, `"x"`} {
		if _, err := ContentFingerprint([]byte(raw)); err == nil {
			t.Errorf("%s: fingerprinted", raw)
		}
	}
}

// FuzzContentFingerprint: the canonical writer agrees with package
// canonjson on every input both accept, and a fingerprint survives
// re-encoding (key order, white space, escapes) of the same JSON.
func FuzzContentFingerprint(f *testing.F) {
	f.Add([]byte(fpIdentity))
	f.Add(smallIndicator)
	f.Add([]byte(`{"type":"x-a","n":[3,1,2,1],"s":" A  b ","o":{"z":1,"a":[{"b":2},{"a":1}]},"e":"<&>"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fp, err := ContentFingerprint(raw)
		if err != nil {
			return
		}
		root, err := parseJSON(raw)
		if err != nil {
			t.Fatalf("ContentFingerprint accepted what parseJSON refuses: %v", err)
		}
		if want, err := canonjson.Canonicalize(raw); err == nil {
			if got := appendCanonical(nil, &root); string(got) != string(want) {
				t.Fatalf("canonical form differs from RFC 8785\n got %s\nwant %s", got, want)
			}
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return
		}
		again, err := json.MarshalIndent(v, " ", "\t")
		if err != nil {
			return
		}
		fp2, err := ContentFingerprint(again)
		if err != nil {
			t.Fatalf("re-encoded %s is refused: %v", again, err)
		}
		if fp2 != fp {
			t.Fatalf("re-encoding changed the fingerprint:\n%s\n%s", raw, again)
		}
	})
}

// TestNormalizeStringFastPath: the strings normalizeString returns as they
// are come back exactly as the general rule (trim, collapse white space,
// lower-case) would make them, over every short string of an alphabet
// with upper case, ASCII and Unicode white space and non-ASCII letters.
func TestNormalizeStringFastPath(t *testing.T) {
	general := func(s string) string {
		return strings.ToLower(strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " "))
	}
	alphabet := []string{"a", "Z", " ", "\t", "\n", "\v", "\f", "\r", "\u0085", "\u00a0", "\u2003", "é", "É", "'", "-", "\xff"}
	fast := 0
	var walk func(prefix string, depth int)
	walk = func(prefix string, depth int) {
		if got, want := normalizeString(prefix), general(prefix); got != want {
			t.Fatalf("normalizeString(%q) = %q, want %q", prefix, got, want)
		}
		if isNormalASCII(prefix) {
			fast++
		}
		if depth == 0 {
			return
		}
		for _, c := range alphabet {
			walk(prefix+c, depth-1)
		}
	}
	walk("", 4)
	for _, s := range []string{"[ipv4-addr:value = '198.51.100.1']", "indicator", "stix", "malicious-activity"} {
		if !isNormalASCII(s) || normalizeString(s) != s {
			t.Fatalf("%q does not take the fast path unchanged", s)
		}
	}
	if fast < 100 {
		t.Fatalf("only %d strings took the fast path", fast)
	}
}
