package escrow

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func indicator(n int) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.0.0.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, n, n%250)
}

func bundleOf(objs ...string) string {
	return `{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000001","objects":[` + strings.Join(objs, ",") + `]}`
}

func TestParseBundle(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      int    // objects, when valid
		problem   string // substring of the error, when not
	}{
		{"two objects", bundleOf(indicator(1), indicator(2)), 2, ""},
		{"not JSON", `{"type":`, 0, "not a JSON STIX bundle"},
		{"wrong type", `{"type":"indicator","id":"bundle--00000000-0000-4000-8000-000000000001","objects":[]}`, 0, `not "bundle"`},
		{"bad id", `{"type":"bundle","id":"bundle--x","objects":[` + indicator(1) + `]}`, 0, "not bundle--<uuid>"},
		{"empty", bundleOf(), 0, "holds no objects"},
		{"invalid object", bundleOf(indicator(1), `{"type":"indicator","id":"indicator--bad"}`), 0, "1 of 2 objects are invalid"},
		{"duplicate", bundleOf(indicator(1), indicator(1)), 0, "appears twice"},
		{"trailing value", bundleOf(indicator(1)) + "{}", 0, "more than one JSON value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseBundle([]byte(tc.raw))
			if tc.problem == "" {
				if err != nil || len(b.Objects) != tc.want {
					t.Fatalf("ParseBundle = %d objects, %v; want %d", len(b.Objects), err, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.problem) {
				t.Fatalf("ParseBundle error = %v; want ErrInvalid naming %q", err, tc.problem)
			}
		})
	}
}

// FuzzParseBundle: never panics; an accepted bundle re-encoded from its
// objects' raw bytes parses to the same objects (round trip).
func FuzzParseBundle(f *testing.F) {
	f.Add([]byte(bundleOf(indicator(1), indicator(2))))
	f.Add([]byte(bundleOf()))
	f.Add([]byte(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000001","objects":[{}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := ParseBundle(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if len(b.Objects) == 0 {
			t.Fatal("accepted a bundle without objects")
		}
		raws := make([]json.RawMessage, len(b.Objects))
		for i, o := range b.Objects {
			raws[i] = o.Raw
		}
		re, err := json.Marshal(map[string]any{"type": "bundle", "id": b.ID, "objects": raws})
		if err != nil {
			t.Fatal(err)
		}
		b2, err := ParseBundle(re)
		if err != nil {
			t.Fatalf("re-encoded bundle refused: %v", err)
		}
		if len(b2.Objects) != len(b.Objects) {
			t.Fatalf("round trip: %d objects, want %d", len(b2.Objects), len(b.Objects))
		}
		for i := range b.Objects {
			if b.Objects[i].ID != b2.Objects[i].ID || b.Objects[i].Type != b2.Objects[i].Type {
				t.Fatalf("round trip object %d: %s/%s, want %s/%s", i, b2.Objects[i].ID, b2.Objects[i].Type, b.Objects[i].ID, b.Objects[i].Type)
			}
		}
	})
}
