package taxii

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func envelopeOf(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"objects":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"C2 \"%d\"","pattern":"[ipv4-addr:value = '10.0.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, i, i, i/256, i%256)
	}
	b.WriteString(`],"more":false}`)
	return b.Bytes()
}

// BenchmarkParseEnvelope compares the fast path with the careful one on an
// envelope of 1,000 indicators (~330 kB).
func BenchmarkParseEnvelope(b *testing.B) {
	body := envelopeOf(1000)
	for _, tc := range []struct {
		name string
		fn   func([]byte) (int, error)
	}{
		{"fast", func(x []byte) (int, error) { o, _ := splitEnvelope(x); return len(o), nil }},
		{"careful", func(x []byte) (int, error) { o, err := parseEnvelopeCarefully(x); return len(o), err }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if n, err := tc.fn(body); n != 1000 || err != nil {
					b.Fatalf("%d objects, %v", n, err)
				}
			}
		})
	}
}

// TestSplitEnvelopeRefusesInvalidJSON: the fast path checks the JSON in the
// same pass as the split, so every body that is not JSON goes to the
// careful path (and its 400), including damage inside an object or after
// the objects array that a structural scan alone would step over.
func TestSplitEnvelopeRefusesInvalidJSON(t *testing.T) {
	good := string(envelopeOf(3))
	if _, ok := splitEnvelope([]byte(good)); !ok {
		t.Fatal("the fast path refused a valid envelope")
	}
	for _, body := range []string{
		`{"objects":[{"type":"identity",}]}`,
		`{"objects":[{"type" "identity"}]}`,
		`{"objects":[{"type":"identity"}] "more":false}`,
		`{"objects":[{"type":"identity"},]}`,
		`{"objects":[,{"type":"identity"}]}`,
		`{"objects":[{"type":"identity"}],"more":fals}`,
		`{"objects":[{"type":"identity"}],"more":false,}`,
		`{"objects" [{"type":"identity"}]}`,
		`{"objects":[{"n":01}]}`,
		`{"objects":[{"n":1.}]}`,
		`{"objects":[{"s":"\q"}]}`,
		`{"objects":[{"s":"\u00G0"}]}`,
		"{\"objects\":[{\"s\":\"a\tb\"}]}",
		`{"objects":[{"a":[1,2}]}`,
		`{"objects":[{"a":{"b":1]}]}`,
		`{"objects":[{"type":"identity"}]`,
		`{"objects":[{"type":"identity"}`,
		`{"objects":[{"type":"identity"}]}}`,
		good[:len(good)-1],
	} {
		if json.Valid([]byte(body)) {
			t.Fatalf("test case %q is valid JSON", body)
		}
		if objs, ok := splitEnvelope([]byte(body)); ok {
			t.Errorf("the fast path accepted invalid JSON %q (%d objects)", body, len(objs))
		}
		if _, err := parseEnvelope([]byte(body)); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
			t.Errorf("%q: %v, want the careful path's not-json problem", body, err)
		}
	}
}
