package client

import (
	"bytes"
	"encoding/json"
	"testing"
)

// BenchmarkDecodeEnvelope measures streaming one 10,000-object page, the
// client-side cost of a read-back page; allocations show the page is not
// held twice.
func BenchmarkDecodeEnvelope(b *testing.B) {
	body, err := json.Marshal(struct {
		More    bool              `json:"more"`
		Objects []json.RawMessage `json:"objects"`
	}{true, indicators(10000)})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		var env Envelope
		if err := decodeEnvelope(bytes.NewReader(body), &env, func() {}, func(json.RawMessage) error { n++; return nil }); err != nil || n != 10000 {
			b.Fatal(n, err)
		}
	}
}
