package canonjson

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The input/output pairs of cyberphone/json-canonicalization testdata (the
// reference implementation by the RFC 8785 authors) and the RFC's own example.
var referenceCases = []struct {
	name, in, want string
}{
	{"rfc8785-3.2.2", `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`, `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
	{"arrays", `[
  56,
  {
    "d": true,
    "10": null,
    "1": [ ]
  }
]`, `[56,{"1":[],"10":null,"d":true}]`},
	{"french", `{
  "peach": "This sorting order",
  "péché": "is wrong according to French",
  "pêche": "but canonicalization MUST",
  "sin":   "ignore locale"
}`, `{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ignore locale"}`},
	{"structures", `{
  "1": {"f": {"f": "hi","F": 5} ,"\n": 56.0},
  "10": { },
  "": "empty",
  "a": { },
  "111": [ {"e": "yes","E": "no" } ],
  "A": { }
}`, `{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{"E":"no","e":"yes"}],"A":{},"a":{}}`},
	{"unicode", `{
  "Unnormalized Unicode":"A\u030a"
}`, "{\"Unnormalized Unicode\":\"A\u030a\"}"},
	{"weird", `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\u000a": "Newline",
  "1": "One",
  "\u0080": "Control\u007f",
  "\ud83d\ude02": "Smiley",
  "\u00f6": "Latin Small Letter O With Diaeresis",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "</script>": "Browser Challenge"
}`, "{\"\\n\":\"Newline\",\"\\r\":\"Carriage Return\",\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u0080\":\"Control\u007f\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😂\":\"Smiley\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
	// RFC 8785 section 3.2.3: sorting by UTF-16 code units puts the emoji
	// (a surrogate pair, 0xD83D...) before U+FB33, unlike code point order.
	{"rfc8785-3.2.3", `{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
		"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
	{"whitespace and literals", " \t\r\n[ true , false,null ] \n", `[true,false,null]`},
	{"escapes kept minimal", `"\u0041\/\b\f\n\r\t\u001f\u007f\u2028"`, "\"A/\\b\\f\\n\\r\\t\\u001f\u007f\u2028\""},
	{"negative zero", `[-0, -0.0, 0e10]`, `[0,0,0]`},
	{"nested empty", `{"a":[[],{}],"b":{"c":{}}}`, `{"a":[[],{}],"b":{"c":{}}}`},
}

func TestCanonicalizeReference(t *testing.T) {
	for _, tc := range referenceCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tc.in))
			if err != nil {
				t.Fatalf("Canonicalize: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// RFC 8785 Appendix B: IEEE-754 bit patterns and their canonical text.
func TestNumberSerializationAppendixB(t *testing.T) {
	table := []struct{ bits, want string }{
		{"0000000000000000", "0"},
		{"8000000000000000", "0"},
		{"0000000000000001", "5e-324"},
		{"8000000000000001", "-5e-324"},
		{"7fefffffffffffff", "1.7976931348623157e+308"},
		{"ffefffffffffffff", "-1.7976931348623157e+308"},
		{"4340000000000000", "9007199254740992"},
		{"c340000000000000", "-9007199254740992"},
		{"4430000000000000", "295147905179352830000"},
		{"44b52d02c7e14af5", "9.999999999999997e+22"},
		{"44b52d02c7e14af6", "1e+23"},
		{"44b52d02c7e14af7", "1.0000000000000001e+23"},
		{"444b1ae4d6e2ef4e", "999999999999999700000"},
		{"444b1ae4d6e2ef4f", "999999999999999900000"},
		{"444b1ae4d6e2ef50", "1e+21"},
		{"3eb0c6f7a0b5ed8c", "9.999999999999997e-7"},
		{"3eb0c6f7a0b5ed8d", "0.000001"},
		{"41b3de4355555553", "333333333.3333332"},
		{"41b3de4355555554", "333333333.33333325"},
		{"41b3de4355555555", "333333333.3333333"},
		{"41b3de4355555556", "333333333.3333334"},
		{"41b3de4355555557", "333333333.33333343"},
		{"becbf647612f3696", "-0.0000033333333333333333"},
		{"43143ff3c1cb0959", "1424953923781206.2"},
	}
	for _, tc := range table {
		t.Run(tc.bits, func(t *testing.T) {
			u, err := strconv.ParseUint(tc.bits, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			f := math.Float64frombits(u)
			got, err := FormatNumber(f)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("FormatNumber(%v) = %s, want %s", f, got, tc.want)
			}
			// The text must also survive a trip through Canonicalize unchanged.
			again, err := Canonicalize([]byte(got))
			if err != nil || string(again) != tc.want {
				t.Errorf("Canonicalize(%s) = %s, %v", got, again, err)
			}
		})
	}
}

func TestFormatNumberRefusesNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := FormatNumber(f); !errors.Is(err, ErrNumberRange) {
			t.Errorf("FormatNumber(%v) err = %v, want ErrNumberRange", f, err)
		}
	}
}

func TestCanonicalizeRefuses(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"duplicate key", `{"a":1,"a":2}`, ErrDuplicateKey},
		{"duplicate key after unescaping", `{"a":1,"\u0061":2}`, ErrDuplicateKey},
		{"nested duplicate", `[{"x":{"k":1,"k":1}}]`, ErrDuplicateKey},
		{"invalid utf-8", "\"\xff\"", ErrInvalidUTF8},
		{"utf-8 encoded surrogate", "\"\xed\xa0\x80\"", ErrInvalidUTF8},
		{"overlong utf-8", "\"\xc0\xaf\"", ErrInvalidUTF8},
		{"lone high surrogate", `"\ud800"`, ErrLoneSurrogate},
		{"high surrogate then letter", `"\ud800\u0041"`, ErrLoneSurrogate},
		{"lone low surrogate", `"\udc00"`, ErrLoneSurrogate},
		{"number overflow", `1e309`, ErrNumberRange},
		{"negative overflow", `[-1.8e308]`, ErrNumberRange},
		{"too deep", strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2), ErrTooDeep},
		{"empty", ``, ErrInvalid},
		{"trailing data", `{} {}`, ErrInvalid},
		{"trailing comma", `[1,]`, ErrInvalid},
		{"leading zero", `01`, ErrInvalid},
		{"plus sign", `+1`, ErrInvalid},
		{"bare dot", `1.`, ErrInvalid},
		{"hex number", `0x10`, ErrInvalid},
		{"NaN literal", `NaN`, ErrInvalid},
		{"single quotes", `'a'`, ErrInvalid},
		{"control char in string", "\"a\tb\"", ErrInvalid},
		{"bad escape", `"\x41"`, ErrInvalid},
		{"short unicode escape", `"\u12"`, ErrInvalid},
		{"non-string key", `{1:2}`, ErrInvalid},
		{"missing colon", `{"a" 1}`, ErrInvalid},
		{"unterminated object", `{"a":1`, ErrInvalid},
		{"byte order mark", "\ufeff{}", ErrInvalid},
		{"form feed is not whitespace", "\f{}", ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Canonicalize(%q) = %q, %v; want error %v", tc.in, got, err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestMarshal(t *testing.T) {
	got, err := Marshal(map[string]any{"b": []int{1, 2}, "a": "<&>", "c": 1.5e-7})
	if err != nil {
		t.Fatal(err)
	}
	// encoding/json escapes <&> as \u003c etc.; the canonical form does not.
	want := `{"a":"<&>","b":[1,2],"c":1.5e-7}`
	if string(got) != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
	if _, err := Marshal(math.NaN()); err == nil {
		t.Error("Marshal(NaN) succeeded")
	}
}

// checkCanonical is the invariant shared by the fuzz test and the seeds:
// canonical output is valid JSON, is its own canonical form, and denotes the
// same value as the input.
func checkCanonical(t *testing.T, in []byte) {
	t.Helper()
	out, err := Canonicalize(in)
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
		return
	}
	if !json.Valid(out) {
		t.Fatalf("canonical form is not valid JSON: %q", out)
	}
	again, err := Canonicalize(out)
	if err != nil {
		t.Fatalf("canonical form %q refused: %v", out, err)
	}
	if string(again) != string(out) {
		t.Fatalf("not idempotent:\n%q\n%q", out, again)
	}
	var a, b any
	if err := json.Unmarshal(in, &a); err != nil {
		t.Fatalf("accepted input encoding/json refuses: %q: %v", in, err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("value changed:\n in  %q\n out %q", in, out)
	}
}

func FuzzCanonicalize(f *testing.F) {
	for _, tc := range referenceCases {
		f.Add([]byte(tc.in))
	}
	for _, s := range []string{`{"a":1,"a":2}`, `"\ud800"`, `1e309`, `[1e-400, 5e-324, 0.1, 123456789012345678901234]`, "\"\xff\"", `{"\ud83d\ude00":1,"\ufb33":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkCanonical(t, in)
	})
}

func BenchmarkCanonicalize(b *testing.B) {
	in := []byte(referenceCases[0].in + "")
	doc := []byte(`{"schema_version":1,"id":"agreement--0f5b6a3c-7e2d-4c1a-9b8e-5d4f3a2b1c0d","version":3,` +
		`"parties":[{"party_id":"cert-a","name":"CERT A","key_id":"0123456789abcdef"},{"party_id":"cert-b","name":"CERT B","key_id":"fedcba9876543210"}],` +
		`"scope":{"types":["indicator","malware","threat-actor","infrastructure"],"max_tlp":"amber","unmarked":"refuse"},` +
		`"reciprocity":{"ratio":{"give":1,"get":2},"grace":25,"window":"720h","weights":{"malware":5,"indicator":1}},` +
		`"escrow_deadline":"72h","request_deadlines":{"acknowledge":"24h","fulfil":"168h"},` +
		`"not_before":"2026-01-01T00:00:00Z","not_after":"2027-01-01T00:00:00Z","termination_notice":"720h","match_cap":1000000}`)
	for _, bc := range []struct {
		name string
		in   []byte
	}{{"rfc-example", in}, {"agreement", doc}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Canonicalize(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
