package node

import (
	"bytes"
	"testing"
)

func TestParseDict(t *testing.T) {
	for _, tc := range []struct {
		in, out string // out "" means a parse error
	}{
		{`a=1, b=?0, c`, `a=1, b=?0, c`},
		{`sig=("@method" "content-digest";req;key="x");created=1;nonce="n\"q";alg="ed25519"`, `sig=("@method" "content-digest";req;key="x");created=1;nonce="n\"q";alg="ed25519"`},
		{`sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`, `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`},
		{`  a=1 ,	b=2`, `a=1, b=2`},
		{`a=1, a=2`, `a=2`},
		{`a=1.50, b=-0.0, t=tok/en:x`, `a=1.5, b=0.0, t=tok/en:x`},
		{`a=()`, `a=()`},
		{`a=1,`, ``},
		{`A=1`, ``},
		{`a=1 b=2`, ``},
		{`a="unterminated`, ``},
		{`a=:notbase64!:`, ``},
		{`a=1234567890123456`, ``},
		{`a=1.2345`, ``},
		{`a=?2`, ``},
		{`a=("x"`, ``},
		{`a="\x"`, ``},
		{"a=\"\x7f\"", ``},
	} {
		d, err := parseDict(tc.in)
		if tc.out == "" {
			if err == nil {
				t.Errorf("parseDict(%q) = %v, want an error", tc.in, serializeDict(d))
			}
			continue
		}
		if err != nil {
			t.Errorf("parseDict(%q): %v", tc.in, err)
			continue
		}
		if got := serializeDict(d); got != tc.out {
			t.Errorf("parseDict(%q) serialized = %q, want %q", tc.in, got, tc.out)
		}
	}
}

// FuzzParseDict: whatever parses serializes to text that parses to the
// same serialization (a fixed point), so a signer and a verifier that
// re-serialize a field agree on it.
func FuzzParseDict(f *testing.F) {
	for _, s := range []string{`a=1, b=?0, c`, `sig=("@method" "x";req;key="y");created=1;nonce="n"`, `sha-256=:AAAA:`, `a=1.5;q=tok`, `a=(1 2);x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDict(s)
		if err != nil {
			return
		}
		once := serializeDict(d)
		d2, err := parseDict(once)
		if err != nil {
			t.Fatalf("%q parsed, but its serialization %q does not: %v", s, once, err)
		}
		if twice := serializeDict(d2); !bytes.Equal([]byte(once), []byte(twice)) {
			t.Fatalf("serialization not stable: %q then %q", once, twice)
		}
	})
}
