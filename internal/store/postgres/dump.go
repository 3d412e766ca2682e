package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// snapshotOrder keeps a table's rows in key order where it matters to the
// loader (identity keys, the ledger's indexes).
var snapshotOrder = map[string]string{"objects": "seq", "collections": "pk", "ledger_entries": "idx", "ledger_hashes": "idx",
	"agreement_signatures": "seq"}

// Dump reads every table Load accepts, in load order, from one snapshot
// (a REPEATABLE READ, READ ONLY transaction: instances keep writing, the
// dump sees exactly the commits before it began) and hands each table's
// rows to fn in batches of at most batch rows, in the columns LoadTables
// lists. It writes nothing.
func (db *DB) Dump(ctx context.Context, batch int, fn func(table string, cols []string, rows [][]any) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return mapErr(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, t := range loadable {
		query := `SELECT `
		for i, c := range t.cols {
			if i > 0 {
				query += ", "
			}
			query += pgx.Identifier{c}.Sanitize()
		}
		query += ` FROM ` + pgx.Identifier{t.table}.Sanitize()
		if o := snapshotOrder[t.table]; o != "" {
			query += ` ORDER BY ` + o
		}
		rows, err := tx.Query(ctx, query)
		if err != nil {
			return fmt.Errorf("postgres: dump %s: %w", t.table, mapErr(err))
		}
		buf := make([][]any, 0, batch)
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return fmt.Errorf("postgres: dump %s: %w", t.table, mapErr(err))
			}
			buf = append(buf, vals)
			if len(buf) == batch {
				if err := fn(t.table, t.cols, buf); err != nil {
					rows.Close()
					return err
				}
				buf = make([][]any, 0, batch)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: dump %s: %w", t.table, mapErr(err))
		}
		if err := fn(t.table, t.cols, buf); err != nil {
			return err
		}
	}
	return nil
}
