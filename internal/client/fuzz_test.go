package client

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return "invalid:" + string(b)
	}
	return buf.String()
}

// FuzzDecodeEnvelope checks the streaming decoder against encoding/json: on
// any input it accepts, the input is valid JSON and more, next and the
// objects equal what json.Unmarshal reads for the exact member names; on
// well-formed envelopes (which it must accept) the two agree too.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"more":true,"next":"abc","objects":[{"id":"a"},{"id":"b","x":[1,2]}]}`,
		`{"objects":[]}`, `{}`, `{"objects":null,"more":null}`,
		`{"objects":[{"a":1}],"objects":[{"b":2}]}`,
		`{"more":false,"x":{"objects":[1]},"objects":[{}]}`,
		`{"objects":[1]}`, `[]`, `{"more":"yes"}`, `{"objects":[{}]} x`,
		`{"Objects":[{}]}`, "{\"objects\":[{\"s\":\"\\u00e9\xff\"}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var env Envelope
		var objs []json.RawMessage
		err := decodeEnvelope(bytes.NewReader(in), &env, func() { objs = objs[:0] }, func(o json.RawMessage) error {
			objs = append(objs, o)
			return nil
		})

		// The reference reading: exact member names, last duplicate wins.
		var members map[string]json.RawMessage
		refErr := json.Unmarshal(in, &members)
		if refErr == nil && members == nil {
			// encoding/json takes a JSON null as an empty map; an envelope
			// must be an object, and a server answering null is broken.
			refErr = errNotObject
		}
		var ref struct {
			more    bool
			next    string
			objects []json.RawMessage
		}
		if refErr == nil {
			if m, ok := members["more"]; ok {
				var b *bool
				if refErr = json.Unmarshal(m, &b); b != nil {
					ref.more = *b
				}
			}
			if m, ok := members["next"]; ok && refErr == nil {
				var s *string
				if refErr = json.Unmarshal(m, &s); s != nil {
					ref.next = *s
				}
			}
			if m, ok := members["objects"]; ok && refErr == nil {
				refErr = json.Unmarshal(m, &ref.objects)
				for _, o := range ref.objects {
					if refErr == nil && (len(o) == 0 || o[0] != '{') {
						refErr = errNotObject
					}
				}
			}
		}
		if (err == nil) != (refErr == nil) {
			t.Fatalf("decodeEnvelope err=%v, reference err=%v, input %q", err, refErr, in)
		}

		// The same input read in tiny chunks (a value cut anywhere, read
		// again from its start) reads the same.
		var small Envelope
		var smallObjs []json.RawMessage
		smallErr := decodeEnvelopeChunks(bytes.NewReader(in), 1+len(in)%5, &small, func() { smallObjs = smallObjs[:0] }, func(o json.RawMessage) error {
			smallObjs = append(smallObjs, o)
			return nil
		})
		if (smallErr == nil) != (err == nil) || small.More != env.More || small.Next != env.Next || len(smallObjs) != len(objs) {
			t.Fatalf("in small chunks: err=%v more=%v next=%q %d objects; at once: err=%v more=%v next=%q %d objects",
				smallErr, small.More, small.Next, len(smallObjs), err, env.More, env.Next, len(objs))
		}
		for i := range objs {
			if !bytes.Equal(objs[i], smallObjs[i]) {
				t.Fatalf("object %d in small chunks: %s vs %s", i, smallObjs[i], objs[i])
			}
		}
		if err != nil {
			return
		}
		if env.More != ref.more || env.Next != ref.next || len(objs) != len(ref.objects) {
			t.Fatalf("got more=%v next=%q %d objects; reference more=%v next=%q %d objects",
				env.More, env.Next, len(objs), ref.more, ref.next, len(ref.objects))
		}
		for i := range objs {
			if compactJSON(objs[i]) != compactJSON(ref.objects[i]) {
				t.Fatalf("object %d: %s vs %s", i, objs[i], ref.objects[i])
			}
		}
	})
}

var errNotObject = &json.UnsupportedValueError{Str: "not an object"}

// FuzzDecodeBundle checks that the bundle streamer finds exactly the objects
// json.Unmarshal finds in "objects" (or in a bare array), and that what it
// accepts re-encodes to a bundle it reads back identically.
func FuzzDecodeBundle(f *testing.F) {
	f.Add([]byte(`{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","id":"indicator--1"}]}`))
	f.Add([]byte(`[{"id":"a"},{"id":"b"}]`))
	f.Add([]byte(`{"objects":[]}`))
	f.Add([]byte(`{"objects":[{}],"objects":[{},{}]}`))
	f.Add([]byte(`{"objects":[[]]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var got []string
		err := decodeBundle(bytes.NewReader(in), func(o json.RawMessage) error {
			got = append(got, compactJSON(o))
			return nil
		})
		if err != nil {
			return
		}
		if !json.Valid(in) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		// Re-encode what was read and read it again: same objects.
		var b strings.Builder
		b.WriteString(`{"objects":[`)
		b.WriteString(strings.Join(got, ","))
		b.WriteString(`]}`)
		var again []string
		if err := decodeBundle(strings.NewReader(b.String()), func(o json.RawMessage) error {
			again = append(again, compactJSON(o))
			return nil
		}); err != nil {
			t.Fatalf("re-encoded bundle refused: %v", err)
		}
		if strings.Join(again, "\n") != strings.Join(got, "\n") {
			t.Fatalf("round trip changed objects")
		}
	})
}

// FuzzObjectID checks ObjectID against encoding/json on the exact member
// name "id": what it finds is what json.Unmarshal finds, and it finds
// nothing in what json.Unmarshal refuses.
func FuzzObjectID(f *testing.F) {
	for _, s := range []string{
		`{"id":"indicator--1","type":"indicator"}`, `{"type":"x","id":"a","id":"b"}`,
		`{"id":1}`, `{"x":{"id":"inner"}}`, `{"id":"\u00e9\ud800"}`, ` {"id":"a"} `, `{"id":"a"}x`,
		`{"id":"a",}`, `[]`, `{}`, `{"id":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got := ObjectID(in)
		var members map[string]json.RawMessage
		if err := json.Unmarshal(in, &members); err != nil || members == nil {
			if got != "" {
				t.Fatalf("ObjectID(%q) = %q from a document encoding/json refuses", in, got)
			}
			return
		}
		var want string
		if m, ok := members["id"]; ok && len(m) > 0 && m[0] == '"' {
			if err := json.Unmarshal(m, &want); err != nil {
				t.Fatal(err)
			}
		}
		if got != want {
			t.Fatalf("ObjectID(%q) = %q, encoding/json reads %q", in, got, want)
		}
	})
}
