package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/jsonscan"
)

// A page larger than many chunks, with objects that straddle every
// boundary, reads exactly as encoding/json reads it.
func TestDecodeEnvelopeLargePage(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"more":true,"next":"n\u00e9xt","objects":[`)
	for i := range 5000 {
		if i > 0 {
			b.WriteString(" ,\n")
		}
		fmt.Fprintf(&b, `{"id":"indicator--%d","n":-%d.5e+3,"s":"tab\tq\"uote\\ %s","a":[true,false,null,{}],"o":{"x":[[%d]]}}`,
			i, i, strings.Repeat("x", i%200), i)
	}
	b.WriteString(`]}`)
	in := []byte(strings.ReplaceAll(b.String(), "\t", `\t`))
	var ref struct {
		More    bool
		Next    string
		Objects []json.RawMessage
	}
	if err := json.Unmarshal(in, &ref); err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 7, 4096, defaultChunk} {
		var env Envelope
		var objs []json.RawMessage
		err := decodeEnvelopeChunks(bytes.NewReader(in), chunk, &env, func() { objs = objs[:0] }, func(o json.RawMessage) error {
			objs = append(objs, o)
			return nil
		})
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if !env.More || env.Next != "néxt" || len(objs) != len(ref.Objects) {
			t.Fatalf("chunk %d: more=%v next=%q %d objects, want %d", chunk, env.More, env.Next, len(objs), len(ref.Objects))
		}
		for i := range objs {
			if !bytes.Equal(objs[i], ref.Objects[i]) {
				t.Fatalf("chunk %d, object %d: %s vs %s", chunk, i, objs[i], ref.Objects[i])
			}
		}
	}
}

// The nesting limit is encoding/json's: an object may hold values nested
// to depth 10,000 counted from the envelope, and not one deeper.
func TestDecodeEnvelopeDepthLimit(t *testing.T) {
	for _, extra := range []int{9997, 9998} { // envelope, array, object: 3 levels already
		in := `{"objects":[{"a":` + strings.Repeat("[", extra) + strings.Repeat("]", extra) + `}]}`
		var env Envelope
		err := decodeEnvelope(strings.NewReader(in), &env, func() {}, func(json.RawMessage) error { return nil })
		refErr := json.Unmarshal([]byte(in), new(map[string]json.RawMessage))
		if (err == nil) != (refErr == nil) {
			t.Fatalf("depth %d: err=%v, encoding/json err=%v", extra+3, err, refErr)
		}
		if want := extra+3 <= jsonscan.MaxDepth; (err == nil) != want {
			t.Fatalf("depth %d: err=%v, want accepted=%v", extra+3, err, want)
		}
	}
}

// Objects handed out are not overwritten by what is read after them, and
// appending to one does not reach into the next.
func TestDecodeEnvelopeObjectsStayValid(t *testing.T) {
	in := `{"objects":[{"id":"a"},{"id":"b"},{"id":"c"}]}`
	var objs []json.RawMessage
	err := decodeEnvelopeChunks(strings.NewReader(in), 3, new(Envelope), func() {}, func(o json.RawMessage) error {
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = append(objs[0], "XXXXXXXX"...)
	got := string(objs[0]) + string(objs[1]) + string(objs[2])
	if got != `{"id":"a"}{"id":"b"}{"id":"c"}` {
		t.Fatalf("objects changed: %s", got)
	}
}
