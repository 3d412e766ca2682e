package ledger

import (
	"context"

	"golang.org/x/mod/sumdb/tlog"
)

// Reader is read access to a stored log. It needs no transaction: the log
// only grows, so hashes and entries below any size once read stay valid.
//
// Indexes passed to ReadHashes are stored-hash indexes (tlog.StoredHashIndex);
// the hashes of entries [0, n) occupy stored indexes [0, tlog.StoredHashCount(n)).
type Reader interface {
	// Size returns the number of entries, without locking.
	Size(ctx context.Context) (int64, error)
	// ReadHashes returns one hash per index, in the order asked. Any index
	// not yet written (or negative) fails the whole call with ErrNotFound.
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// ReadEntries returns entries [start, end). ErrNotFound if end > Size;
	// ErrInvalid if start < 0 or start > end.
	ReadEntries(ctx context.Context, start, end int64) ([][]byte, error)
	// LatestCheckpoint returns the signed note of the largest saved
	// checkpoint and its size; ErrNotFound if none was saved.
	LatestCheckpoint(ctx context.Context) (size int64, note []byte, err error)
	// CheckpointAt returns the signed note saved at size; ErrNotFound if none.
	CheckpointAt(ctx context.Context, size int64) ([]byte, error)
	// Cosignatures returns the cosignature lines stored for the checkpoint at
	// size, ordered by witness name; an empty slice (not an error) if none.
	Cosignatures(ctx context.Context, size int64) ([][]byte, error)
}

// Store is a log bound to one database transaction, opened and committed by
// the caller so that a state change and its ledger entry commit together.
// A Store must not be used after its transaction ends.
//
// SQL layout suggestion (what internal/store/sqlite and /postgres implement):
//
//	ledger_size(id=1, size)                 -- one row; the appenders' lock
//	ledger_entries(idx PRIMARY KEY, data)   -- entry bytes
//	ledger_hashes(idx PRIMARY KEY, hash)    -- 32-byte stored hashes
//	ledger_checkpoints(size PRIMARY KEY, note)
//	ledger_cosignatures(size, witness, line, PRIMARY KEY(size, witness))
//
// Sentinels: ErrNotFound, ErrConflict, ErrInvalid (wrapped with %w).
type Store interface {
	Reader
	// LockedSize returns the number of entries and, on SQL stores, takes the
	// lock that serializes appenders until the transaction ends
	// (SELECT ... FOR UPDATE on PostgreSQL; SQLite's write transaction
	// already serializes).
	LockedSize(ctx context.Context) (int64, error)
	// WriteEntries stores entries [first, first+len(entries)) and the stored
	// hashes [tlog.StoredHashCount(first), tlog.StoredHashCount(newSize)),
	// and sets the size to newSize = first+len(entries). It fails with
	// ErrConflict if first is not the current size (another appender won)
	// and ErrInvalid if the counts do not add up. It writes all or nothing.
	WriteEntries(ctx context.Context, first int64, entries [][]byte, storedHashes []tlog.Hash, newSize int64) error
	// SaveCheckpoint stores the signed checkpoint note for size. Saving the
	// same bytes again is a no-op; different bytes at a saved size fail with
	// ErrConflict (a log must never sign two heads of one size). ErrInvalid
	// if size exceeds the log's size.
	SaveCheckpoint(ctx context.Context, size int64, signedNote []byte) error
	// CommitmentKey returns the log's secret commitment key
	// (CommitmentKeySize bytes), creating it from crypto/rand on first
	// call; every later call, in any transaction or instance, returns the
	// same key. Entry keys derive from it (EntryKey), so it must never be
	// served, logged or changed.
	CommitmentKey(ctx context.Context) ([]byte, error)
	// AddCosignature stores witness's cosignature line for the checkpoint at
	// size, replacing an earlier one from the same witness (a newer
	// timestamp). ErrNotFound if no checkpoint is saved at size.
	AddCosignature(ctx context.Context, size int64, witness string, line []byte) error
}

// Update runs fn in a transaction and commits if fn returns nil. The server
// passes its database's Update; MemStore.Update serves tests.
type UpdateFunc func(ctx context.Context, fn func(Store) error) error
