package taxii

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// sameQuery compares two parsed filters, ignoring the page size and the
// cursor, which are not part of the canonical binding.
func sameQuery(a, b store.ObjectQuery) bool {
	eqTimes := func(x, y []time.Time) bool {
		return slices.EqualFunc(x, y, func(p, q time.Time) bool { return p.Equal(q) })
	}
	return slices.Equal(a.IDs, b.IDs) && slices.Equal(a.Types, b.Types) && slices.Equal(a.SpecVersions, b.SpecVersions) &&
		a.AddedAfter.Equal(b.AddedAfter) && a.Versions.All == b.Versions.All && a.Versions.First == b.Versions.First &&
		a.Versions.Last == b.Versions.Last && eqTimes(a.Versions.At, b.Versions.At)
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"", "limit=10", "match[type]=indicator,malware", "match[type]=malware,%20indicator,malware",
		"match[id]=indicator--00000001-0000-4000-8000-000000000001&match[version]=all",
		"match[version]=first,last,2021-01-01T00:00:00Z,2021-01-01T00:00:00.000000Z",
		"added_after=2021-01-01T00:00:00.123456789Z&match[spec_version]=2.1,2.0",
		"next=abc&limit=0", "match[type]=%zz", "a;b", "limit=99999999999999999999", "match[version]=0001-01-01T00:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		flt, err := parseFilter(raw, objectsParams)
		if err != nil {
			if _, ok := err.(*apiError); !ok {
				t.Fatalf("error %v is not a client error", err)
			}
			return
		}
		if flt.q.Limit < 1 || flt.q.Limit > MaxLimit {
			t.Fatalf("limit %d out of range", flt.q.Limit)
		}
		// The canonical form is itself an accepted query meaning the same
		// filter, and is its own canonical form.
		again, err := parseFilter(flt.canon, objectsParams)
		if err != nil {
			t.Fatalf("canonical form %q of %q refused: %v", flt.canon, raw, err)
		}
		if again.canon != flt.canon {
			t.Fatalf("canonical form not stable: %q -> %q -> %q", raw, flt.canon, again.canon)
		}
		if !sameQuery(flt.q, again.q) {
			t.Fatalf("canonical form %q means another filter than %q", flt.canon, raw)
		}
	})
}

func FuzzCursor(f *testing.F) {
	c := cursorCodec{key: []byte("0123456789abcdef0123456789abcdef")}
	f.Add(int64(1700000000000000), int64(1), "objects\x00party\x00root\x00coll\x00\x00", "", byte(0), uint8(0))
	f.Add(int64(1), int64(1<<62), "b", "x", byte('A'), uint8(43))
	f.Add(int64(253402300799999999), int64(99), "", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", byte('\n'), uint8(7))
	f.Fuzz(func(t *testing.T, us, seq int64, binding, arbitrary string, repl byte, at uint8) {
		// Arbitrary input never panics, and decodes only if it is exactly
		// what encode produces for the position it names.
		if pos, err := c.decode(arbitrary, binding); err == nil {
			if enc := c.encode(pos, binding); enc != arbitrary {
				t.Fatalf("%q decoded, but the encoding of %+v is %q", arbitrary, pos, enc)
			}
		}
		if us <= 0 || seq <= 0 || us > 253402300799999999 { // positive, up to year 9999
			return
		}
		pos := store.Position{DateAdded: time.UnixMicro(us).UTC(), Seq: seq}
		enc := c.encode(pos, binding)
		got, err := c.decode(enc, binding)
		if err != nil || !got.DateAdded.Equal(pos.DateAdded) || got.Seq != pos.Seq {
			t.Fatalf("round trip of %+v: %+v, %v", pos, got, err)
		}
		if _, err := c.decode(enc, binding+"x"); err == nil {
			t.Fatalf("cursor accepted with another binding")
		}
		// Any single-byte edit is refused.
		i := int(at) % len(enc)
		if repl != enc[i] {
			edited := enc[:i] + string([]byte{repl}) + enc[i+1:]
			if _, err := c.decode(edited, binding); err == nil {
				t.Fatalf("edited cursor %q (byte %d of %q) accepted", edited, i, enc)
			}
		}
		if _, err := c.decode(enc[:i]+enc[i+1:], binding); err == nil {
			t.Fatalf("cursor with byte %d deleted accepted", i)
		}
		if _, err := c.decode(enc[:i]+"\n"+enc[i:], binding); err == nil {
			t.Fatalf("cursor with a line break inserted accepted")
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"objects":[{"type":"identity"}]}`, `{"objects":[]}`, `{"objects":null}`, `{"type":"bundle","objects":[{}]}`,
		`{"objects":[1,"a",null,{"x":[{}]}],"more":false,"next":"n"}`, `{"objects":[{}],"extra":1}`, `[{}]`, `{`, ``,
		`{"objects":[{}]} x`, `{"objects":[{"a":"\ud800"}]}`, "{\"objects\":[\"\xff\"]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		objs, err := parseEnvelope(body)
		if err != nil {
			if _, ok := err.(*apiError); !ok {
				t.Fatalf("error %v is not a client error", err)
			}
			if objs != nil {
				t.Fatalf("objects returned with an error")
			}
			return
		}
		if len(objs) == 0 || !json.Valid(body) {
			t.Fatalf("accepted %q with %d objects", body, len(objs))
		}
		// Each object is one JSON value from the body, and an envelope made
		// of them parses to the same objects.
		parts := make([][]byte, len(objs))
		for i, o := range objs {
			if !json.Valid(o) || !bytes.Contains(body, bytes.TrimSpace(o)) {
				t.Fatalf("object %d %q is not a JSON value of the body", i, o)
			}
			parts[i] = o
		}
		again, err := parseEnvelope([]byte(`{"objects":[` + string(bytes.Join(parts, []byte(","))) + `]}`))
		if err != nil || len(again) != len(objs) {
			t.Fatalf("re-enveloped objects: %d, %v", len(again), err)
		}
		for i := range objs {
			if !bytes.Equal(again[i], objs[i]) {
				t.Fatalf("object %d changed: %q -> %q", i, objs[i], again[i])
			}
		}
	})
}

// TestFilterCanonicalExamples pins the canonical binding of equivalent
// spellings: cursors issued for one are accepted for the others.
func TestFilterCanonicalExamples(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"match[type]=indicator,malware", "match[type]=malware,%20indicator,malware"},
		{"match[version]=last,first", "match[version]=first,last,first"},
		{"added_after=2021-01-01T00:00:00Z", "added_after=2021-01-01T00:00:00.000000999Z"},
		{"match[version]=2021-01-01T00:00:00Z&limit=5", "limit=7&match[version]=2021-01-01T00:00:00.000Z"},
	} {
		fa, err := parseFilter(tc.a, objectsParams)
		if err != nil {
			t.Fatal(err)
		}
		fb, err := parseFilter(tc.b, objectsParams)
		if err != nil {
			t.Fatal(err)
		}
		if fa.canon != fb.canon {
			t.Errorf("%q -> %q but %q -> %q", tc.a, fa.canon, tc.b, fb.canon)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"match[type]=indicator", "match[type]=malware"},
		{"", "match[version]=last"}, // same objects today, but a different request
		{"match[version]=all", "match[version]=first"},
	} {
		fa, _ := parseFilter(tc.a, objectsParams)
		fb, _ := parseFilter(tc.b, objectsParams)
		if fa.canon == fb.canon {
			t.Errorf("%q and %q share the binding %q", tc.a, tc.b, fa.canon)
		}
	}
}

// FuzzSplitEnvelope: whatever the fast path accepts, the careful path
// accepts too, with the same objects byte for byte.
func FuzzSplitEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"objects":[{"type":"identity"}]}`, ` { "objects" : [ {"a":"]}"} , [1,{"b":"\\\""}] ,"x", 1.5e3 , null ] , "more":true, "next":"n" } `,
		`{"objects":[{}],"objects":[{}]}`, `{"objects":[]}`, `{"more":false}`, `{"objects":[{}],"type":"bundle"}`,
		`{"obj\u0065cts":[{}]}`, `{"objects":[{}]} x`, `{"objects":[{"k":"\ud800"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := splitEnvelope(body)
		if !ok {
			return
		}
		slow, err := parseEnvelopeCarefully(body)
		if err != nil {
			t.Fatalf("fast path accepted %q, careful path refused it: %v", body, err)
		}
		if len(fast) != len(slow) {
			t.Fatalf("fast path found %d objects, careful path %d, in %q", len(fast), len(slow), body)
		}
		for i := range fast {
			if !bytes.Equal(fast[i], slow[i]) {
				t.Fatalf("object %d: fast %q, careful %q", i, fast[i], slow[i])
			}
		}
	})
}
