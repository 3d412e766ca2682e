package agreement

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func exampleRaw(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/example-agreement.json")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// mutate decodes the example, lets edit change it, and re-encodes it.
func mutate(t testing.TB, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(exampleRaw(t), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sub(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func TestParseExampleDocument(t *testing.T) {
	d, err := ParseDocument(exampleRaw(t))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"version", d.Version, 1},
		{"party 1", d.Parties[1].PartyID, "cyber-unit-south"},
		{"types", len(d.Scope.Types), 5},
		{"max tlp", d.Scope.MaxTLP, TLPAmber},
		{"unmarked", d.Scope.AllowUnmarked, false},
		{"ratio", d.Reciprocity.Ratio(), 2.0},
		{"grace", d.Reciprocity.Grace, int64(10)},
		{"window", d.Reciprocity.Window, 720 * time.Hour},
		{"malware weight", d.Reciprocity.Weights["malware"], 5.0},
		{"escrow", d.EscrowDeadline, 72 * time.Hour},
		{"fulfil", d.RequestDeadlines.Fulfil, 168 * time.Hour},
		{"not_after", d.NotAfter, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"match cap", d.MatchCap, int64(500000)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestCanonicalRoundTrip(t *testing.T) {
	d, err := ParseDocument(exampleRaw(t))
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseDocument(d.Canonical())
	if err != nil {
		t.Fatalf("canonical form refused: %v\n%s", err, d.Canonical())
	}
	if !reflect.DeepEqual(d, again) {
		t.Errorf("round trip changed the document:\n%+v\n%+v", d, again)
	}
	if d.Hash() != again.Hash() {
		t.Error("hash changed over a round trip")
	}
	// The ratio written as an object is the same agreement as "1:2".
	obj := mutate(t, func(m map[string]any) {
		sub(m, "reciprocity")["ratio"] = map[string]any{"give": 1, "get": 2}
	})
	d2, err := ParseDocument(obj)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Hash() != d.Hash() {
		t.Error("ratio \"1:2\" and {give:1,get:2} hash differently")
	}
	// Any change of substance changes the hash.
	d3 := *d
	d3.Reciprocity.Grace++
	if d3.Hash() == d.Hash() {
		t.Error("grace change did not change the hash")
	}
}

func TestMatchCapDefault(t *testing.T) {
	d, err := ParseDocument(mutate(t, func(m map[string]any) { delete(m, "match_cap") }))
	if err != nil {
		t.Fatal(err)
	}
	if d.MatchCap != DefaultMatchCap {
		t.Errorf("MatchCap = %d, want %d", d.MatchCap, DefaultMatchCap)
	}
}

func TestParseDocumentRefuses(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(m map[string]any)
		raw     string // used instead of edit when set
		want    string // substring of the error
		wantErr error
	}{
		{name: "zero ratio", edit: func(m map[string]any) { sub(m, "reciprocity")["ratio"] = "1:0" }, want: "reciprocity.ratio must be greater than zero"},
		{name: "negative ratio object", edit: func(m map[string]any) {
			sub(m, "reciprocity")["ratio"] = map[string]any{"give": 1, "get": -2}
		}, want: "reciprocity.ratio must be greater than zero"},
		{name: "zero give", edit: func(m map[string]any) { sub(m, "reciprocity")["ratio"] = "0:1" }, want: "give must be greater than zero"},
		{name: "malformed ratio", edit: func(m map[string]any) { sub(m, "reciprocity")["ratio"] = "two to one" }, want: `"two to one" is not "give:get"`},
		{name: "unknown tlp", edit: func(m map[string]any) { sub(m, "scope")["max_tlp"] = "purple" }, want: `scope.max_tlp: unknown TLP "purple"`},
		{name: "self agreement", edit: func(m map[string]any) {
			p := m["parties"].([]any)
			p[1].(map[string]any)["party_id"] = "cert-north"
		}, want: "parties: a party cannot make an agreement with itself", wantErr: ErrSelfAgreement},
		{name: "same key twice", edit: func(m map[string]any) {
			p := m["parties"].([]any)
			p[1].(map[string]any)["key_id"] = "0000000000000000"
		}, want: "both parties name the same key", wantErr: ErrSelfAgreement},
		{name: "not_after before not_before", edit: func(m map[string]any) { m["not_after"] = "2025-01-01T00:00:00Z" }, want: "not_after is before not_before"},
		{name: "not_after equals not_before", edit: func(m map[string]any) { m["not_after"] = m["not_before"] }, want: "not_after equals not_before"},
		{name: "three parties", edit: func(m map[string]any) {
			p := m["parties"].([]any)
			m["parties"] = append(p, p[0])
		}, want: "exactly two parties, not 3"},
		{name: "unknown field", edit: func(m map[string]any) { m["colour"] = "blue" }, want: `unknown field "colour"`},
		{name: "unknown nested field", edit: func(m map[string]any) { sub(m, "scope")["colour"] = "blue" }, want: `unknown field "scope.colour"`},
		{name: "wrong case field", edit: func(m map[string]any) { m["Version"] = m["version"]; delete(m, "version") }, want: `unknown field "Version"`},
		{name: "empty types", edit: func(m map[string]any) { sub(m, "scope")["types"] = []any{} }, want: "scope.types must list at least one STIX type"},
		{name: "bad type name", edit: func(m map[string]any) { sub(m, "scope")["types"] = []any{"Malware"} }, want: `scope.types: "Malware" is not a STIX type name`},
		{name: "type twice", edit: func(m map[string]any) { sub(m, "scope")["types"] = []any{"malware", "malware"} }, want: `"malware" is listed twice`},
		{name: "bad unmarked", edit: func(m map[string]any) { sub(m, "scope")["unmarked"] = "maybe" }, want: `scope.unmarked must be "allow" or "refuse"`},
		{name: "negative grace", edit: func(m map[string]any) { sub(m, "reciprocity")["grace"] = -1 }, want: "reciprocity.grace must be between 0"},
		{name: "fractional grace", edit: func(m map[string]any) { sub(m, "reciprocity")["grace"] = 1.5 }, want: "reciprocity.grace must be a whole number"},
		{name: "zero weight", edit: func(m map[string]any) { sub(sub(m, "reciprocity"), "weights")["malware"] = 0 }, want: "reciprocity.weights.malware must be a positive number"},
		{name: "weight outside scope", edit: func(m map[string]any) { sub(sub(m, "reciprocity"), "weights")["tool"] = 2 }, want: `reciprocity.weights: "tool" is not in scope.types`},
		{name: "bad window", edit: func(m map[string]any) { sub(m, "reciprocity")["window"] = "30 days" }, want: `reciprocity.window: "30 days" is not a duration`},
		{name: "negative window", edit: func(m map[string]any) { sub(m, "reciprocity")["window"] = "-1h" }, want: "reciprocity.window must be positive"},
		{name: "zero escrow deadline", edit: func(m map[string]any) { m["escrow_deadline"] = "0s" }, want: "escrow_deadline must be a positive duration"},
		{name: "fulfil before acknowledge", edit: func(m map[string]any) { sub(m, "request_deadlines")["fulfil"] = "1h" }, want: "fulfil is shorter than"},
		{name: "missing not_before", edit: func(m map[string]any) { delete(m, "not_before") }, want: "not_before is required"},
		{name: "bad time", edit: func(m map[string]any) { m["not_before"] = "yesterday" }, want: `not_before: "yesterday" is not an RFC 3339 time`},
		{name: "version zero", edit: func(m map[string]any) { m["version"] = 0 }, want: "version must be between 1"},
		{name: "schema version", edit: func(m map[string]any) { m["schema_version"] = 2 }, want: "unsupported version 2"},
		{name: "bad id", edit: func(m map[string]any) { m["id"] = "agreement--nope" }, want: `id: "agreement--nope" is not agreement--<uuid>`},
		{name: "bad key id", edit: func(m map[string]any) { m["parties"].([]any)[0].(map[string]any)["key_id"] = "XYZ" }, want: `parties[0].key_id: "XYZ" is not 16 lowercase hex`},
		{name: "supersedes not earlier", edit: func(m map[string]any) { m["supersedes"] = 1 }, want: "supersedes must name an earlier version"},
		{name: "match cap zero", edit: func(m map[string]any) { m["match_cap"] = 0 }, want: "match_cap must be between 1"},
		{name: "wrong type", edit: func(m map[string]any) { m["requires_cosignature"] = "yes" }, want: "requires_cosignature must be true or false"},
		{name: "duplicate field", raw: `{"version":1,"version":2}`, want: "duplicate member name"},
		{name: "not an object", raw: `[1,2]`, want: "must be a JSON object"},
		{name: "not json", raw: `{"version":`, want: "unexpected end of input"},
		{name: "invalid utf-8", raw: "{\"id\":\"\xff\"}", want: "invalid UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.raw)
			if tc.raw == "" {
				raw = mutate(t, tc.edit)
			}
			d, err := ParseDocument(raw)
			if err == nil {
				t.Fatalf("accepted: %+v", d)
			}
			if !errors.Is(err, ErrInvalidDocument) {
				t.Errorf("error %v does not wrap ErrInvalidDocument", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the problem %q", err, tc.want)
			}
		})
	}
}

func TestEveryProblemNamed(t *testing.T) {
	raw := mutate(t, func(m map[string]any) {
		sub(m, "reciprocity")["ratio"] = "1:0"
		sub(m, "scope")["max_tlp"] = "purple"
		m["not_after"] = "2020-01-01T00:00:00Z"
	})
	_, err := ParseDocument(raw)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	if len(ve.Problems) != 3 {
		t.Errorf("problems = %q, want 3", ve.Problems)
	}
}

func TestValidSTIXType(t *testing.T) {
	for s, want := range map[string]bool{
		"indicator": true, "x-mitre-tactic": true, "ipv4-addr": true, "x509-certificate": true,
		"ab": false, "Indicator": false, "a--b": false, "malware-": false, "-malware": false, "1abc": false, "bad_type": false,
	} {
		if got := ValidSTIXType(s); got != want {
			t.Errorf("ValidSTIXType(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestNewIDIsValid(t *testing.T) {
	a, b := NewID(), NewID()
	if !validAgreementID(a) || a == b {
		t.Errorf("NewID gave %q and %q", a, b)
	}
}

func TestDocumentJSON(t *testing.T) {
	d, err := ParseDocument(exampleRaw(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back Document
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if back.Hash() != d.Hash() {
		t.Error("JSON round trip changed the hash")
	}
	bad := *d
	bad.Reciprocity.Get = 0
	if _, err := json.Marshal(&bad); !errors.Is(err, ErrInvalidDocument) {
		t.Errorf("Marshal of an invalid document: %v", err)
	}
}

// FuzzParseDocument: ParseDocument never panics, and an accepted document's
// canonical form parses to an equal document with the same hash.
func FuzzParseDocument(f *testing.F) {
	f.Add(exampleRaw(f))
	f.Add([]byte(`{"schema_version":1}`))
	f.Add(mutate(f, func(m map[string]any) { sub(m, "reciprocity")["ratio"] = map[string]any{"give": 3, "get": 1} }))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := ParseDocument(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidDocument) {
				t.Fatalf("error %v does not wrap ErrInvalidDocument", err)
			}
			return
		}
		again, err := ParseDocument(d.Canonical())
		if err != nil {
			t.Fatalf("canonical form refused: %v", err)
		}
		if !reflect.DeepEqual(d, again) || d.Hash() != again.Hash() {
			t.Fatalf("round trip changed the document")
		}
	})
}
