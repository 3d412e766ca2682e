package stix

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func FuzzParseObject(f *testing.F) {
	f.Add(smallIndicator)
	f.Add([]byte(`{"type":"x-a","id":"x-a--6ba7b810-9dad-41d1-80b4-00c04fd430c8"}`))
	f.Add([]byte(`{"a":"\ud83d\ude00","b":[1,2.5e3,-0,true,false,null,{}]}`))
	if testdataDirOrEmpty() != "" {
		objs := loadDir(f, "valid")
		for i := 0; i < len(objs); i += 40 {
			f.Add([]byte(objs[i].raw))
		}
		for _, fo := range loadDir(f, "invalid") {
			f.Add([]byte(fo.raw))
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in := append([]byte(nil), raw...)
		obj, err := ParseObject(raw)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) || ve.Reason == "" {
				t.Fatalf("error %v is not a *ValidationError wrapping ErrInvalid", err)
			}
			return
		}
		if string(obj.Raw) != string(in) {
			t.Fatal("Raw differs from the input")
		}
		if !strings.HasPrefix(obj.ID, obj.Type+"--") || len(obj.ID) != len(obj.Type)+38 {
			t.Fatalf("id %q and type %q disagree", obj.ID, obj.Type)
		}
		if obj.SpecVersion != "2.1" {
			t.Fatalf("spec version %q", obj.SpecVersion)
		}
		if !obj.Created.IsZero() && !obj.Modified.IsZero() && obj.Modified.Before(obj.Created) {
			t.Fatal("accepted modified before created")
		}
		for _, r := range append(append([]string{}, obj.Markings...), obj.Refs...) {
			if _, ok := splitIdentifier(r); !ok {
				t.Fatalf("non-identifier %q in Markings/Refs", r)
			}
		}
		again, err := ParseObject(obj.Raw)
		if err != nil {
			t.Fatalf("accepted object fails on re-parse: %v", err)
		}
		if !reflect.DeepEqual(obj, again) {
			t.Fatalf("re-parse differs:\n%+v\n%+v", obj, again)
		}
	})
}

// FuzzJSON holds the strict parser to encoding/json: whatever it accepts is
// valid JSON, and it only rejects valid JSON for duplicate keys, depth, or
// text that is not UTF-8 / has lone surrogates (which encoding/json
// replaces instead of refusing).
func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":null}],"c":"\u00e9\n"}`, `[]`, `{"a":1,"a":2}`, `"\ud800"`, `-0.5e+10`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parseJSON(data)
		valid := json.Valid(data)
		if err == nil && !valid {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if err != nil && valid {
			msg := err.Error()
			if !strings.Contains(msg, "duplicate key") && !strings.Contains(msg, "nesting deeper") &&
				!strings.Contains(msg, "UTF-8") && !strings.Contains(msg, "surrogate") {
				t.Fatalf("rejected valid JSON %q: %v", data, err)
			}
		}
	})
}
