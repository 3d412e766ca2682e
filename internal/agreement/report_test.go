package agreement

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestReportSignVerify(t *testing.T) {
	now := time.Now()
	alice, mallory, ring := aliceAndMallory(t, now)
	hash := "sha256:" + "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"
	st := ReportStatement{AgreementID: NewID(), PartyID: "party--alice", ReportHash: hash,
		From: now.Add(-24 * time.Hour), To: now, SignedAt: now}
	sr, err := SignReport(alice, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyReport(ring, sr); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	raw, _ := json.Marshal(sr)
	var back SignedReport
	if err := json.Unmarshal(raw, &back); err != nil || VerifyReport(ring, back) != nil {
		t.Fatalf("round trip: %v / %v", err, VerifyReport(ring, back))
	}
	for name, edit := range map[string]func(*SignedReport){
		"another hash":      func(s *SignedReport) { s.ReportHash = hash[:len(hash)-1] + "c" },
		"another period":    func(s *SignedReport) { s.From = s.From.Add(time.Second) },
		"another agreement": func(s *SignedReport) { s.AgreementID = NewID() },
		"another time":      func(s *SignedReport) { s.SignedAt = s.SignedAt.Add(time.Second) },
		"claims mallory":    func(s *SignedReport) { s.PartyID = "party--mallory" },
		"truncated sig":     func(s *SignedReport) { s.Sig = s.Sig[:10] },
		"flipped sig byte":  func(s *SignedReport) { s.Sig = append([]byte(nil), s.Sig...); s.Sig[0] ^= 1 },
		"not a hash":        func(s *SignedReport) { s.ReportHash = "sha256:XYZ" },
		"empty period":      func(s *SignedReport) { s.To = s.From },
	} {
		bad := sr
		edit(&bad)
		if err := VerifyReport(ring, bad); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	// Mallory signs with its own key in alice's name: the key is not alice's.
	forged := st
	forged.KeyID = ""
	fs, err := SignReport(mallory, forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyReport(ring, fs); !errors.Is(err, ErrNotParty) {
		t.Errorf("mallory's key under alice's name: %v, want ErrNotParty", err)
	}
	// A malformed hash is refused before signing.
	if _, err := SignReport(alice, ReportStatement{AgreementID: st.AgreementID, PartyID: "party--alice", ReportHash: "sha256:1", From: st.From, To: st.To, SignedAt: now}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("malformed hash signed: %v", err)
	}
}
