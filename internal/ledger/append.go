package ledger

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// Append seals entries (Seal, with the store's commitment key), encodes
// them and appends them in order, returning the index of the first. It
// must run inside the caller's transaction (st is bound to it): LockedSize
// serializes appenders, and the entries become visible when the caller
// commits together with the state change they record.
func Append(ctx context.Context, st Store, entries ...Entry) (firstIndex int64, err error) {
	if len(entries) == 0 {
		return 0, fmt.Errorf("append nothing: %w", ErrInvalid)
	}
	key, err := st.CommitmentKey(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger commitment key: %w", err)
	}
	s, err := newSealer(key)
	if err != nil {
		return 0, err
	}
	nonces := make([]byte, NonceSize*len(entries))
	if _, err := rand.Read(nonces); err != nil {
		return 0, fmt.Errorf("entry nonces: %w", err)
	}
	records := make([][]byte, len(entries))
	for i, e := range entries {
		if e, err = s.seal(e, nonces[i*NonceSize:(i+1)*NonceSize]); err != nil {
			return 0, err
		}
		if records[i], err = e.Encode(); err != nil {
			return 0, err
		}
	}
	return appendRecords(ctx, st, records)
}

// appendRecords appends already-encoded records. It reads at most one batch
// of old hashes (the right edge of the current tree) and computes every new
// stored hash in memory, so a batch costs two store round trips.
func appendRecords(ctx context.Context, st Store, records [][]byte) (int64, error) {
	if len(records) == 0 {
		return 0, fmt.Errorf("append nothing: %w", ErrInvalid)
	}
	for i, r := range records {
		if len(r) > MaxEntrySize {
			return 0, fmt.Errorf("append entry %d of %d bytes > %d: %w", i, len(r), MaxEntrySize, ErrInvalid)
		}
	}
	n, err := st.LockedSize(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger size: %w", err)
	}
	r, err := newBatchReader(ctx, st, n)
	if err != nil {
		return 0, err
	}
	for i, rec := range records {
		hs, err := tlog.StoredHashesForRecordHash(n+int64(i), tlog.RecordHash(rec), r)
		if err != nil {
			return 0, fmt.Errorf("hash entry %d: %w", n+int64(i), err)
		}
		r.fresh = append(r.fresh, hs...)
	}
	newSize := n + int64(len(records))
	if err := st.WriteEntries(ctx, n, records, r.fresh, newSize); err != nil {
		return 0, fmt.Errorf("write entries [%d, %d): %w", n, newSize, err)
	}
	return n, nil
}

// batchReader serves the hashes an append batch needs: the new ones it has
// computed so far, and the right edge of the old tree fetched up front.
type batchReader struct {
	base  int64 // stored-hash index of the first fresh hash
	fresh []tlog.Hash
	edge  map[int64]tlog.Hash
}

func newBatchReader(ctx context.Context, st Reader, n int64) (*batchReader, error) {
	r := &batchReader{base: tlog.StoredHashCount(n), edge: make(map[int64]tlog.Hash)}
	// Any old node a new leaf merges with is a maximal complete subtree of
	// the tree of size n: one per set bit of n.
	var idx []int64
	for l := 63; l >= 0; l-- {
		if n>>uint(l)&1 == 1 {
			idx = append(idx, tlog.StoredHashIndex(l, n>>uint(l)-1))
		}
	}
	if len(idx) == 0 {
		return r, nil
	}
	hs, err := st.ReadHashes(ctx, idx)
	if err != nil {
		return nil, fmt.Errorf("read tree edge at size %d: %w", n, err)
	}
	if len(hs) != len(idx) {
		return nil, fmt.Errorf("read tree edge: %d hashes for %d indexes: %w", len(hs), len(idx), ErrInvalid)
	}
	for i, x := range idx {
		r.edge[x] = hs[i]
	}
	return r, nil
}

func (r *batchReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		switch h, ok := r.edge[x]; {
		case x >= r.base && x-r.base < int64(len(r.fresh)):
			out[i] = r.fresh[x-r.base]
		case ok:
			out[i] = h
		default:
			return nil, fmt.Errorf("stored hash %d not on the tree edge: %w", x, ErrNotFound)
		}
	}
	return out, nil
}

// hashReader adapts a Reader to tlog.HashReader.
func hashReader(ctx context.Context, r Reader) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		return r.ReadHashes(ctx, idx)
	})
}

// TreeHash returns the root hash of the first size entries.
func TreeHash(ctx context.Context, r Reader, size int64) (tlog.Hash, error) {
	if err := checkSize(ctx, r, size); err != nil {
		return tlog.Hash{}, err
	}
	h, err := tlog.TreeHash(size, hashReader(ctx, r))
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("tree hash at %d: %w", size, err)
	}
	return h, nil
}

func checkSize(ctx context.Context, r Reader, size int64) error {
	if size < 0 {
		return fmt.Errorf("tree size %d: %w", size, ErrInvalid)
	}
	n, err := r.Size(ctx)
	if err != nil {
		return fmt.Errorf("ledger size: %w", err)
	}
	if size > n {
		return fmt.Errorf("tree size %d > log size %d: %w", size, n, ErrNotFound)
	}
	return nil
}

// InclusionProof proves entry index is in the tree of size treeSize.
func InclusionProof(ctx context.Context, r Reader, index, treeSize int64) (tlog.RecordProof, error) {
	if index < 0 || index >= treeSize {
		return nil, fmt.Errorf("inclusion of %d in tree of %d: %w", index, treeSize, ErrInvalid)
	}
	if err := checkSize(ctx, r, treeSize); err != nil {
		return nil, err
	}
	p, err := tlog.ProveRecord(treeSize, index, hashReader(ctx, r))
	if err != nil {
		return nil, fmt.Errorf("inclusion of %d in tree of %d: %w", index, treeSize, err)
	}
	return p, nil
}

// ConsistencyProof proves the tree of size from is a prefix of the tree of size to.
func ConsistencyProof(ctx context.Context, r Reader, from, to int64) (tlog.TreeProof, error) {
	if from < 0 || from > to {
		return nil, fmt.Errorf("consistency %d→%d: %w", from, to, ErrInvalid)
	}
	if err := checkSize(ctx, r, to); err != nil {
		return nil, err
	}
	if from == 0 || from == to {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(to, from, hashReader(ctx, r))
	if err != nil {
		return nil, fmt.Errorf("consistency %d→%d: %w", from, to, err)
	}
	return p, nil
}

// inclusionProofLen is the RFC 9162 audit path length for index in a tree
// of size: the levels below the point where index and the last leaf part
// ways, plus one per complete left subtree above it.
func inclusionProofLen(index, size int64) int {
	inner := bits.Len64(uint64(index ^ (size - 1)))
	border := bits.OnesCount64(uint64(index) >> uint(inner))
	return inner + border
}

// consistencyProofLen is the RFC 9162 consistency proof length from m to n
// (0 < m < n): the inclusion path of leaf m-1 in n minus the levels inside
// m's largest complete right subtree, plus that subtree's root unless m is
// itself a power of two.
func consistencyProofLen(m, n int64) int {
	if m == 0 || m == n {
		return 0
	}
	shift := bits.TrailingZeros64(uint64(m))
	l := inclusionProofLen(m-1, n) - shift
	if m != 1<<uint(shift) {
		l++
	}
	return l
}

// CheckInclusion verifies that leaf is entry index of the tree (size, root).
// A proof of the wrong length fails with ErrTruncatedProof, a wrong one with
// ErrBadProof.
func CheckInclusion(proof tlog.RecordProof, size int64, root tlog.Hash, index int64, leaf tlog.Hash) error {
	if index < 0 || index >= size {
		return fmt.Errorf("entry %d not below tree size %d: %w", index, size, ErrBadProof)
	}
	if want := inclusionProofLen(index, size); len(proof) != want {
		return fmt.Errorf("inclusion proof for entry %d in tree %d has %d hashes, want %d: %w", index, size, len(proof), want, ErrTruncatedProof)
	}
	if err := tlog.CheckRecord(proof, size, root, index, leaf); err != nil {
		return fmt.Errorf("inclusion of entry %d in tree %d: %w", index, size, ErrBadProof)
	}
	return nil
}

// CheckConsistency verifies that tree (from, fromRoot) is a prefix of tree
// (to, toRoot). ErrTruncatedProof for a proof of the wrong length,
// ErrInconsistent otherwise.
func CheckConsistency(proof tlog.TreeProof, from int64, fromRoot tlog.Hash, to int64, toRoot tlog.Hash) error {
	if from < 0 || from > to {
		return fmt.Errorf("consistency %d→%d: %w", from, to, ErrInconsistent)
	}
	if want := consistencyProofLen(from, to); len(proof) != want {
		return fmt.Errorf("consistency proof %d→%d has %d hashes, want %d: %w", from, to, len(proof), want, ErrTruncatedProof)
	}
	if from == 0 {
		return nil
	}
	if from == to {
		if fromRoot != toRoot {
			return fmt.Errorf("two roots at size %d: %w", to, ErrFork)
		}
		return nil
	}
	if err := tlog.CheckTree(proof, to, toRoot, from, fromRoot); err != nil {
		return fmt.Errorf("tree %d is not a prefix of tree %d: %w", from, to, ErrInconsistent)
	}
	return nil
}
