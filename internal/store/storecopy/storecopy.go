// Package storecopy moves a parley deployment from its embedded SQLite
// database into an empty PostgreSQL database (`parley copy`), and checks
// afterwards that the two hold the same records and that the ledger still
// verifies.
//
// It copies tables, not objects through the store interfaces, because the
// interfaces assign what a copy must keep: object seqs (TAXII cursors carry
// them), collection keys, signature seqs, credit weights and times. It reads
// the SQLite file in one read transaction (a consistent snapshot even while
// a server runs on it) and writes everything in one PostgreSQL transaction,
// so a failed copy leaves the target empty.
//
// It must never write to the source, and never load into a database that
// already holds data.
package storecopy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// SchemaVersion is the schema version (the same number on both backends)
// whose tables this package knows. A source or target at another version
// is refused rather than copied in part.
const SchemaVersion = 40

// ErrVersion: the source or the target is not at SchemaVersion.
var ErrVersion = errors.New("storecopy: schema version not supported by this copy")

// Counts reports how many rows of each table were copied.
type Counts map[string]int64

// Total is the number of rows copied.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// chunk is how many rows go to PostgreSQL per COPY.
const chunk = 2000

// boolCols are INTEGER 0/1 in SQLite and BOOLEAN in PostgreSQL.
var boolCols = map[string]bool{"can_read": true, "can_write": true, "is_first": true, "is_last": true,
	"near_notified": true, "sealed": true, "ack_overdue": true, "answer_overdue": true}

// bytesCols are BLOB in SQLite and BYTEA in PostgreSQL.
var bytesCols = map[string]bool{"value": true, "hash": true, "raw": true, "details": true, "data": true,
	"note": true, "line": true, "public": true, "rotation": true, "document": true, "content": true, "sha256": true, "session_id": true,
	"statement": true, "withdrawal": true}

// orderBy keeps the source's order where the target's keys do not imply it.
var orderBy = map[string]string{"objects": "seq", "collections": "pk", "ledger_entries": "idx", "ledger_hashes": "idx",
	"agreement_signatures": "seq"}

// from names what a table's rows are read from where SQLite's table has
// another shape than PostgreSQL's: SQLite keys object owners by the
// compact STIX id key (stix_ids, its migration 24), PostgreSQL by the id,
// and SQLite's credits name their agreement and party by integers and
// carry their marks (its migration 34).
var from = map[string]string{
	"object_owners": `(SELECT o.coll AS coll, k.id AS id, o.party_id AS party_id
		FROM object_owners o JOIN stix_ids k ON k.key = o.key)`,
	// SQLite's credit rows name their agreement and party by integers and
	// hold each credit's mark (its migration 34).
	"agreement_credits": `agreement_credits_named`,
	"credit_marks": `(SELECT agreement_id, party_id, object_id, ord, mark_type AS type, mark_tlp AS tlp, mark_version AS version
		FROM agreement_credits_named WHERE mark_type IS NOT NULL)`,
}

// Copy copies the SQLite deployment in dir into dst, which must be migrated
// to SchemaVersion and empty (postgres.ErrNotEmpty otherwise).
func Copy(ctx context.Context, dir string, dst *postgres.DB) (Counts, error) {
	// sqlite.Open would create a missing database; the source must exist.
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	src, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	have, _, err := src.SchemaVersion(ctx)
	path := src.Path()
	src.Close()
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if have != SchemaVersion {
		return nil, fmt.Errorf("%w: the source is at version %d, this copy knows %d", ErrVersion, have, SchemaVersion)
	}
	if have, _, err := dst.SchemaVersion(ctx); err != nil || have != SchemaVersion {
		return nil, fmt.Errorf("%w: the target is at version %d, this copy knows %d (%v)", ErrVersion, have, SchemaVersion, err)
	}

	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "query_only(1)")
	rdb, err := sql.Open(sqlite.DriverName, "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer rdb.Close()
	rdb.SetMaxOpenConns(1)
	// One read transaction: every table from the same snapshot.
	rtx, err := rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer rtx.Rollback()

	counts := Counts{}
	tables, cols := postgres.LoadTables()
	err = dst.Load(ctx, func(l *postgres.Loader) error {
		for _, t := range tables {
			n, err := copyTable(ctx, rtx, l, t, cols[t])
			if err != nil {
				return err
			}
			counts[t] = n
		}
		var size int64
		if err := rtx.QueryRowContext(ctx, `SELECT size FROM ledger_size WHERE id = 1`).Scan(&size); err != nil {
			return fmt.Errorf("source ledger size: %w", err)
		}
		if size != counts["ledger_entries"] {
			return fmt.Errorf("source ledger size %d but %d entries", size, counts["ledger_entries"])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

func copyTable(ctx context.Context, rtx *sql.Tx, l *postgres.Loader, table string, cols []string) (int64, error) {
	src := table
	if f := from[table]; f != "" {
		src = f
	}
	query := `SELECT ` + strings.Join(cols, ", ") + ` FROM ` + src
	if o := orderBy[table]; o != "" {
		query += ` ORDER BY ` + o
	}
	rows, err := rtx.QueryContext(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("source %s: %w", table, err)
	}
	defer rows.Close()
	var n int64
	batch := make([][]any, 0, chunk)
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("source %s: %w", table, err)
		}
		for i, c := range cols {
			if vals[i], err = convert(c, vals[i]); err != nil {
				return 0, fmt.Errorf("source %s.%s: %w", table, c, err)
			}
		}
		batch = append(batch, vals)
		n++
		if len(batch) == chunk {
			if err := l.Rows(ctx, table, cols, batch); err != nil {
				return 0, err
			}
			batch = batch[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("source %s: %w", table, err)
	}
	if err := l.Rows(ctx, table, cols, batch); err != nil {
		return 0, err
	}
	return n, nil
}

// convert turns a SQLite value into the Go value PostgreSQL's column takes.
func convert(col string, v any) (any, error) {
	switch {
	case v == nil:
		return nil, nil
	case boolCols[col]:
		i, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("%T where 0 or 1 was expected", v)
		}
		return i != 0, nil
	case bytesCols[col]:
		switch b := v.(type) {
		case []byte:
			return b, nil
		case string:
			return []byte(b), nil
		}
		return nil, fmt.Errorf("%T where bytes were expected", v)
	case col == "weight":
		switch f := v.(type) {
		case float64:
			return f, nil
		case int64:
			return float64(f), nil
		}
		return nil, fmt.Errorf("%T where a number was expected", v)
	}
	if b, ok := v.([]byte); ok {
		return string(b), nil
	}
	return v, nil
}

// CopyPostgres copies the PostgreSQL deployment src into dst, an empty
// database migrated to SchemaVersion (postgres.ErrNotEmpty otherwise), for
// `parley backup` and `parley restore` on PostgreSQL: a logical copy that
// needs no pg_dump. src is read from one snapshot, so it may keep serving;
// dst gets exactly the commits before the snapshot, in one transaction,
// with every key kept (cursors and ledger indexes stay valid).
func CopyPostgres(ctx context.Context, src, dst *postgres.DB) (Counts, error) {
	for _, db := range []struct {
		name string
		db   *postgres.DB
	}{{"source", src}, {"target", dst}} {
		have, _, err := db.db.SchemaVersion(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", db.name, err)
		}
		if have != SchemaVersion {
			return nil, fmt.Errorf("%w: the %s is at version %d, this copy knows %d", ErrVersion, db.name, have, SchemaVersion)
		}
	}
	counts := Counts{}
	err := dst.Load(ctx, func(l *postgres.Loader) error {
		return src.Dump(ctx, chunk, func(table string, cols []string, rows [][]any) error {
			counts[table] += int64(len(rows))
			return l.Rows(ctx, table, cols, rows)
		})
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}
