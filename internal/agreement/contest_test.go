package agreement

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestContestSignVerify(t *testing.T) {
	now := time.Now()
	alice, mallory, ring := aliceAndMallory(t, now)
	st := ContestStatement{Action: ContestFile, AgreementID: NewID(), PartyID: "party--alice", ObjectID: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
		Reason: "a loopback address", SignedAt: now}
	sc, err := SignContest(alice, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyContest(ring, sc); err != nil {
		t.Fatalf("a good contest: %v", err)
	}
	// Through JSON, as the API carries it.
	raw, _ := json.Marshal(sc)
	var back SignedContest
	if err := json.Unmarshal(raw, &back); err != nil || VerifyContest(ring, back) != nil {
		t.Fatalf("round trip: %v / %v", err, VerifyContest(ring, back))
	}
	for name, edit := range map[string]func(*SignedContest){
		"another object": func(s *SignedContest) { s.ObjectID = "indicator--0b3c8a4e-1e7f-4c62-9d1f-6a5b1f0f6c11" },
		"another reason": func(s *SignedContest) { s.Reason = "changed" },
		"another time":   func(s *SignedContest) { s.SignedAt = s.SignedAt.Add(time.Second) },
		"made a withdraw": func(s *SignedContest) {
			s.Action, s.ObjectID, s.Reason, s.ContestID = ContestWithdraw, "", "", "contest--x"
		},
		"claims mallory":   func(s *SignedContest) { s.PartyID = "party--mallory" },
		"truncated sig":    func(s *SignedContest) { s.Sig = s.Sig[:10] },
		"flipped sig byte": func(s *SignedContest) { s.Sig = append([]byte(nil), s.Sig...); s.Sig[0] ^= 1 },
	} {
		bad := sc
		edit(&bad)
		if err := VerifyContest(ring, bad); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	// Mallory's key, alice's name.
	forged := st
	forged.KeyID = mallory.KeyID()
	fs, err := SignContest(mallory, forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyContest(ring, fs); !errors.Is(err, ErrNotParty) {
		t.Fatalf("mallory signing as alice: %v, want ErrNotParty", err)
	}
	// A contest signature is not a lifecycle signature and back.
	if msg, _ := st.Canonical(); !strings.Contains(string(msg), contestContext) {
		t.Fatal("the contest statement is not domain-separated")
	}
	for name, bad := range map[string]ContestStatement{
		"no reason":             {Action: ContestFile, AgreementID: st.AgreementID, PartyID: "party--alice", ObjectID: st.ObjectID, SignedAt: now},
		"no object":             {Action: ContestFile, AgreementID: st.AgreementID, PartyID: "party--alice", Reason: "x", SignedAt: now},
		"withdraw with reason":  {Action: ContestWithdraw, AgreementID: st.AgreementID, PartyID: "party--alice", ContestID: "contest--1", Reason: "x", SignedAt: now},
		"withdraw without id":   {Action: ContestWithdraw, AgreementID: st.AgreementID, PartyID: "party--alice", SignedAt: now},
		"unknown action":        {Action: "revoke", AgreementID: st.AgreementID, PartyID: "party--alice", SignedAt: now},
		"bad agreement id":      {Action: ContestFile, AgreementID: "agreement--1", PartyID: "party--alice", ObjectID: st.ObjectID, Reason: "x", SignedAt: now},
		"no signing time":       {Action: ContestFile, AgreementID: st.AgreementID, PartyID: "party--alice", ObjectID: st.ObjectID, Reason: "x"},
		"reason over the limit": {Action: ContestFile, AgreementID: st.AgreementID, PartyID: "party--alice", ObjectID: st.ObjectID, Reason: strings.Repeat("x", MaxReasonLen+1), SignedAt: now},
	} {
		if _, err := SignContest(alice, bad); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: signed (%v)", name, err)
		}
	}
}

func TestContestWindowInDocument(t *testing.T) {
	raw := mutate(t, func(m map[string]any) {
		m["reciprocity"].(map[string]any)["contest_window"] = "168h"
	})
	d, err := ParseDocument(raw)
	if err != nil || d.Reciprocity.ContestWindow != 168*time.Hour {
		t.Fatalf("contest_window: %+v, %v", d, err)
	}
	again, err := ParseDocument(d.Canonical())
	if err != nil || again.Hash() != d.Hash() || !strings.Contains(string(d.Canonical()), `"contest_window":"168h0m0s"`) {
		t.Fatalf("round trip: %s, %v", d.Canonical(), err)
	}
	plain, _ := ParseDocument(exampleRaw(t))
	if strings.Contains(string(plain.Canonical()), "contest_window") {
		t.Fatal("a document without contest_window encodes one")
	}
	if _, err := ParseDocument(mutate(t, func(m map[string]any) { m["reciprocity"].(map[string]any)["contest_window"] = "-1h" })); err == nil ||
		!strings.Contains(err.Error(), "contest_window must be positive") {
		t.Fatalf("negative window: %v", err)
	}
}

// aliceAndMallory makes two parties' keys, both registered an hour before
// now, for the tests of signed statements.
func aliceAndMallory(t *testing.T, now time.Time) (alice, mallory *PrivateKeys, ring *KeyRing) {
	t.Helper()
	ring = NewKeyRing()
	for _, id := range []string{"party--alice", "party--mallory"} {
		k, err := GenerateKeys()
		if err != nil {
			t.Fatal(err)
		}
		if err := ring.Register(id, k.Public(), now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if id == "party--alice" {
			alice = k
		} else {
			mallory = k
		}
	}
	return alice, mallory, ring
}
