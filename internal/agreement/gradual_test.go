package agreement

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func sum64(c byte) string { return strings.Repeat(string(c), 64) }

func TestChunkCommitmentSignVerify(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	alice, mallory, ring := aliceAndMallory(t, now)
	c := ChunkCommitment{Handover: "handover--1", Depositor: "party--alice", SignedAt: now,
		Chunks: []ChunkRef{{SHA256: sum64('a'), Size: 10}, {SHA256: sum64('b'), Size: 20}}}
	signed, err := SignCommitment(alice, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyCommitment(ring, signed); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// Through JSON, as nodes carry it.
	raw, _ := json.Marshal(signed)
	var back ChunkCommitment
	if err := json.Unmarshal(raw, &back); err != nil || VerifyCommitment(ring, back) != nil {
		t.Fatalf("round trip: %v / %v", err, VerifyCommitment(ring, back))
	}
	for name, bad := range map[string]func(c ChunkCommitment) ChunkCommitment{
		"changed hash": func(c ChunkCommitment) ChunkCommitment {
			c.Chunks = []ChunkRef{{sum64('c'), 10}, c.Chunks[1]}
			return c
		},
		"changed count": func(c ChunkCommitment) ChunkCommitment {
			c.Chunks = append(c.Chunks, ChunkRef{sum64('d'), 1})
			return c
		},
		"changed size": func(c ChunkCommitment) ChunkCommitment {
			c.Chunks = []ChunkRef{{sum64('a'), 11}, c.Chunks[1]}
			return c
		},
		"other case":  func(c ChunkCommitment) ChunkCommitment { c.Handover = "handover--2"; return c },
		"other party": func(c ChunkCommitment) ChunkCommitment { c.Depositor = "party--mallory"; return c },
		"one chunk":   func(c ChunkCommitment) ChunkCommitment { c.Chunks = c.Chunks[:1]; return c },
		"upper-case hex": func(c ChunkCommitment) ChunkCommitment {
			c.Chunks = []ChunkRef{{strings.ToUpper(sum64('a')), 10}, c.Chunks[1]}
			return c
		},
	} {
		if err := VerifyCommitment(ring, bad(signed)); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	// Mallory signing as alice: the key is not alice's.
	forged, err := SignCommitment(mallory, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyCommitment(ring, forged); !errors.Is(err, ErrNotParty) {
		t.Fatalf("mallory's key for alice: %v", err)
	}
}

func TestChunkVerdictSignVerify(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	alice, mallory, ring := aliceAndMallory(t, now)
	v := ChunkVerdict{Action: ChunkConfirm, Handover: "handover--1", Depositor: "party--mallory", Recipient: "party--alice",
		Index: 1, SHA256: sum64('a'), SignedAt: now}
	signed, err := SignChunkVerdict(alice, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyChunkVerdict(ring, signed); err != nil {
		t.Fatalf("verify: %v", err)
	}
	changed := signed
	changed.Index = 2
	if err := VerifyChunkVerdict(ring, changed); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed index: %v", err)
	}
	turned := signed
	turned.Action, turned.Reason = ChunkReject, "garbage"
	if err := VerifyChunkVerdict(ring, turned); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a confirmation turned into a rejection: %v", err)
	}
	if _, err := SignChunkVerdict(alice, ChunkVerdict{Action: ChunkReject, Handover: "handover--1", Depositor: "party--mallory",
		Recipient: "party--alice", Index: 1, SHA256: sum64('a'), SignedAt: now}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a rejection without a reason: %v", err)
	}
	forged, err := SignChunkVerdict(mallory, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyChunkVerdict(ring, forged); !errors.Is(err, ErrNotParty) {
		t.Fatalf("mallory's key for alice: %v", err)
	}
}

// FuzzChunkStatements: whatever JSON arrives, verifying never panics, and
// only what was signed verifies.
func FuzzChunkStatements(f *testing.F) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	alice, _, ring := aliceAndMallory(&testing.T{}, now)
	c, _ := SignCommitment(alice, ChunkCommitment{Handover: "handover--1", Depositor: "party--alice", SignedAt: now,
		Chunks: []ChunkRef{{SHA256: sum64('a'), Size: 10}, {SHA256: sum64('b'), Size: 20}}})
	good, _ := json.Marshal(c)
	f.Add(good)
	f.Add([]byte(`{"action":"confirm","index":-1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var c ChunkCommitment
		if json.Unmarshal(raw, &c) == nil && VerifyCommitment(ring, c) == nil {
			again, _ := json.Marshal(c)
			var back ChunkCommitment
			if json.Unmarshal(again, &back) != nil || VerifyCommitment(ring, back) != nil {
				t.Fatalf("a verified commitment does not survive a round trip: %s", raw)
			}
		}
		var v ChunkVerdict
		if json.Unmarshal(raw, &v) == nil {
			_ = VerifyChunkVerdict(ring, v)
		}
	})
}
