package ledger

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/canonjson"
)

// FuzzEncodeMatchesCanonjson checks the hand-written encoder against the
// project's RFC 8785 implementation on arbitrary field values.
func FuzzEncodeMatchesCanonjson(f *testing.F) {
	f.Add("party<a>&", "agr\"1\\", "k\u2028", "v\x01\x1f\t", "𐐷", "\uffff", "subj", int64(1764000000), int64(5))
	f.Add("", "", "", "", "a", "b", "s", int64(0), int64(0))
	f.Fuzz(func(t *testing.T, actor, agreement, k1, v1, k2, k3, subject string, sec, nsec int64) {
		e := Entry{
			Kind: KindAgreementAmended, Actor: actor, Agreement: agreement, Subject: subject,
			Attrs:   map[string]string{k1: v1, k2: actor, k3: ""},
			Parties: []string{k1, v1},
			Digests: map[string]string{k2: commitmentPrefix + strings.Repeat("0a", 32)},
			Nonce:   strings.Repeat("f0", NonceSize),
			Time:    time.Unix(sec%253402300799, nsec%1e9).UTC(),
			V:       EntryVersion,
		}
		got, err := e.Encode()
		if err != nil {
			return // invalid UTF-8, empty subject, time out of range
		}
		want, err := canonjson.Marshal(e)
		if err != nil {
			t.Fatalf("canonjson rejects what Encode accepted: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Encode differs from canonjson:\n got %s\nwant %s", got, want)
		}
		if _, err := DecodeEntry(got); err != nil {
			t.Fatalf("DecodeEntry(Encode()) = %v", err)
		}
	})
}
