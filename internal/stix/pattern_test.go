package stix

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParsePatternValid(t *testing.T) {
	tests := []struct{ in, canon string }{
		{"[ipv4-addr:value = '198.51.100.1']", "[ipv4-addr:value = '198.51.100.1']"},
		{"[file:hashes.'SHA-256' = 'ab']", "[file:hashes.'SHA-256' = 'ab']"},
		{"[a:b = 1 OR a:c = 2 AND a:d = 3]", "[(a:b = 1 OR (a:c = 2 AND a:d = 3))]"},
		{"[(a:b = 1 OR a:c = 2) AND a:d = 3]", "[((a:b = 1 OR a:c = 2) AND a:d = 3)]"},
		{"[a:b = 1] AND [a:c = 2] OR [a:d = 3] FOLLOWEDBY [a:e = 4]",
			"((([a:b = 1] AND [a:c = 2]) OR [a:d = 3]) FOLLOWEDBY [a:e = 4])"},
		{"[a:b = 1] WITHIN 5 SECONDS", "[a:b = 1] WITHIN 5 SECONDS"},
		{"[a:b = 1] WITHIN 2.5 SECONDS REPEATS 3 TIMES", "[a:b = 1] WITHIN 2.5 SECONDS REPEATS 3 TIMES"},
		{"[a:b = 1] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'",
			"[a:b = 1] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'"},
		{"([a:b = 1] OR [a:c = 2]) REPEATS 2 TIMES", "([a:b = 1] OR [a:c = 2]) REPEATS 2 TIMES"},
		{"[network-traffic:dst_port NOT IN (80, 443)]", "[network-traffic:dst_port NOT IN (80, 443)]"},
		{"[a:b IN ()]", "[a:b IN ()]"},
		{"[file:name LIKE 'x%' AND file:name MATCHES '^x.*$']", "[(file:name LIKE 'x%' AND file:name MATCHES '^x.*$')]"},
		{"[ipv4-addr:value ISSUBSET '198.51.100.0/24']", "[ipv4-addr:value ISSUBSET '198.51.100.0/24']"},
		{"[ipv4-addr:value ISSUPERSET '198.51.100.1/32']", "[ipv4-addr:value ISSUPERSET '198.51.100.1/32']"},
		{"[EXISTS windows-registry-key:values]", "[EXISTS windows-registry-key:values]"},
		{"[email-message:body_multipart[*].body_raw_ref.name = 'a']", "[email-message:body_multipart[*].body_raw_ref.name = 'a']"},
		{"[x:list[0] = -1 AND x:f >= .5 AND x:g < -0.25]", "[((x:list[0] = -1 AND x:f >= .5) AND x:g < -0.25)]"},
		{"[x:b = true AND x:c != false]", "[(x:b = true AND x:c != false)]"},
		{"[artifact:payload_bin = b'aGVsbG8=' OR file:magic_number_hex = h'ffd8']", "[(artifact:payload_bin = b'aGVsbG8=' OR file:magic_number_hex = h'ffd8')]"},
		{"[x:t > t'2016-01-01T00:00:00.123Z']", "[x:t > t'2016-01-01T00:00:00.123Z']"},
		{`[file:name = 'it\'s \\ here']`, `[file:name = 'it\'s \\ here']`},
		{"[ x-custom-type:x_prop = 'v' ]", "[x-custom-type:x_prop = 'v']"},
	}
	for _, tc := range tests {
		p, err := ParsePattern(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got := p.String(); got != tc.canon {
			t.Errorf("%s: String() = %s, want %s", tc.in, got, tc.canon)
		}
		p2, err := ParsePattern(p.String())
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Errorf("%s: String() does not re-parse to the same AST (%v)", tc.in, err)
		}
	}
}

func TestParsePatternAST(t *testing.T) {
	p, err := ParsePattern("[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.0]")
	if err != nil {
		t.Fatal(err)
	}
	c := p.Root.(*ObservationComparison).Expr.(*Comparison)
	want := ObjectPath{ObjectType: "file", Steps: []PathStep{
		{Key: "extensions"}, {Key: "windows-pebinary-ext"}, {Key: "sections"}, {Any: true}, {Key: "entropy"}}}
	if !reflect.DeepEqual(c.Path, want) || c.Op != ">" || c.Value.Kind != LitFloat || c.Value.Text != "7.0" {
		t.Fatalf("got %+v", c)
	}
}

func TestParsePatternErrors(t *testing.T) {
	tests := []struct {
		in, msg string
		off     int
	}{
		{"", "unexpected end of pattern", 0},
		{"[ipv4-addr:value = '1.2.3.4']]", `unexpected token "]"`, 29},
		{"[ipv4-addr:value = '1.2.3.4'", `expected "]", found end of pattern`, 28},
		{"[ipv4-addr:value == '1']", `unexpected token "=="`, 17},
		{"[ipv4-addr:value = '1]", "unterminated string", 19},
		{"[ipv4-addr value = '1']", `expected ':' after object type`, 11},
		{"[file:hashes.SHA-256 = 'a']", `property name "SHA-256" contains '-' and must be quoted`, 13},
		{"[a:b > true]", "operator > cannot compare a boolean", 7},
		{"[a:b LIKE 5]", "LIKE needs a string", 10},
		{"[a:b = 'x'] WITHIN 0 SECONDS", "WITHIN needs a positive number", 19},
		{"[a:b = 'x'] WITHIN 5", `expected SECONDS`, 20},
		{"[a:b = 'x'] REPEATS 0 TIMES", "REPEATS needs a positive integer", 20},
		{"[a:b = 'x'] START t'2016-07-01T00:00:00Z' STOP t'2016-06-01T00:00:00Z'", "STOP must be later than START", 47},
		{"[a:b = t'2016-13-01T00:00:00Z']", "invalid timestamp", 7},
		{"[a:b = h'abc']", "odd number of digits", 7},
		{"[a:b = b'aGVsbG8']", "invalid base64", 7},
		{"[a:b = 'x\\n']", "invalid escape", 9},
		{"[a:b = 99999999999999999999]", "out of range", 7},
		{"[a:b[x] = 1]", "expected a list index", 5},
		{"[a:b = 01]", "leading zero", 7},
		{"[A:b = 1]", `invalid object type "A"`, 1},
		{"[a:b = 1] AND", "unexpected end of pattern", 13},
		{"[a:b = 1] & [a:c = 1]", "unexpected character '&'", 10},
		{strings.Repeat("(", 100) + "[a:b = 1]" + strings.Repeat(")", 100), "nested deeper than 64", 64},
	}
	for _, tc := range tests {
		_, err := ParsePattern(tc.in)
		var pe *PatternError
		if !errors.As(err, &pe) {
			t.Errorf("%q: want a *PatternError, got %v", tc.in, err)
			continue
		}
		if !strings.Contains(pe.Msg, tc.msg) || pe.Offset != tc.off {
			t.Errorf("%q: got %q at %d, want %q at %d", tc.in, pe.Msg, pe.Offset, tc.msg, tc.off)
		}
		if !errors.Is(err, ErrInvalidPattern) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: error does not wrap ErrInvalidPattern/ErrInvalid", tc.in)
		}
		if ValidatePattern(tc.in) == nil {
			t.Errorf("%q: ValidatePattern accepted it", tc.in)
		}
	}
}

// patternSeeds returns every stix pattern in the valid test data.
func patternSeeds(t testing.TB) []string {
	var out []string
	for _, fo := range loadDir(t, "valid") {
		var o struct {
			Pattern     string `json:"pattern"`
			PatternType string `json:"pattern_type"`
		}
		if json.Unmarshal(fo.raw, &o) == nil && o.PatternType == "stix" {
			out = append(out, o.Pattern)
		}
	}
	return out
}

func TestPatternRoundTripTestdata(t *testing.T) {
	pats := patternSeeds(t)
	if len(pats) < 1000 {
		t.Fatalf("only %d patterns found", len(pats))
	}
	for _, s := range pats {
		p, err := ParsePattern(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		p2, err := ParsePattern(p.String())
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Errorf("%s: canonical form %s does not round-trip (%v)", s, p.String(), err)
		}
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{
		"[a:b = 1] WITHIN 2.5 SECONDS REPEATS 3 TIMES",
		"[a:b = 1] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'",
		"[network-traffic:dst_port NOT IN (80, 443)] FOLLOWEDBY [EXISTS x:y]",
		"[x:list[0] = -1 AND x:f >= .5 AND x:g < -0.25 AND x:h = b'aGVsbG8=' AND x:i = h'ff']",
		`[file:name = 'it\'s \\ here' OR file:hashes.'SHA-256' MATCHES '^a']`,
	} {
		f.Add(s)
	}
	if dir := testdataDirOrEmpty(); dir != "" {
		seeds := patternSeeds(f)
		for i := 0; i < len(seeds); i += 50 {
			f.Add(seeds[i])
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePattern(s)
		if err != nil {
			var pe *PatternError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(s) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		canon := p.String()
		p2, err := ParsePattern(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, s, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("canonical form %q of %q parses to a different AST", canon, s)
		}
		if p2.String() != canon {
			t.Fatalf("String is not stable: %q then %q", canon, p2.String())
		}
	})
}
