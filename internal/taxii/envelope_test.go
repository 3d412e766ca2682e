package taxii

import (
	"bytes"
	"fmt"
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
