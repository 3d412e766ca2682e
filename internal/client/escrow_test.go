package client

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
)

func TestSealUnseal(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	plain := []byte(`{"type":"bundle"}`)
	ct, sum, err := Seal(plain, id.Recipient().String())
	if err != nil || len(sum) != 64 || bytes.Contains(ct, plain) {
		t.Fatalf("Seal = %d bytes, %q, %v", len(ct), sum, err)
	}
	got, err := Unseal(ct, id)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Unseal = %q, %v", got, err)
	}
	var noMatch *age.NoIdentityMatchError
	if _, err := Unseal(ct, other); !errors.As(err, &noMatch) {
		t.Fatalf("Unseal with another key = %v; want NoIdentityMatchError", err)
	}
	if _, _, err := Seal(plain, "not-a-recipient"); err == nil {
		t.Fatal("Seal to a bad recipient succeeded")
	}
}

func TestParseEventStream(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []int64
		bad      bool
	}{
		{"two events", "retry: 2000\n\nid: 1\nevent: a\ndata: {\"kind\":\"a\"}\n\n: keep-alive\n\nid: 2\nevent: b\ndata: {\"kind\":\"b\"}\n\n", []int64{1, 2}, false},
		{"incomplete tail", "id: 3\ndata: {\"kind\":\"a\"}\n", nil, false},
		{"bad json", "id: 1\ndata: {\n\n", nil, true},
		{"bad id", "id: x\ndata: {}\n\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			err := ParseEventStream(strings.NewReader(tc.in), func(e Event) error { got = append(got, e.Seq); return nil })
			if tc.bad != (err != nil) || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v; want %v (error %v)", got, err, tc.want, tc.bad)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// FuzzParseEventStream: never panics, and never delivers more events
// than the stream has data lines, nor one without an id line.
func FuzzParseEventStream(f *testing.F) {
	f.Add("id: 1\nevent: a\ndata: {\"kind\":\"a\"}\n\nid: 2\ndata: {}\n\n")
	f.Add(": x\n\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		n := 0
		_ = ParseEventStream(strings.NewReader(in), func(e Event) error {
			n++
			if !strings.Contains(in, "id:") {
				t.Fatalf("event %+v without an id line", e)
			}
			return nil
		})
		if n > strings.Count(in, "data:") {
			t.Fatalf("%d events from %d data lines", n, strings.Count(in, "data:"))
		}
	})
}
