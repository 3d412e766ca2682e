// Package ledgertest is the conformance suite every ledger.Store
// implementation runs (the in-memory store here, SQLite and PostgreSQL in
// internal/store). It checks the contract documented on ledger.Store,
// including sentinel errors, using only the public interface.
//
// It must never depend on a particular implementation or database.
package ledgertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/ledger"
)

// Run runs the suite. newStore must return an empty store each call; the
// store may be bound to one transaction for the whole subtest (the suite
// does not depend on commits).
func Run(t *testing.T, newStore func() ledger.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, st ledger.Store)
	}{
		{"Empty", testEmpty},
		{"AppendAndRead", testAppendAndRead},
		{"ReadHashesOrder", testReadHashesOrder},
		{"WriteEntriesConflict", testWriteEntriesConflict},
		{"WriteEntriesInvalid", testWriteEntriesInvalid},
		{"BinaryAndLargeEntries", testBinaryAndLargeEntries},
		{"Checkpoints", testCheckpoints},
		{"Cosignatures", testCosignatures},
		{"Proofs", testProofs},
		{"CommitmentKey", testCommitmentKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore()) })
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Entry returns a distinct valid entry for i; exported for stores' own tests.
func Entry(i int) ledger.Entry {
	d := sha256.Sum256(fmt.Appendf(nil, "object %d", i))
	return ledger.Entry{
		Kind:    ledger.KindFeedReleased,
		Subject: fmt.Sprintf("release-%d", i),
		Parties: []string{"party-b"},
		Digests: map[string]string{"objects": fmt.Sprintf("sha256:%x", d)},
		Time:    t0.Add(time.Duration(i) * time.Minute),
	}
}

func appendEntries(t *testing.T, st ledger.Store, from, n int) [][]byte {
	t.Helper()
	ctx := context.Background()
	es := make([]ledger.Entry, n)
	for i := range es {
		es[i] = Entry(from + i)
	}
	first, err := ledger.Append(ctx, st, es...)
	if err != nil {
		t.Fatalf("Append %d at %d: %v", n, from, err)
	}
	if first != int64(from) {
		t.Fatalf("Append returned first index %d, want %d", first, from)
	}
	recs, err := st.ReadEntries(ctx, int64(from), int64(from+n))
	if err != nil {
		t.Fatalf("ReadEntries [%d, %d): %v", from, from+n, err)
	}
	key, err := st.CommitmentKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// What was stored is each entry sealed: version 2, its own nonce,
	// and commitments that open to the digests given, under its key only.
	for i, rec := range recs {
		got, err := ledger.DecodeEntry(rec)
		if err != nil {
			t.Fatalf("entry %d: %v", from+i, err)
		}
		want := es[i]
		want.V, want.Nonce, want.Digests = got.V, got.Nonce, got.Digests
		wb, _ := want.Encode()
		if got.V != ledger.EntryVersion || !bytes.Equal(wb, rec) {
			t.Fatalf("entry %d stored as %s; want %+v sealed", from+i, rec, es[i])
		}
		if err := got.Open(ledger.EntryKey(key, got.Nonce), es[i].Digests); err != nil {
			t.Fatalf("entry %d: %v", from+i, err)
		}
		if err := got.Open(ledger.EntryKey(key, "another nonce"), es[i].Digests); !errors.Is(err, ledger.ErrCommitment) {
			t.Fatalf("entry %d opens under another entry's key: %v", from+i, err)
		}
		if got.Digests["objects"] == es[i].Digests["objects"] {
			t.Fatalf("entry %d stores its plain digest", from+i)
		}
	}
	return recs
}

// referenceRoot computes the tree hash from the records alone, with tlog's
// stored-hash algorithm over a private slice: an oracle for the store.
func referenceRoot(t *testing.T, recs [][]byte) tlog.Hash {
	t.Helper()
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, rec := range recs {
		hs, err := tlog.StoredHashes(int64(i), rec, r)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	root, err := tlog.TreeHash(int64(len(recs)), r)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func testEmpty(t *testing.T, st ledger.Store) {
	ctx := context.Background()
	for name, f := range map[string]func(context.Context) (int64, error){"Size": st.Size, "LockedSize": st.LockedSize} {
		if n, err := f(ctx); err != nil || n != 0 {
			t.Fatalf("%s = %d, %v; want 0", name, n, err)
		}
	}
	_, _, err := st.LatestCheckpoint(ctx)
	wantErr(t, "LatestCheckpoint", err, ledger.ErrNotFound)
	_, err = st.CheckpointAt(ctx, 0)
	wantErr(t, "CheckpointAt(0)", err, ledger.ErrNotFound)
	_, err = st.ReadHashes(ctx, []int64{0})
	wantErr(t, "ReadHashes([0])", err, ledger.ErrNotFound)
	_, err = st.ReadEntries(ctx, 0, 1)
	wantErr(t, "ReadEntries(0, 1)", err, ledger.ErrNotFound)
	_, err = st.ReadEntries(ctx, -1, 0)
	wantErr(t, "ReadEntries(-1, 0)", err, ledger.ErrInvalid)
	if es, err := st.ReadEntries(ctx, 0, 0); err != nil || len(es) != 0 {
		t.Fatalf("ReadEntries(0, 0) = %d, %v", len(es), err)
	}
	if cs, err := st.Cosignatures(ctx, 0); err != nil || len(cs) != 0 {
		t.Fatalf("Cosignatures(0) = %d, %v", len(cs), err)
	}
}

func testAppendAndRead(t *testing.T, st ledger.Store) {
	ctx := context.Background()
	var recs [][]byte
	for _, n := range []int{1, 2, 5, 248, 300} { // crosses tile and power-of-two edges
		recs = append(recs, appendEntries(t, st, len(recs), n)...)
		size, err := st.Size(ctx)
		if err != nil || size != int64(len(recs)) {
			t.Fatalf("Size = %d, %v; want %d", size, err, len(recs))
		}
		root, err := ledger.TreeHash(ctx, st, size)
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceRoot(t, recs); root != want {
			t.Fatalf("root at %d = %s, want %s", size, root, want)
		}
	}
	got, err := st.ReadEntries(ctx, 3, int64(len(recs)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs)-3 {
		t.Fatalf("ReadEntries returned %d entries, want %d", len(got), len(recs)-3)
	}
	for i := range got {
		if !bytes.Equal(got[i], recs[3+i]) {
			t.Fatalf("entry %d read back as %q", 3+i, got[i])
		}
	}
	_, err = st.ReadEntries(ctx, 5, 4)
	wantErr(t, "ReadEntries(5, 4)", err, ledger.ErrInvalid)
	_, err = st.ReadEntries(ctx, 0, int64(len(recs))+1)
	wantErr(t, "ReadEntries past size", err, ledger.ErrNotFound)
	_, err = st.ReadHashes(ctx, []int64{0, tlog.StoredHashCount(int64(len(recs)))})
	wantErr(t, "ReadHashes past end", err, ledger.ErrNotFound)
	_, err = st.ReadHashes(ctx, []int64{-1})
	wantErr(t, "ReadHashes(-1)", err, ledger.ErrNotFound)
}

func testReadHashesOrder(t *testing.T, st ledger.Store) {
	ctx := context.Background()
	recs := appendEntries(t, st, 0, 4)
	leaf := func(i int) tlog.Hash { return tlog.RecordHash(recs[i]) }
	idx := []int64{
		tlog.StoredHashIndex(0, 3), tlog.StoredHashIndex(0, 0), tlog.StoredHashIndex(0, 3),
		tlog.StoredHashIndex(1, 0), tlog.StoredHashIndex(2, 0),
	}
	got, err := st.ReadHashes(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	want := []tlog.Hash{leaf(3), leaf(0), leaf(3), tlog.NodeHash(leaf(0), leaf(1)),
		tlog.NodeHash(tlog.NodeHash(leaf(0), leaf(1)), tlog.NodeHash(leaf(2), leaf(3)))}
	if len(got) != len(want) {
		t.Fatalf("ReadHashes returned %d hashes for %d indexes", len(got), len(idx))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ReadHashes[%d] (index %d) = %s, want %s (order must follow the request)", i, idx[i], got[i], want[i])
		}
	}
	if hs, err := st.ReadHashes(ctx, nil); err != nil || len(hs) != 0 {
		t.Fatalf("ReadHashes(nil) = %d, %v", len(hs), err)
	}
}

func testWriteEntriesConflict(t *testing.T, st ledger.Store) {
	ctx := context.Background()
	appendEntries(t, st, 0, 3)
	rec, _ := Entry(9).Encode()
	// Hashes for a write at index 2 (stale: the size is 3).
	hs := make([]tlog.Hash, tlog.StoredHashCount(3)-tlog.StoredHashCount(2))
	err := st.WriteEntries(ctx, 2, [][]byte{rec}, hs, 3)
	wantErr(t, "WriteEntries at stale index", err, ledger.ErrConflict)
	hs = make([]tlog.Hash, tlog.StoredHashCount(5)-tlog.StoredHashCount(4))
	err = st.WriteEntries(ctx, 4, [][]byte{rec}, hs, 5)
	wantErr(t, "WriteEntries past the end", err, ledger.ErrConflict)
	if n, _ := st.Size(ctx); n != 3 {
		t.Fatalf("size %d after refused writes, want 3", n)
	}
	appendEntries(t, st, 3, 1) // still appendable
}

func testWriteEntriesInvalid(t *testing.T, st ledger.Store) {
	ctx := context.Background()
	rec, _ := Entry(0).Encode()
	tests := []struct {
		name    string
		first   int64
		entries [][]byte
		hashes  int
		newSize int64
	}{
		{"size does not add up", 0, [][]byte{rec}, 1, 2},
		{"too few hashes", 0, [][]byte{rec, rec}, 2, 2},
		{"too many hashes", 0, [][]byte{rec}, 2, 1},
		{"negative first", -1, [][]byte{rec}, 1, 0},
	}
	for _, tt := range tests {
		err := st.WriteEntries(ctx, tt.first, tt.entries, make([]tlog.Hash, tt.hashes), tt.newSize)
		wantErr(t, tt.name, err, ledger.ErrInvalid)
	}
	if n, _ := st.Size(ctx); n != 0 {
		t.Fatalf("size %d after invalid writes", n)
	}
}

func testBinaryAndLargeEntries(t *testing.T, st ledger.Store) {
	// The store holds bytes, not text: NULs, invalid UTF-8 and the largest
	// entry an entry bundle can carry must survive.
	ctx := context.Background()
	big := bytes.Repeat([]byte{0, 0xff, 'x'}, ledger.MaxEntrySize/3)
	recs := [][]byte{{0}, {0xff, 0xfe}, big, {}}
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, rec := range recs {
		hs, err := tlog.StoredHashes(int64(i), rec, r)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	if err := st.WriteEntries(ctx, 0, recs, hashes, int64(len(recs))); err != nil {
		t.Fatal(err)
	}
	got, err := st.ReadEntries(ctx, 0, int64(len(recs)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if !bytes.Equal(got[i], recs[i]) {
			t.Fatalf("entry %d (%d bytes) read back as %d bytes", i, len(recs[i]), len(got[i]))
		}
	}
	all, err := st.ReadHashes(ctx, []int64{0, int64(len(hashes)) - 1})
	if err != nil || all[0] != hashes[0] || all[1] != hashes[len(hashes)-1] {
		t.Fatalf("stored hashes read back wrong: %v", err)
	}
}

func testCheckpoints(t *testing.T, st ledger.Store) {
	ctx := context.Background()
	appendEntries(t, st, 0, 5)
	n2, n5 := []byte("note at 2\n"), []byte("note at 5\n")
	err := st.SaveCheckpoint(ctx, 6, []byte("beyond\n"))
	wantErr(t, "SaveCheckpoint beyond size", err, ledger.ErrInvalid)
	if err := st.SaveCheckpoint(ctx, 5, n5); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveCheckpoint(ctx, 2, n2); err != nil { // older size saved later
		t.Fatal(err)
	}
	if err := st.SaveCheckpoint(ctx, 5, n5); err != nil {
		t.Fatalf("re-saving identical checkpoint: %v", err)
	}
	err = st.SaveCheckpoint(ctx, 5, []byte("another note at 5\n"))
	wantErr(t, "second checkpoint at one size", err, ledger.ErrConflict)
	size, note, err := st.LatestCheckpoint(ctx)
	if err != nil || size != 5 || !bytes.Equal(note, n5) {
		t.Fatalf("LatestCheckpoint = %d %q, %v; want 5", size, note, err)
	}
	if got, err := st.CheckpointAt(ctx, 2); err != nil || !bytes.Equal(got, n2) {
		t.Fatalf("CheckpointAt(2) = %q, %v", got, err)
	}
	_, err = st.CheckpointAt(ctx, 3)
	wantErr(t, "CheckpointAt(3)", err, ledger.ErrNotFound)
}

func testCosignatures(t *testing.T, st ledger.Store) {
	ctx := context.Background()
	appendEntries(t, st, 0, 2)
	err := st.AddCosignature(ctx, 2, "w.example/b", []byte("— w.example/b AAAA\n"))
	wantErr(t, "cosignature without checkpoint", err, ledger.ErrNotFound)
	if err := st.SaveCheckpoint(ctx, 2, []byte("note\n")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ w, line string }{
		{"w.example/b", "— w.example/b old\n"},
		{"w.example/a", "— w.example/a AAAA\n"},
		{"w.example/b", "— w.example/b new\n"}, // replaces the older one
	} {
		if err := st.AddCosignature(ctx, 2, c.w, []byte(c.line)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Cosignatures(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"— w.example/a AAAA\n", "— w.example/b new\n"}
	if len(got) != len(want) {
		t.Fatalf("Cosignatures = %q, want %q", got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("Cosignatures = %q, want %q", got, want)
		}
	}
	if cs, err := st.Cosignatures(ctx, 1); err != nil || len(cs) != 0 {
		t.Fatalf("Cosignatures(1) = %q, %v", cs, err)
	}
}

func testProofs(t *testing.T, st ledger.Store) {
	ctx := context.Background()
	recs := appendEntries(t, st, 0, 300)
	for _, size := range []int64{1, 17, 256, 300} {
		root := referenceRoot(t, recs[:size])
		for _, idx := range []int64{0, size / 2, size - 1} {
			p, err := ledger.InclusionProof(ctx, st, idx, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := ledger.CheckInclusion(p, size, root, idx, tlog.RecordHash(recs[idx])); err != nil {
				t.Fatalf("inclusion %d in %d: %v", idx, size, err)
			}
		}
		p, err := ledger.ConsistencyProof(ctx, st, size, 300)
		if err != nil {
			t.Fatal(err)
		}
		if err := ledger.CheckConsistency(p, size, root, 300, referenceRoot(t, recs)); err != nil {
			t.Fatalf("consistency %d→300: %v", size, err)
		}
	}
}

// testCommitmentKey checks the key is made once, is random-sized right and
// never changes (every entry key derives from it).
func testCommitmentKey(t *testing.T, st ledger.Store) {
	ctx := context.Background()
	k1, err := st.CommitmentKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != ledger.CommitmentKeySize || bytes.Equal(k1, make([]byte, len(k1))) {
		t.Fatalf("CommitmentKey = %x, want %d random bytes", k1, ledger.CommitmentKeySize)
	}
	appendEntries(t, st, 0, 3)
	k2, err := st.CommitmentKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatalf("CommitmentKey changed from %x to %x", k1, k2)
	}
}
