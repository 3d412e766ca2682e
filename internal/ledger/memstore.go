package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// MemStore is a complete in-memory Store for tests, benchmarks and demos.
// Entries are kept in one contiguous buffer so that logs of ten million
// entries fit comfortably in memory.
//
// Direct calls are safe for concurrent use; Update additionally serializes
// whole transactions and rolls back every change made by a failed one, which
// is what LockedSize promises on SQL stores.
type MemStore struct {
	txMu sync.Mutex // held for the duration of Update: the appenders' lock

	mu          sync.RWMutex
	hashes      []tlog.Hash
	data        []byte
	ends        []int64 // ends[i] is the end offset of entry i in data
	checkpoints map[int64][]byte
	latest      int64 // largest checkpoint size; valid when len(checkpoints) > 0
	cosigs      map[int64]map[string][]byte
	undo        []func() // non-nil only inside Update
	commitKey   []byte
}

// NewMemStore returns an empty log.
func NewMemStore() *MemStore {
	return &MemStore{
		checkpoints: make(map[int64][]byte),
		cosigs:      make(map[int64]map[string][]byte),
	}
}

// Update runs fn as one transaction: concurrent Updates wait, and if fn
// returns an error every change it made is undone. It implements UpdateFunc.
func (m *MemStore) Update(ctx context.Context, fn func(Store) error) (err error) {
	m.txMu.Lock()
	defer m.txMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	m.undo = []func(){}
	m.mu.Unlock()
	committed := false
	defer func() {
		// Undo on error and on panic, like a database rolling back.
		m.mu.Lock()
		if !committed {
			for i := len(m.undo) - 1; i >= 0; i-- {
				m.undo[i]()
			}
		}
		m.undo = nil
		m.mu.Unlock()
	}()
	if err = fn(m); err == nil {
		committed = true
	}
	return err
}

// record registers an undo step; callers hold m.mu.
func (m *MemStore) record(f func()) {
	if m.undo != nil {
		m.undo = append(m.undo, f)
	}
}

// CommitmentKey returns the log's commitment key, made on first use.
func (m *MemStore) CommitmentKey(ctx context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.commitKey == nil {
		k := make([]byte, CommitmentKeySize)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		m.commitKey = k
	}
	return bytes.Clone(m.commitKey), nil
}

// LockedSize returns the size; serialization comes from Update.
func (m *MemStore) LockedSize(ctx context.Context) (int64, error) { return m.Size(ctx) }

// Size returns the number of entries.
func (m *MemStore) Size(ctx context.Context) (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int64(len(m.ends)), nil
}

// ReadHashes returns the stored hashes at indexes.
func (m *MemStore) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("stored hash %d of %d: %w", x, len(m.hashes), ErrNotFound)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

// ReadEntries returns copies of entries [start, end).
func (m *MemStore) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if start < 0 || start > end {
		return nil, fmt.Errorf("entries [%d, %d): %w", start, end, ErrInvalid)
	}
	if end > int64(len(m.ends)) {
		return nil, fmt.Errorf("entries [%d, %d) of %d: %w", start, end, len(m.ends), ErrNotFound)
	}
	out := make([][]byte, 0, end-start)
	for i := start; i < end; i++ {
		out = append(out, bytes.Clone(m.entryLocked(i)))
	}
	return out, nil
}

func (m *MemStore) entryLocked(i int64) []byte {
	var begin int64
	if i > 0 {
		begin = m.ends[i-1]
	}
	return m.data[begin:m.ends[i]]
}

// WriteEntries appends entries and their stored hashes.
func (m *MemStore) WriteEntries(ctx context.Context, first int64, entries [][]byte, storedHashes []tlog.Hash, newSize int64) error {
	if first < 0 || newSize != first+int64(len(entries)) {
		return fmt.Errorf("write %d entries at %d to size %d: %w", len(entries), first, newSize, ErrInvalid)
	}
	if want := tlog.StoredHashCount(newSize) - tlog.StoredHashCount(first); int64(len(storedHashes)) != want {
		return fmt.Errorf("write %d stored hashes, want %d: %w", len(storedHashes), want, ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if first != int64(len(m.ends)) {
		return fmt.Errorf("write at %d but size is %d: %w", first, len(m.ends), ErrConflict)
	}
	nh, nd, ne := len(m.hashes), len(m.data), len(m.ends)
	m.record(func() { m.hashes, m.data, m.ends = m.hashes[:nh], m.data[:nd], m.ends[:ne] })
	m.hashes = append(m.hashes, storedHashes...)
	for _, e := range entries {
		m.data = append(m.data, e...)
		m.ends = append(m.ends, int64(len(m.data)))
	}
	return nil
}

// SaveCheckpoint stores a signed checkpoint note.
func (m *MemStore) SaveCheckpoint(ctx context.Context, size int64, signedNote []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size < 0 || size > int64(len(m.ends)) {
		return fmt.Errorf("checkpoint at %d, log size %d: %w", size, len(m.ends), ErrInvalid)
	}
	if old, ok := m.checkpoints[size]; ok {
		if bytes.Equal(old, signedNote) {
			return nil
		}
		return fmt.Errorf("checkpoint at %d already saved: %w", size, ErrConflict)
	}
	prevLatest, hadAny := m.latest, len(m.checkpoints) > 0
	m.record(func() { delete(m.checkpoints, size); m.latest = prevLatest })
	m.checkpoints[size] = bytes.Clone(signedNote)
	if !hadAny || size > m.latest {
		m.latest = size
	}
	return nil
}

// LatestCheckpoint returns the largest saved checkpoint.
func (m *MemStore) LatestCheckpoint(ctx context.Context) (int64, []byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.checkpoints) == 0 {
		return 0, nil, fmt.Errorf("latest checkpoint: %w", ErrNotFound)
	}
	return m.latest, bytes.Clone(m.checkpoints[m.latest]), nil
}

// CheckpointAt returns the checkpoint saved at size.
func (m *MemStore) CheckpointAt(ctx context.Context, size int64) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, ok := m.checkpoints[size]
	if !ok {
		return nil, fmt.Errorf("checkpoint at %d: %w", size, ErrNotFound)
	}
	return bytes.Clone(n), nil
}

// AddCosignature stores (or replaces) witness's cosignature for size.
func (m *MemStore) AddCosignature(ctx context.Context, size int64, witness string, line []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.checkpoints[size]; !ok {
		return fmt.Errorf("cosignature for checkpoint %d: %w", size, ErrNotFound)
	}
	byWitness := m.cosigs[size]
	if byWitness == nil {
		byWitness = make(map[string][]byte)
		m.cosigs[size] = byWitness
	}
	old, had := byWitness[witness]
	m.record(func() {
		if had {
			byWitness[witness] = old
		} else {
			delete(byWitness, witness)
		}
	})
	byWitness[witness] = bytes.Clone(line)
	return nil
}

// Cosignatures returns the cosignature lines for size, ordered by witness.
func (m *MemStore) Cosignatures(ctx context.Context, size int64) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	byWitness := m.cosigs[size]
	names := make([]string, 0, len(byWitness))
	for w := range byWitness {
		names = append(names, w)
	}
	slices.Sort(names)
	out := make([][]byte, 0, len(names))
	for _, w := range names {
		out = append(out, bytes.Clone(byWitness[w]))
	}
	return out, nil
}
