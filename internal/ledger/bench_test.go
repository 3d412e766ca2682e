package ledger

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkAppendBatch appends entries in batches of 1,000 through Append
// (canonical encoding, hashing, store write), reporting entries/s.
func BenchmarkAppendBatch(b *testing.B) {
	ctx := context.Background()
	const batch = 1000
	es := make([]Entry, batch)
	for i := range es {
		es[i] = testEntry(i)
	}
	st := NewMemStore()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Append(ctx, st, es...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkAppendRecordsBatch is the same without entry encoding: the cost
// of hashing and storing alone.
func BenchmarkAppendRecordsBatch(b *testing.B) {
	ctx := context.Background()
	const batch = 1000
	recs := make([][]byte, batch)
	for i := range recs {
		recs[i], _ = testEntry(i).Encode()
	}
	st := NewMemStore()
	b.ResetTimer()
	for b.Loop() {
		if _, err := appendRecords(ctx, st, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
}

const bigTreeSize = 10_000_000

var bigTree struct {
	once sync.Once
	st   *MemStore
	root tlog.Hash
	err  error
}

// bigStore builds a 10,000,000-entry log once per process, with small
// 8-byte records so that it fits in ~700 MB (mostly stored hashes).
func bigStore(b *testing.B) (*MemStore, tlog.Hash) {
	bigTree.once.Do(func() {
		start := time.Now()
		ctx := context.Background()
		st := NewMemStore()
		st.hashes = make([]tlog.Hash, 0, tlog.StoredHashCount(bigTreeSize))
		st.data = make([]byte, 0, 8*bigTreeSize)
		st.ends = make([]int64, 0, bigTreeSize)
		recs := make([][]byte, 10_000)
		for i := int64(0); i < bigTreeSize; i += int64(len(recs)) {
			for j := range recs {
				recs[j] = binary.BigEndian.AppendUint64(nil, uint64(i)+uint64(j))
			}
			if _, err := appendRecords(ctx, st, recs); err != nil {
				bigTree.err = err
				return
			}
		}
		bigTree.st = st
		bigTree.root, bigTree.err = TreeHash(ctx, st, bigTreeSize)
		b.Logf("built %d-entry tree in %s", bigTreeSize, time.Since(start).Round(time.Millisecond))
	})
	if bigTree.err != nil {
		b.Fatal(bigTree.err)
	}
	return bigTree.st, bigTree.root
}

// BenchmarkInclusionProof proves (and checks) inclusion of spread-out
// entries in a 10,000,000-entry tree, reporting µs/proof.
func BenchmarkInclusionProof(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 10M-entry tree")
	}
	st, root := bigStore(b)
	ctx := context.Background()
	b.ResetTimer()
	var i int64
	for b.Loop() {
		idx := (i * 7_919_999) % bigTreeSize
		i++
		p, err := InclusionProof(ctx, st, idx, bigTreeSize)
		if err != nil {
			b.Fatal(err)
		}
		leaf := tlog.RecordHash(binary.BigEndian.AppendUint64(nil, uint64(idx)))
		if err := CheckInclusion(p, bigTreeSize, root, idx, leaf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/proof")
}

// BenchmarkConsistencyProof proves consistency between spread-out sizes of
// the 10,000,000-entry tree.
func BenchmarkConsistencyProof(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 10M-entry tree")
	}
	st, _ := bigStore(b)
	ctx := context.Background()
	b.ResetTimer()
	var i int64
	for b.Loop() {
		from := 1 + (i*7_919_999)%(bigTreeSize-1)
		i++
		if _, err := ConsistencyProof(ctx, st, from, bigTreeSize); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/proof")
}

// BenchmarkCheckpointSign signs a checkpoint (tree hash + Ed25519 note).
func BenchmarkCheckpointSign(b *testing.B) {
	ctx := context.Background()
	st := NewMemStore()
	appendN(b, st, 0, 1000, 1000)
	s := testSigner(b)
	root, _ := TreeHash(ctx, st, 1000)
	b.ResetTimer()
	for b.Loop() {
		root, err := TreeHash(ctx, st, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Sign(Checkpoint{Origin: testOrigin, Size: 1000, Hash: root}); err != nil {
			b.Fatal(err)
		}
	}
	_ = root
}

// BenchmarkCheckpointVerify opens a signed checkpoint note.
func BenchmarkCheckpointVerify(b *testing.B) {
	s := testSigner(b)
	signed, _ := s.Sign(Checkpoint{Origin: testOrigin, Size: 1000, Hash: tlog.Hash{1}})
	for b.Loop() {
		if _, err := OpenCheckpoint(signed, s.Verifier()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal is what hiding an entry's digest costs on append: a nonce
// from crypto/rand, the entry key and one commitment (two HMAC-SHA256).
func BenchmarkSeal(b *testing.B) {
	key := make([]byte, CommitmentKeySize)
	e := testEntry(1)
	for b.Loop() {
		if _, err := e.Seal(key); err != nil {
			b.Fatal(err)
		}
	}
}
