package ledger

import (
	"encoding/json"
	"testing"
)

const testOrigin = "parley.test/ledger"

func testSigner(t testing.TB) *Signer {
	t.Helper()
	skey, _, err := GenerateSignerKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
