package agreement

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestVerificationSignVerify(t *testing.T) {
	now := time.Now()
	alice, mallory, ring := aliceAndMallory(t, now)
	root := base64.StdEncoding.EncodeToString(make([]byte, 32))
	st := VerificationStatement{PartyID: "party--alice", Origin: "parley.example/log", Size: 12, Root: root,
		Result: VerificationOK, Entries: 3, VerifiedAt: now}
	sv, err := SignVerification(alice, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyVerification(ring, sv); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	raw, _ := json.Marshal(sv)
	var back SignedVerification
	if err := json.Unmarshal(raw, &back); err != nil || VerifyVerification(ring, back) != nil {
		t.Fatalf("round trip: %v / %v", err, VerifyVerification(ring, back))
	}
	for name, edit := range map[string]func(*SignedVerification){
		"another size": func(s *SignedVerification) { s.Size++ },
		"another root": func(s *SignedVerification) {
			s.Root = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
		},
		"another origin":   func(s *SignedVerification) { s.Origin = "evil.example/log" },
		"more entries":     func(s *SignedVerification) { s.Entries++ },
		"another time":     func(s *SignedVerification) { s.VerifiedAt = s.VerifiedAt.Add(time.Second) },
		"claims mallory":   func(s *SignedVerification) { s.PartyID = "party--mallory" },
		"failed result":    func(s *SignedVerification) { s.Result = "failed" },
		"short root":       func(s *SignedVerification) { s.Root = "AAAA" },
		"entries > size":   func(s *SignedVerification) { s.Entries = s.Size + 1 },
		"truncated sig":    func(s *SignedVerification) { s.Sig = s.Sig[:10] },
		"flipped sig byte": func(s *SignedVerification) { s.Sig = append([]byte(nil), s.Sig...); s.Sig[0] ^= 1 },
	} {
		bad := sv
		edit(&bad)
		if err := VerifyVerification(ring, bad); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	// Mallory signs alice's statement with its own key: the key is not alice's.
	forged := st
	forged.KeyID = ""
	fs, err := SignVerification(mallory, forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyVerification(ring, fs); !errors.Is(err, ErrNotParty) {
		t.Fatalf("mallory's key in alice's name: %v, want ErrNotParty", err)
	}
	// A malformed statement is refused before signing.
	if _, err := SignVerification(alice, VerificationStatement{PartyID: "party--alice", Origin: "o", Size: 1, Root: root, Result: "ok", Entries: 2, VerifiedAt: now}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("entries beyond the size signed: %v", err)
	}
}
