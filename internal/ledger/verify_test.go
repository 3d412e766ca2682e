package ledger

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// tamperRemote wraps a Remote and lets a test corrupt what it returns.
type tamperRemote struct {
	Remote
	consistency func(tlog.TreeProof) tlog.TreeProof
	inclusion   func(tlog.RecordProof) tlog.RecordProof
	checkpoint  []byte
}

func (t tamperRemote) Checkpoint(ctx context.Context) ([]byte, error) {
	if t.checkpoint != nil {
		return t.checkpoint, nil
	}
	return t.Remote.Checkpoint(ctx)
}

func (t tamperRemote) ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	p, err := t.Remote.ConsistencyProof(ctx, from, to)
	if err == nil && t.consistency != nil {
		p = t.consistency(p)
	}
	return p, err
}

func (t tamperRemote) InclusionProof(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	p, err := t.Remote.InclusionProof(ctx, index, size)
	if err == nil && t.inclusion != nil {
		p = t.inclusion(p)
	}
	return p, err
}

// logWith builds a log of n test entries with checkpoint and returns it.
func logWith(t *testing.T, s *Signer, n int, edit func(i int, e *Entry)) (*MemStore, []byte) {
	t.Helper()
	st := NewMemStore()
	ctx := context.Background()
	for i := range n {
		e := testEntry(i)
		if edit != nil {
			edit(i, &e)
		}
		if _, err := Append(ctx, st, e); err != nil {
			t.Fatal(err)
		}
	}
	_, signed, err := NewCheckpoint(ctx, st, s)
	if err != nil {
		t.Fatal(err)
	}
	return st, signed
}

func receiptsOf(t *testing.T, st *MemStore) []Receipt {
	ctx := context.Background()
	n, _ := st.Size(ctx)
	recs, err := st.ReadEntries(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Receipt, len(recs))
	for i, r := range recs {
		out[i] = ReceiptFor(int64(i), r)
	}
	return out
}

func TestVerifierHappyPath(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t)
	state := filepath.Join(t.TempDir(), "state.json")
	st := NewMemStore()
	remote := NewLocalRemote(st)
	for _, grow := range []int{0, 1, 2, 1500, 3} {
		v, err := NewVerifier(s.VerifierKey(), state) // reload state each round
		if err != nil {
			t.Fatal(err)
		}
		size, _ := st.Size(ctx)
		appendN(t, st, int(size), grow, 100)
		if _, _, err := NewCheckpoint(ctx, st, s); err != nil {
			t.Fatal(err)
		}
		c, err := v.Update(ctx, remote)
		if err != nil {
			t.Fatalf("update after +%d: %v", grow, err)
		}
		if err := v.CheckReceipts(ctx, remote, receiptsOf(t, st)); err != nil {
			t.Fatal(err)
		}
		var seen []int64
		err = v.Replay(ctx, remote, func(i int64, raw []byte, e Entry) error {
			if e.Subject != fmt.Sprintf("batch-%d", i) {
				return fmt.Errorf("entry %d is %s", i, e.Subject)
			}
			seen = append(seen, i)
			return nil
		})
		if err != nil || int64(len(seen)) != c.Size {
			t.Fatalf("replay: %v, %d of %d entries", err, len(seen), c.Size)
		}
	}
}

func TestTamperDetection(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t)
	const n = 40
	tests := []struct {
		name string
		run  func(t *testing.T, v *Verifier, st *MemStore) error
		want error
		msg  string // the error must name this
	}{
		{
			name: "edited entry",
			run: func(t *testing.T, v *Verifier, st *MemStore) error {
				st.data[st.ends[16]+5] ^= 1 // inside entry 17
				return v.Replay(ctx, NewLocalRemote(st), func(int64, []byte, Entry) error { return nil })
			},
			want: ErrEntryMismatch, msg: "entry 17",
		},
		{
			name: "edited stored hash",
			run: func(t *testing.T, v *Verifier, st *MemStore) error {
				st.hashes[tlog.StoredHashIndex(0, 9)][0] ^= 1 // leaf of entry 9
				return v.CheckReceipts(ctx, NewLocalRemote(st), receiptsOf(t, st))
			},
			want: ErrBadProof, msg: "entry 8", // entry 8's proof uses 9's leaf
		},
		{
			name: "deleted entry",
			run: func(t *testing.T, v *Verifier, st *MemStore) error {
				// Drop entry 3's bytes; the entries after it shift down.
				begin, end := st.ends[2], st.ends[3]
				st.data = slices.Delete(st.data, int(begin), int(end))
				st.ends = slices.Delete(st.ends, 3, 4)
				for i := 3; i < len(st.ends); i++ {
					st.ends[i] -= end - begin
				}
				return v.Replay(ctx, NewLocalRemote(st), func(int64, []byte, Entry) error { return nil })
			},
			want: ErrEntryMismatch, msg: "entry 3",
		},
		{
			name: "truncated inclusion proof",
			run: func(t *testing.T, v *Verifier, st *MemStore) error {
				r := tamperRemote{Remote: NewLocalRemote(st), inclusion: func(p tlog.RecordProof) tlog.RecordProof { return p[:len(p)-1] }}
				return v.CheckReceipts(ctx, r, receiptsOf(t, st)[5:6])
			},
			want: ErrTruncatedProof, msg: "entry 5",
		},
		{
			name: "truncated consistency proof",
			run: func(t *testing.T, v *Verifier, st *MemStore) error {
				appendN(t, st, n, 7, 7)
				NewCheckpoint(ctx, st, s)
				r := tamperRemote{Remote: NewLocalRemote(st), consistency: func(p tlog.TreeProof) tlog.TreeProof { return p[:len(p)-1] }}
				_, err := v.Update(ctx, r)
				return err
			},
			want: ErrTruncatedProof, msg: "40",
		},
		{
			name: "checkpoint from another key",
			run: func(t *testing.T, v *Verifier, st *MemStore) error {
				_, other := logWith(t, testSigner(t), n+1, nil)
				_, err := v.Update(ctx, tamperRemote{Remote: NewLocalRemote(st), checkpoint: other})
				return err
			},
			want: ErrBadSignature, msg: testOrigin,
		},
		{
			name: "rollback",
			run: func(t *testing.T, v *Verifier, st *MemStore) error {
				older, _ := logWith(t, s, n-1, nil)
				_, err := v.Update(ctx, NewLocalRemote(older))
				return err
			},
			want: ErrRollback, msg: "size 39",
		},
		{
			name: "fork at the same size",
			run: func(t *testing.T, v *Verifier, st *MemStore) error {
				forked, _ := logWith(t, s, n, func(i int, e *Entry) {
					if i == 11 {
						e.Subject = "rewritten"
					}
				})
				_, err := v.Update(ctx, NewLocalRemote(forked))
				return err
			},
			want: ErrFork, msg: "size 40",
		},
		{
			name: "rewritten history, larger size",
			run: func(t *testing.T, v *Verifier, st *MemStore) error {
				forked, _ := logWith(t, s, n+5, func(i int, e *Entry) {
					if i == 11 {
						e.Subject = "rewritten"
					}
				})
				_, err := v.Update(ctx, NewLocalRemote(forked))
				return err
			},
			want: ErrInconsistent, msg: "size 40",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := logWith(t, s, n, nil)
			v, err := NewVerifier(s.VerifierKey(), "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Update(ctx, NewLocalRemote(st)); err != nil {
				t.Fatal(err)
			}
			err = tt.run(t, v, st)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not name %q", err, tt.msg)
			}
			if last, _ := v.Last(); last.Size != n {
				t.Fatalf("verifier moved to size %d after a failure", last.Size)
			}
		})
	}
}

func TestVerifierStateFile(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t)
	path := filepath.Join(t.TempDir(), "state.json")
	st, _ := logWith(t, s, 5, nil)
	v, _ := NewVerifier(s.VerifierKey(), path)
	if _, err := v.Update(ctx, NewLocalRemote(st)); err != nil {
		t.Fatal(err)
	}
	// A restarted verifier remembers size 5 and refuses to go back.
	v2, err := NewVerifier(s.VerifierKey(), path)
	if err != nil {
		t.Fatal(err)
	}
	if last, ok := v2.Last(); !ok || last.Size != 5 {
		t.Fatalf("reloaded state %+v, %v", last, ok)
	}
	older, _ := logWith(t, s, 4, nil)
	if _, err := v2.Update(ctx, NewLocalRemote(older)); !errors.Is(err, ErrRollback) {
		t.Fatalf("after reload: %v, want ErrRollback", err)
	}
	// State written under another log key is refused.
	if _, err := NewVerifier(testSigner(t).VerifierKey(), path); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("foreign state: %v, want ErrBadSignature", err)
	}
}

func TestParseProof(t *testing.T) {
	h := tlog.RecordHash([]byte("a"))
	tests := []struct {
		in   string
		n    int
		want error
	}{
		{`{"index":1,"size":2,"hashes":["` + h.String() + `"]}`, 1, nil},
		{`{"hashes":[]}`, 0, nil},
		{`{"hashes":["AAAA"]}`, 0, ErrMalformed},
		{`{"hashes":[1]}`, 0, ErrMalformed},
		{`{}`, 0, ErrMalformed},
		{`{"hashes":[]} {}`, 0, ErrMalformed},
		{`{"hashes":[` + strings.Repeat(`"`+h.String()+`",`, MaxProofHashes) + `"` + h.String() + `"]}`, 0, ErrMalformed},
	}
	for _, tt := range tests {
		got, err := ParseProof([]byte(tt.in))
		if !errors.Is(err, tt.want) || (err == nil && len(got) != tt.n) {
			t.Errorf("ParseProof(%.50s) = %d hashes, %v; want %d, %v", tt.in, len(got), err, tt.n, tt.want)
		}
	}
}

func FuzzParseProofJSON(f *testing.F) {
	f.Add([]byte(`{"index":1,"size":2,"hashes":["CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="]}`))
	f.Add([]byte(`{"hashes":[]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		hs, err := ParseProof(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		// Round trip through the served form.
		out, _ := jsonMarshal(InclusionProofJSON{Hashes: hs})
		again, err := ParseProof(out)
		if err != nil || !slices.Equal(again, hs) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
