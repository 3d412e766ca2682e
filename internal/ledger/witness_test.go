package ledger

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func testWitness(t testing.TB, logVKey string) (*Witness, string) {
	t.Helper()
	skey, vkey, err := GenerateWitnessKey("witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWitness(skey, logVKey, WitnessState{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w, vkey
}

func TestWitnessCosignsAndNoteVerifies(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	s := testSigner(t)
	w, wkey := testWitness(t, s.VerifierKey())
	now := time.Unix(1764000000, 0)

	prev := int64(0)
	for _, grow := range []int{5, 1, 300} {
		appendN(t, st, int(prev), grow, 100)
		c, signed, err := NewCheckpoint(ctx, st, s)
		if err != nil {
			t.Fatal(err)
		}
		proof, err := ConsistencyProof(ctx, st, prev, c.Size)
		if err != nil {
			t.Fatal(err)
		}
		req := AddCheckpointRequest{OldSize: prev, Proof: proof, Checkpoint: signed}
		parsed, err := ParseAddCheckpoint(req.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		line, err := w.AddCheckpoint(parsed, now)
		if err != nil {
			t.Fatalf("cosign size %d: %v", c.Size, err)
		}
		// The served form (checkpoint + cosignature) verifies with note.Open
		// given both keys, and the cosignature alone with its vkey.
		cv, err := NewCosignatureVerifier(wkey)
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(WithCosignatures(signed, [][]byte{line}), note.VerifierList(s.Verifier(), cv))
		if err != nil || len(n.Sigs) != 2 {
			t.Fatalf("cosigned note: %v (%d sigs)", err, len(n.Sigs))
		}
		cs, err := VerifyCosignatureLine([]byte(n.Text), line, wkey)
		if err != nil || !cs.Time.Equal(now) {
			t.Fatalf("cosignature: %+v, %v", cs, err)
		}
		if got := w.State(); got.Size != c.Size || got.Hash != c.Hash {
			t.Fatalf("witness state %+v", got)
		}
		prev = c.Size
	}
}

func TestWitnessRefuses(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	s := testSigner(t)
	appendN(t, st, 0, 10, 10)
	c10, signed10, _ := NewCheckpoint(ctx, st, s)
	appendN(t, st, 10, 10, 10)
	_, signed20, _ := NewCheckpoint(ctx, st, s)
	proof, _ := ConsistencyProof(ctx, st, 10, 20)

	otherLog := testSigner(t)
	byOther, _ := otherLog.Sign(c10)
	forkKeyHolder := s // the log itself equivocating
	fork10, _ := forkKeyHolder.Sign(Checkpoint{Origin: testOrigin, Size: 10, Hash: tlog.Hash{9}})
	foreignSkey, _, _ := GenerateSignerKey("other.example/log")
	foreign, _ := NewSigner(foreignSkey)
	foreignCP, _ := foreign.Sign(Checkpoint{Origin: "other.example/log", Size: 1})

	bad := append(tlog.TreeProof{}, proof...)
	bad[0][0] ^= 1
	tests := []struct {
		name string
		req  AddCheckpointRequest
		want error
	}{
		{"other key", AddCheckpointRequest{OldSize: 10, Checkpoint: byOther}, ErrBadSignature},
		{"unknown origin", AddCheckpointRequest{OldSize: 10, Checkpoint: foreignCP}, ErrNotFound},
		{"old size beyond checkpoint", AddCheckpointRequest{OldSize: 30, Checkpoint: signed20}, ErrInvalid},
		{"stale old size", AddCheckpointRequest{OldSize: 0, Checkpoint: signed20}, ErrConflict},
		{"fork at same size", AddCheckpointRequest{OldSize: 10, Checkpoint: fork10}, ErrFork},
		{"bad proof", AddCheckpointRequest{OldSize: 10, Proof: bad, Checkpoint: signed20}, ErrInconsistent},
		{"truncated proof", AddCheckpointRequest{OldSize: 10, Proof: proof[:len(proof)-1], Checkpoint: signed20}, ErrTruncatedProof},
		{"garbage note", AddCheckpointRequest{OldSize: 10, Checkpoint: []byte("x\n")}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := testWitness(t, s.VerifierKey())
			if _, err := w.AddCheckpoint(AddCheckpointRequest{Checkpoint: signed10}, time.Now()); err != nil {
				t.Fatal(err)
			}
			_, err := w.AddCheckpoint(tt.req, time.Now())
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var sc *SizeConflictError
			if errors.Is(err, ErrConflict) && (!errors.As(err, &sc) || sc.Size != 10) {
				t.Fatalf("conflict does not report size 10: %v", err)
			}
			if got := w.State(); got.Size != 10 || got.Hash != c10.Hash {
				t.Fatalf("refused request changed state to %+v", got)
			}
		})
	}
}

func TestVerifyCosignatureLineFailures(t *testing.T) {
	s := testSigner(t)
	w, wkey := testWitness(t, s.VerifierKey())
	_, otherKey := testWitness(t, s.VerifierKey())
	c := Checkpoint{Origin: testOrigin, Size: 0, Hash: tlog.Hash{}}
	signed, _ := s.Sign(c)
	line, err := w.AddCheckpoint(AddCheckpointRequest{Checkpoint: signed}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body := c.Marshal()
	parsed, err := ParseSignatureLine(line)
	if err != nil {
		t.Fatal(err)
	}
	raw := binary.BigEndian.AppendUint32(nil, parsed.KeyHash)
	raw = append(raw, parsed.Sig...)
	raw[len(raw)-1] ^= 1 // a valid line whose signature is wrong
	flipped := []byte("— " + parsed.Name + " " + base64.StdEncoding.EncodeToString(raw) + "\n")
	tests := []struct {
		name       string
		body, line []byte
		key        string
		want       error
	}{
		{"other witness key", body, line, otherKey, ErrBadSignature},
		{"other body", Checkpoint{Origin: testOrigin, Size: 1}.Marshal(), line, wkey, ErrBadSignature},
		{"flipped signature", body, flipped, wkey, ErrBadSignature},
		{"not a line", body, []byte("hello"), wkey, ErrMalformed},
		{"bad key", body, line, "nonsense", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := VerifyCosignatureLine(tt.body, tt.line, tt.key); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzParseSignatureLine(f *testing.F) {
	f.Add([]byte("— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"))
	f.Add([]byte("— a AAAAAAA=\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseSignatureLine(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		// A parsed line is accepted by note.Open's own grammar too.
		msg := append([]byte("body\n\n"), bytes.TrimSuffix(in, []byte("\n"))...)
		msg = append(msg, '\n')
		_, err = note.Open(msg, note.VerifierList())
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) || len(unverified.Note.UnverifiedSigs) != 1 || unverified.Note.UnverifiedSigs[0].Name != c.Name {
			t.Fatalf("line %q parsed here but note.Open says %v", in, err)
		}
	})
}

func FuzzParseAddCheckpoint(f *testing.F) {
	f.Add([]byte("old 0\n\norigin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— origin AAAA\n"))
	f.Add([]byte("old 5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\nx"))
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := ParseAddCheckpoint(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(req.Marshal(), in) {
			t.Fatalf("round trip: %q → %q", in, req.Marshal())
		}
	})
}

func FuzzParseProof(f *testing.F) {
	f.Add([]byte("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		hs, rest, err := parseProofLines(in, maxProofLines)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		req := AddCheckpointRequest{Proof: hs, Checkpoint: rest}
		if got := req.Marshal()[len("old 0\n"):]; !bytes.Equal(got, in) {
			t.Fatalf("round trip %q → %q", in, got)
		}
	})
}

func TestVerifierQuorum(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	s := testSigner(t)
	appendN(t, st, 0, 3, 3)
	_, signed, _ := NewCheckpoint(ctx, st, s)
	w1, k1 := testWitness(t, s.VerifierKey())
	w2, k2 := testWitness(t, s.VerifierKey())
	_, k3 := testWitness(t, s.VerifierKey())
	l1, _ := w1.AddCheckpoint(AddCheckpointRequest{Checkpoint: signed}, time.Now())
	l2, _ := w2.AddCheckpoint(AddCheckpointRequest{Checkpoint: signed}, time.Now())
	tests := []struct {
		name  string
		lines [][]byte
		ok    bool
	}{
		{"none", nil, false},
		{"one", [][]byte{l1}, false},
		{"same one twice", [][]byte{l1, l1}, false},
		{"two", [][]byte{l1, l2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := NewVerifier(s.VerifierKey(), "")
			if err := v.RequireCosignatures([]string{k1, k2, k3}, 2); err != nil {
				t.Fatal(err)
			}
			_, err := v.Accept(WithCosignatures(signed, tt.lines), nil)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadSignature)) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
