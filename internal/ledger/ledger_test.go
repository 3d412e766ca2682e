package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// testEntry returns a distinct valid entry for i.
func testEntry(i int) Entry {
	d := sha256.Sum256(fmt.Appendf(nil, "bundle %d", i))
	return Entry{
		Kind:      KindFeedBatch,
		Subject:   fmt.Sprintf("batch-%d", i),
		Agreement: "agr-1",
		Actor:     "party-a",
		Digests:   map[string]string{"objects": fmt.Sprintf("sha256:%x", d)},
		Attrs:     map[string]string{"count": fmt.Sprint(i % 17)},
		Time:      t0.Add(time.Duration(i) * time.Second),
	}
}

// appendN appends n test entries in batches of batch and returns their encodings.
func appendN(t testing.TB, st *MemStore, from, n, batch int) [][]byte {
	t.Helper()
	ctx := context.Background()
	var out [][]byte
	for i := from; i < from+n; i += batch {
		var es []Entry
		for j := i; j < min(i+batch, from+n); j++ {
			es = append(es, testEntry(j))
		}
		first, err := Append(ctx, st, es...)
		if err != nil {
			t.Fatalf("append at %d: %v", i, err)
		}
		recs, err := st.ReadEntries(ctx, first, first+int64(len(es)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
	}
	return out
}

// referenceRoot computes the RFC 6962 root of leaves by recursion, as an
// oracle independent of stored hashes.
func referenceRoot(leaves []tlog.Hash) tlog.Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return tlog.NodeHash(referenceRoot(leaves[:k]), referenceRoot(leaves[k:]))
}

func TestAppendProveRoundTrip(t *testing.T) {
	ctx := context.Background()
	sizes := []int{1, 2, 3, 4, 5, 7, 8, 9, 31, 255, 256, 257, 511, 1000, 1025}
	for _, batch := range []int{1, 7, 1000} {
		st := NewMemStore()
		var records [][]byte
		for _, size := range sizes {
			records = append(records, appendN(t, st, len(records), size-len(records), batch)...)
			if len(records) != size {
				continue // sizes already passed
			}
			leaves := make([]tlog.Hash, size)
			for i, r := range records {
				leaves[i] = tlog.RecordHash(r)
			}
			root, err := TreeHash(ctx, st, int64(size))
			if err != nil {
				t.Fatal(err)
			}
			if want := referenceRoot(leaves); root != want {
				t.Fatalf("batch %d size %d: root %s, reference %s", batch, size, root, want)
			}
			// Inclusion of a spread of indexes, at this size and at older sizes.
			for _, idx := range []int{0, size / 2, size - 1} {
				for _, treeSize := range []int{idx + 1, size} {
					p, err := InclusionProof(ctx, st, int64(idx), int64(treeSize))
					if err != nil {
						t.Fatal(err)
					}
					th := referenceRoot(leaves[:treeSize])
					if err := CheckInclusion(p, int64(treeSize), th, int64(idx), leaves[idx]); err != nil {
						t.Fatalf("batch %d: inclusion %d in %d: %v", batch, idx, treeSize, err)
					}
				}
			}
			for _, from := range []int{0, 1, size / 3, size - 1, size} {
				p, err := ConsistencyProof(ctx, st, int64(from), int64(size))
				if err != nil {
					t.Fatal(err)
				}
				if err := CheckConsistency(p, int64(from), referenceRoot(leaves[:from]), int64(size), root); err != nil {
					t.Fatalf("batch %d: consistency %d→%d: %v", batch, from, size, err)
				}
			}
		}
		got, err := st.ReadEntries(ctx, 0, int64(len(records)))
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if string(got[i]) != string(records[i]) {
				t.Fatalf("entry %d read back differently", i)
			}
		}
	}
}

func TestAppendReturnsFirstIndex(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	for i, n := range []int{3, 1, 5} {
		size, _ := st.Size(ctx)
		es := make([]Entry, n)
		for j := range es {
			es[j] = testEntry(i*10 + j)
		}
		first, err := Append(ctx, st, es...)
		if err != nil {
			t.Fatal(err)
		}
		if first != size {
			t.Fatalf("first index %d, want %d", first, size)
		}
	}
}

func TestAppendRejects(t *testing.T) {
	ctx := context.Background()
	big := testEntry(1)
	big.Attrs = map[string]string{"x": string(make([]byte, MaxEntrySize))}
	bad := testEntry(2)
	bad.Kind = "agreement.eaten"
	tests := []struct {
		name    string
		entries []Entry
	}{
		{"none", nil},
		{"too large", []Entry{big}},
		{"unknown kind", []Entry{testEntry(0), bad}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewMemStore()
			if _, err := Append(ctx, st, tt.entries...); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if n, _ := st.Size(ctx); n != 0 {
				t.Fatalf("size %d after rejected append", n)
			}
		})
	}
}

func TestConcurrentAppendersConflict(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	appendN(t, st, 0, 5, 5)
	// A second appender that read the size before the first wrote must fail.
	r, err := newBatchReader(ctx, st, 5)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := testEntry(99).Encode()
	hs, err := tlog.StoredHashesForRecordHash(5, tlog.RecordHash(rec), r)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, st, 5, 1, 1)
	if err := st.WriteEntries(ctx, 5, [][]byte{rec}, hs, 6); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale write: %v, want ErrConflict", err)
	}
}

func TestMemStoreUpdateRollsBack(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	appendN(t, st, 0, 3, 3)
	signer := testSigner(t)
	if _, _, err := func() (Checkpoint, []byte, error) {
		var c Checkpoint
		var n []byte
		err := st.Update(ctx, func(s Store) (err error) { c, n, err = NewCheckpoint(ctx, s, signer); return })
		return c, n, err
	}(); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := st.Update(ctx, func(s Store) error {
		if _, err := Append(ctx, s, testEntry(3), testEntry(4)); err != nil {
			return err
		}
		if _, _, err := NewCheckpoint(ctx, s, signer); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if n, _ := st.Size(ctx); n != 3 {
		t.Fatalf("size %d after rollback, want 3", n)
	}
	if size, _, err := st.LatestCheckpoint(ctx); err != nil || size != 3 {
		t.Fatalf("latest checkpoint %d, %v after rollback, want 3", size, err)
	}
	// The log still appends correctly after the rollback.
	appendN(t, st, 3, 4, 2)
	recs, _ := st.ReadEntries(ctx, 0, 7)
	leaves := make([]tlog.Hash, len(recs))
	for i, r := range recs {
		leaves[i] = tlog.RecordHash(r)
	}
	if root, _ := TreeHash(ctx, st, 7); root != referenceRoot(leaves) {
		t.Fatal("root wrong after rollback and re-append")
	}
}

func TestProofArgumentErrors(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	appendN(t, st, 0, 10, 10)
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"inclusion index beyond tree", func() error { _, err := InclusionProof(ctx, st, 10, 10); return err }, ErrInvalid},
		{"inclusion negative", func() error { _, err := InclusionProof(ctx, st, -1, 10); return err }, ErrInvalid},
		{"inclusion tree beyond log", func() error { _, err := InclusionProof(ctx, st, 1, 11); return err }, ErrNotFound},
		{"consistency reversed", func() error { _, err := ConsistencyProof(ctx, st, 5, 4); return err }, ErrInvalid},
		{"consistency beyond log", func() error { _, err := ConsistencyProof(ctx, st, 5, 40); return err }, ErrNotFound},
		{"tree hash beyond log", func() error { _, err := TreeHash(ctx, st, 11); return err }, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestProofLengths(t *testing.T) {
	// The exact lengths back ErrTruncatedProof; check them against proofs
	// tlog builds from real hashes.
	ctx := context.Background()
	st := NewMemStore()
	appendN(t, st, 0, 300, 300)
	for size := int64(1); size <= 300; size++ {
		for idx := int64(0); idx < size; idx++ {
			p, err := InclusionProof(ctx, st, idx, size)
			if err != nil {
				t.Fatal(err)
			}
			if got := inclusionProofLen(idx, size); got != len(p) {
				t.Fatalf("inclusion %d in %d: len %d, want %d", idx, size, got, len(p))
			}
		}
		for from := int64(1); from < size; from++ {
			p, err := ConsistencyProof(ctx, st, from, size)
			if err != nil {
				t.Fatal(err)
			}
			if got := consistencyProofLen(from, size); got != len(p) {
				t.Fatalf("consistency %d→%d: len %d, want %d", from, size, got, len(p))
			}
		}
	}
}
