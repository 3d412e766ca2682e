package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/store"
)

// ledgerStore implements ledger.Store on the ledger_* tables. Inside
// Store.Update it shares the transaction of the state change it records.
type ledgerStore handle

var _ ledger.Store = ledgerStore{}

// Ledger returns the ledger bound to this handle (and its transaction).
func (h handle) Ledger() ledger.Store { return ledgerStore(h) }

func lerr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ledger: %w", mapErr(err))
}

// notFound maps a missing row to ledger.ErrNotFound, which the ledger
// package's callers test for.
func notFound(err error) error {
	m := mapErr(err)
	if errors.Is(m, store.ErrNotFound) {
		return ledger.ErrNotFound
	}
	return m
}

func (s ledgerStore) Size(ctx context.Context) (int64, error) {
	var n int64
	err := s.q.QueryRow(ctx, `SELECT size FROM ledger_size WHERE id = 1`).Scan(&n)
	return n, lerr(err)
}

// LockedSize locks the one ledger_size row until the transaction ends, so
// appenders on every instance queue on it: one sequence, no gaps, no forks.
// Outside a transaction the lock would end with the statement, which is of
// no use to an appender; the ledger package always calls it inside Update.
func (s ledgerStore) LockedSize(ctx context.Context) (int64, error) {
	var n int64
	err := s.q.QueryRow(ctx, `SELECT size FROM ledger_size WHERE id = 1 FOR UPDATE`).Scan(&n)
	return n, lerr(err)
}

func (s ledgerStore) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	pos := make(map[int64][]int, len(indexes))
	for i, x := range indexes {
		if x < 0 {
			return nil, fmt.Errorf("ledger: hash index %d: %w", x, ledger.ErrNotFound)
		}
		pos[x] = append(pos[x], i)
	}
	if len(pos) == 0 {
		return out, nil
	}
	uniq := make([]int64, 0, len(pos))
	for x := range pos {
		uniq = append(uniq, x)
	}
	slices.Sort(uniq)
	rows, err := s.q.Query(ctx, `SELECT idx, hash FROM ledger_hashes WHERE idx = ANY($1::bigint[])`, uniq)
	if err != nil {
		return nil, lerr(err)
	}
	found := 0
	var x int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&x, &h}, func() error {
		if len(h) != tlog.HashSize {
			return fmt.Errorf("ledger: stored hash %d has %d bytes", x, len(h))
		}
		for _, i := range pos[x] {
			copy(out[i][:], h)
		}
		found++
		return nil
	})
	if err != nil {
		return nil, lerr(err)
	}
	if found != len(pos) {
		return nil, fmt.Errorf("ledger: %d of %d hashes missing: %w", len(pos)-found, len(pos), ledger.ErrNotFound)
	}
	return out, nil
}

func (s ledgerStore) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	if start < 0 || start > end {
		return nil, fmt.Errorf("ledger: entries [%d, %d): %w", start, end, ledger.ErrInvalid)
	}
	rows, err := s.q.Query(ctx, `SELECT idx, data FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`, start, end)
	if err != nil {
		return nil, lerr(err)
	}
	out := make([][]byte, 0, min(end-start, 4096))
	var x int64
	var d []byte
	_, err = pgx.ForEachRow(rows, []any{&x, &d}, func() error {
		if x != start+int64(len(out)) {
			return fmt.Errorf("ledger: entry %d: %w", start+int64(len(out)), ledger.ErrNotFound)
		}
		out = append(out, d)
		d = nil // the next row must not scan into this entry's bytes
		return nil
	})
	if err != nil {
		return nil, lerr(err)
	}
	if int64(len(out)) != end-start {
		return nil, fmt.Errorf("ledger: entries [%d, %d) reach only %d: %w", start, end, start+int64(len(out)), ledger.ErrNotFound)
	}
	return out, nil
}

// WriteEntries moves the size first: the conditional UPDATE both checks that
// no other appender got there and, where the caller did not lock, takes the
// row lock for the rest of the transaction.
func (s ledgerStore) WriteEntries(ctx context.Context, first int64, entries [][]byte, storedHashes []tlog.Hash, newSize int64) error {
	if first < 0 || newSize != first+int64(len(entries)) {
		return fmt.Errorf("ledger: write %d entries at %d to size %d: %w", len(entries), first, newSize, ledger.ErrInvalid)
	}
	if want := tlog.StoredHashCount(newSize) - tlog.StoredHashCount(first); int64(len(storedHashes)) != want {
		return fmt.Errorf("ledger: write %d stored hashes, want %d: %w", len(storedHashes), want, ledger.ErrInvalid)
	}
	// One round trip: appenders hold the agreement's lock or the ledger's
	// row while they write, so every statement here is waited for by all
	// writers. A size that does not match aborts the transaction with
	// ErrConflict whatever the inserts after it did.
	return atomic(ctx, handle(s), func(h handle) error {
		idx := make([]int64, len(entries))
		for i := range entries {
			idx[i] = first + int64(i)
		}
		hidx := make([]int64, len(storedHashes))
		hs := make([][]byte, len(storedHashes))
		base := tlog.StoredHashCount(first)
		for i := range storedHashes {
			hidx[i] = base + int64(i)
			hs[i] = storedHashes[i][:]
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE ledger_size SET size = $1 WHERE id = 1 AND size = $2`, newSize, first)
		b.Queue(`INSERT INTO ledger_entries(idx, data) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, idx, entries)
		b.Queue(`INSERT INTO ledger_hashes(idx, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, hidx, hs)
		br := h.q.SendBatch(ctx, b)
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return lerr(err)
		}
		if tag.RowsAffected() != 1 {
			br.Close()
			return fmt.Errorf("ledger: write at %d but the log has another size: %w", first, ledger.ErrConflict)
		}
		return lerr(br.Close())
	})
}

// SaveCheckpoint inserts unless a checkpoint of that size exists, then
// compares: two instances signing the same head race harmlessly, and
// different bytes at one size are refused.
func (s ledgerStore) SaveCheckpoint(ctx context.Context, size int64, note []byte) error {
	return atomic(ctx, handle(s), func(h handle) error {
		var n int64
		if err := h.q.QueryRow(ctx, `SELECT size FROM ledger_size WHERE id = 1`).Scan(&n); err != nil {
			return lerr(err)
		}
		if size < 0 || size > n {
			return fmt.Errorf("ledger: checkpoint at %d, log size %d: %w", size, n, ledger.ErrInvalid)
		}
		if _, err := h.q.Exec(ctx, `INSERT INTO ledger_checkpoints(size, note) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING`, size, note); err != nil {
			return lerr(err)
		}
		var stored []byte
		if err := h.q.QueryRow(ctx, `SELECT note FROM ledger_checkpoints WHERE size = $1`, size).Scan(&stored); err != nil {
			return lerr(err)
		}
		if !bytes.Equal(stored, note) {
			return fmt.Errorf("ledger: checkpoint at %d already saved: %w", size, ledger.ErrConflict)
		}
		return nil
	})
}

func (s ledgerStore) LatestCheckpoint(ctx context.Context) (int64, []byte, error) {
	var n int64
	var note []byte
	err := s.q.QueryRow(ctx, `SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&n, &note)
	if err != nil {
		return 0, nil, fmt.Errorf("ledger: latest checkpoint: %w", notFound(err))
	}
	return n, note, nil
}

func (s ledgerStore) CheckpointAt(ctx context.Context, size int64) ([]byte, error) {
	var note []byte
	err := s.q.QueryRow(ctx, `SELECT note FROM ledger_checkpoints WHERE size = $1`, size).Scan(&note)
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint at %d: %w", size, notFound(err))
	}
	return note, nil
}

func (s ledgerStore) AddCosignature(ctx context.Context, size int64, witness string, line []byte) error {
	_, err := s.q.Exec(ctx, `INSERT INTO ledger_cosignatures(size, witness, line) VALUES ($1, $2, $3)
		ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line`, size, witness, line)
	if err != nil {
		// The foreign key names a missing checkpoint.
		return fmt.Errorf("ledger: cosignature for checkpoint %d: %w", size, notFound(err))
	}
	return nil
}

func (s ledgerStore) Cosignatures(ctx context.Context, size int64) ([][]byte, error) {
	rows, err := s.q.Query(ctx, `SELECT line FROM ledger_cosignatures WHERE size = $1 ORDER BY witness COLLATE "C"`, size)
	if err != nil {
		return nil, lerr(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, lerr(err)
	}
	if out == nil {
		out = [][]byte{}
	}
	return out, nil
}

// CommitmentKey reads the ledger's commitment key in the caller's
// transaction, creating it on first use; the settings row is write-once,
// so concurrent first appenders agree (a loser's transaction is retried).
func (s ledgerStore) CommitmentKey(ctx context.Context) ([]byte, error) {
	var k []byte
	err := s.q.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, store.LedgerCommitmentKeySetting).Scan(&k)
	if errors.Is(err, pgx.ErrNoRows) {
		fresh := make([]byte, ledger.CommitmentKeySize)
		if _, err := rand.Read(fresh); err != nil {
			return nil, err
		}
		k, err = settings(s).PutIfAbsent(ctx, store.LedgerCommitmentKeySetting, fresh)
		if err != nil {
			return nil, lerr(err)
		}
	} else if err != nil {
		return nil, lerr(err)
	}
	if len(k) != ledger.CommitmentKeySize {
		return nil, fmt.Errorf("ledger: setting %s holds %d bytes, want %d", store.LedgerCommitmentKeySetting, len(k), ledger.CommitmentKeySize)
	}
	return k, nil
}
