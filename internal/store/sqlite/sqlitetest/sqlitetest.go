// Package sqlitetest tampers with a stopped parley SQLite data directory
// the way a dishonest operator or a damaged disk could: it edits, deletes
// and rolls back ledger rows and swaps the log's signing key, so tests can
// show that `parley verify` notices. It lives under internal/store because
// it speaks SQL, which nothing outside the store packages may.
//
// It is for tests only: nothing in parley's server or CLI may import it.
// Every function opens the database file directly; the server on the
// directory must be stopped.
package sqlitetest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/store/sqlite"
)

// exec runs statements in one transaction on the database in dir.
func exec(ctx context.Context, dir string, fn func(tx *sql.Tx) error) error {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open(sqlite.DriverName, "file:"+filepath.Join(dir, sqlite.FileName)+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func one(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%s: %d rows changed, want 1", what, n)
	}
	return nil
}

// Entry returns the stored bytes of ledger entry index.
func Entry(ctx context.Context, dir string, index int64) ([]byte, error) {
	var data []byte
	err := exec(ctx, dir, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT data FROM ledger_entries WHERE idx = ?`, index).Scan(&data)
	})
	return data, err
}

// EditEntry overwrites the stored bytes of ledger entry index, leaving
// every stored hash as it was.
func EditEntry(ctx context.Context, dir string, index int64, data []byte) error {
	return exec(ctx, dir, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE ledger_entries SET data = ? WHERE idx = ?`, data, index)
		return one(res, err, fmt.Sprintf("edit entry %d", index))
	})
}

// EditHash overwrites stored hash storedIndex (a tlog.StoredHashIndex).
func EditHash(ctx context.Context, dir string, storedIndex int64, h tlog.Hash) error {
	return exec(ctx, dir, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE ledger_hashes SET hash = ? WHERE idx = ?`, h[:], storedIndex)
		return one(res, err, fmt.Sprintf("edit stored hash %d", storedIndex))
	})
}

// DeleteEntry removes ledger entry index (its hashes stay).
func DeleteEntry(ctx context.Context, dir string, index int64) error {
	return exec(ctx, dir, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM ledger_entries WHERE idx = ?`, index)
		return one(res, err, fmt.Sprintf("delete entry %d", index))
	})
}

// Truncate rolls the log back to its first size entries: later entries,
// their stored hashes, and checkpoints (with cosignatures) beyond size go.
func Truncate(ctx context.Context, dir string, size int64) error {
	return exec(ctx, dir, func(tx *sql.Tx) error {
		for _, q := range []struct {
			sql string
			arg int64
		}{
			{`DELETE FROM ledger_entries WHERE idx >= ?`, size},
			{`DELETE FROM ledger_hashes WHERE idx >= ?`, tlog.StoredHashCount(size)},
			{`DELETE FROM ledger_cosignatures WHERE size > ?`, size},
			{`DELETE FROM ledger_checkpoints WHERE size > ?`, size},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.arg); err != nil {
				return fmt.Errorf("truncate to %d: %w", size, err)
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE ledger_size SET size = ? WHERE id = 1`, size)
		return one(res, err, "set ledger size")
	})
}

// ReplaceSetting overwrites a server setting (e.g. "ledger.note-skey", to
// make the server sign with another key).
func ReplaceSetting(ctx context.Context, dir, key string, value []byte) error {
	return exec(ctx, dir, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE settings SET value = ? WHERE key = ?`, value, key)
		return one(res, err, "replace setting "+key)
	})
}

// ForgetMarks makes the database look as if it had been migrated from
// before the joint report's tallies existed (migration 20): no marks, no
// tallies, and every party with credits pending a backfill.
func ForgetMarks(ctx context.Context, dir string) error {
	return exec(ctx, dir, func(tx *sql.Tx) error {
		for _, q := range []string{`UPDATE agreement_credits SET mark_type = NULL, mark_tlp = NULL, mark_version = NULL`,
			`DELETE FROM credit_tallies`, `DELETE FROM credit_marks_pending`,
			`INSERT INTO credit_marks_pending(agreement_id, party_id) SELECT DISTINCT agreement_id, party_id FROM agreement_credits_named`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
}
