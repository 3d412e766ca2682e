package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"

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

func (s ledgerStore) Size(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT size FROM ledger_size WHERE id = 1`).Scan(&n)
	return n, lerr(err)
}

// LockedSize reads the size on the writer: a SQLite write transaction
// (BEGIN IMMEDIATE) already excludes every other appender.
func (s ledgerStore) LockedSize(ctx context.Context) (int64, error) {
	var n int64
	err := s.w.QueryRowContext(ctx, `SELECT size FROM ledger_size WHERE id = 1`).Scan(&n)
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
	uniq := make([]int64, 0, len(pos))
	for x := range pos {
		uniq = append(uniq, x)
	}
	found := 0
	for len(uniq) > 0 {
		chunk := uniq[:min(len(uniq), 500)]
		uniq = uniq[len(chunk):]
		args := make([]any, len(chunk))
		for i, x := range chunk {
			args[i] = x
		}
		rows, err := s.r.QueryContext(ctx, `SELECT idx, hash FROM ledger_hashes WHERE idx IN (?`+strings.Repeat(`, ?`, len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, lerr(err)
		}
		for rows.Next() {
			var x int64
			var h []byte
			if err := rows.Scan(&x, &h); err != nil {
				rows.Close()
				return nil, lerr(err)
			}
			if len(h) != tlog.HashSize {
				rows.Close()
				return nil, fmt.Errorf("ledger: stored hash %d has %d bytes", x, len(h))
			}
			for _, i := range pos[x] {
				copy(out[i][:], h)
			}
			found++
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, lerr(err)
		}
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
	rows, err := s.r.QueryContext(ctx, `SELECT idx, data FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx`, start, end)
	if err != nil {
		return nil, lerr(err)
	}
	defer rows.Close()
	out := make([][]byte, 0, end-start)
	for rows.Next() {
		var x int64
		var d []byte
		if err := rows.Scan(&x, &d); err != nil {
			return nil, lerr(err)
		}
		if x != start+int64(len(out)) {
			return nil, fmt.Errorf("ledger: entry %d: %w", start+int64(len(out)), ledger.ErrNotFound)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, lerr(err)
	}
	if int64(len(out)) != end-start {
		return nil, fmt.Errorf("ledger: entries [%d, %d) reach only %d: %w", start, end, start+int64(len(out)), ledger.ErrNotFound)
	}
	return out, nil
}

func (s ledgerStore) WriteEntries(ctx context.Context, first int64, entries [][]byte, storedHashes []tlog.Hash, newSize int64) error {
	if first < 0 || newSize != first+int64(len(entries)) {
		return fmt.Errorf("ledger: write %d entries at %d to size %d: %w", len(entries), first, newSize, ledger.ErrInvalid)
	}
	if want := tlog.StoredHashCount(newSize) - tlog.StoredHashCount(first); int64(len(storedHashes)) != want {
		return fmt.Errorf("ledger: write %d stored hashes, want %d: %w", len(storedHashes), want, ledger.ErrInvalid)
	}
	return atomic(ctx, handle(s), func(h handle) error {
		res, err := h.w.ExecContext(ctx, `UPDATE ledger_size SET size = ? WHERE id = 1 AND size = ?`, newSize, first)
		if err != nil {
			return lerr(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("ledger: write at %d but the log has another size: %w", first, ledger.ErrConflict)
		}
		ins, err := h.w.PrepareContext(ctx, `INSERT INTO ledger_entries(idx, data) VALUES (?, ?)`)
		if err != nil {
			return lerr(err)
		}
		defer ins.Close()
		for i, e := range entries {
			if _, err := ins.ExecContext(ctx, first+int64(i), e); err != nil {
				return lerr(err)
			}
		}
		hins, err := h.w.PrepareContext(ctx, `INSERT INTO ledger_hashes(idx, hash) VALUES (?, ?)`)
		if err != nil {
			return lerr(err)
		}
		defer hins.Close()
		base := tlog.StoredHashCount(first)
		for i, hash := range storedHashes {
			if _, err := hins.ExecContext(ctx, base+int64(i), hash[:]); err != nil {
				return lerr(err)
			}
		}
		return nil
	})
}

func (s ledgerStore) SaveCheckpoint(ctx context.Context, size int64, note []byte) error {
	return atomic(ctx, handle(s), func(h handle) error {
		var n int64
		if err := h.w.QueryRowContext(ctx, `SELECT size FROM ledger_size WHERE id = 1`).Scan(&n); err != nil {
			return lerr(err)
		}
		if size < 0 || size > n {
			return fmt.Errorf("ledger: checkpoint at %d, log size %d: %w", size, n, ledger.ErrInvalid)
		}
		var old []byte
		err := h.w.QueryRowContext(ctx, `SELECT note FROM ledger_checkpoints WHERE size = ?`, size).Scan(&old)
		if err == nil {
			if bytes.Equal(old, note) {
				return nil
			}
			return fmt.Errorf("ledger: checkpoint at %d already saved: %w", size, ledger.ErrConflict)
		}
		if _, err := h.w.ExecContext(ctx, `INSERT INTO ledger_checkpoints(size, note) VALUES (?, ?)`, size, note); err != nil {
			return lerr(err)
		}
		return nil
	})
}

func (s ledgerStore) LatestCheckpoint(ctx context.Context) (int64, []byte, error) {
	var n int64
	var note []byte
	err := s.r.QueryRowContext(ctx, `SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&n, &note)
	if err != nil {
		return 0, nil, fmt.Errorf("ledger: latest checkpoint: %w", notFound(err))
	}
	return n, note, nil
}

func (s ledgerStore) CheckpointAt(ctx context.Context, size int64) ([]byte, error) {
	var note []byte
	err := s.r.QueryRowContext(ctx, `SELECT note FROM ledger_checkpoints WHERE size = ?`, size).Scan(&note)
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint at %d: %w", size, notFound(err))
	}
	return note, nil
}

func (s ledgerStore) AddCosignature(ctx context.Context, size int64, witness string, line []byte) error {
	return atomic(ctx, handle(s), func(h handle) error {
		var one int
		if err := h.w.QueryRowContext(ctx, `SELECT 1 FROM ledger_checkpoints WHERE size = ?`, size).Scan(&one); err != nil {
			return fmt.Errorf("ledger: cosignature for checkpoint %d: %w", size, notFound(err))
		}
		_, err := h.w.ExecContext(ctx, `INSERT INTO ledger_cosignatures(size, witness, line) VALUES (?, ?, ?)
			ON CONFLICT(size, witness) DO UPDATE SET line = excluded.line`, size, witness, line)
		return lerr(err)
	})
}

func (s ledgerStore) Cosignatures(ctx context.Context, size int64) ([][]byte, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT line FROM ledger_cosignatures WHERE size = ? ORDER BY witness`, size)
	if err != nil {
		return nil, lerr(err)
	}
	defer rows.Close()
	out := [][]byte{}
	for rows.Next() {
		var l []byte
		if err := rows.Scan(&l); err != nil {
			return nil, lerr(err)
		}
		out = append(out, l)
	}
	return out, lerr(rows.Err())
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

// CommitmentKey reads the ledger's commitment key on the writer (inside the
// caller's transaction), creating it on first use; the settings row is
// write-once.
func (s ledgerStore) CommitmentKey(ctx context.Context) ([]byte, error) {
	var k []byte
	err := s.w.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, store.LedgerCommitmentKeySetting).Scan(&k)
	if errors.Is(err, sql.ErrNoRows) {
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
