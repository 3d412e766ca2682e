package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/parley-cti/parley/internal/store"
)

// SetSchemaVersionForTest pretends a newer parley migrated the database.
func SetSchemaVersionForTest(ctx context.Context, db *DB, v int) error {
	_, err := db.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v))
	return err
}

// ReadCostForTest returns SQLite's plan of the page read of q and how many
// index entries of q's collection the planned walk can visit: those after
// q.After and, when the plan bounds the walk by the release's reach, not
// after the reach's date_added.
func ReadCostForTest(ctx context.Context, db *DB, q store.ObjectQuery) (plan string, entries int64, err error) {
	query, args := querySQL(q)
	rows, err := db.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		return "", 0, err
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return "", 0, err
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		return "", 0, err
	}
	plan = strings.Join(lines, "\n")
	count := `SELECT count(*) FROM objects WHERE coll = (SELECT pk FROM collections WHERE id = ?) AND (date_added, seq) > (?, ?)`
	cargs := []any{q.Collection, micros(q.After.DateAdded), q.After.Seq}
	if q.After.DateAdded.IsZero() {
		cargs[1] = int64(-1 << 62)
	}
	// The index walk ends where the plan bounds date_added from above
	// (SQLite shows the row-value bound as date_added<?): entries up to
	// the reach's date_added, ties included.
	if r := q.Released; r != nil && r.Reach != nil && strings.Contains(plan, "USING INDEX objects_added (coll=? AND date_added<?)") {
		count += ` AND date_added <= ?`
		cargs = append(cargs, micros(r.Reach.DateAdded))
	}
	err = db.r.QueryRowContext(ctx, count, cargs...).Scan(&entries)
	return plan, entries, err
}

// RecomputeReachForTest forgets every release's reach and recomputes it as
// migration 13 does for a database upgraded with releases in it.
func RecomputeReachForTest(ctx context.Context, db *DB) error {
	for _, m := range migrations {
		if i := strings.Index(m, "UPDATE agreement_released SET"); i >= 0 && strings.Contains(m, "reach_added") {
			if _, err := db.w.ExecContext(ctx, `UPDATE agreement_released SET reach_added = 0, reach_seq = 0`); err != nil {
				return err
			}
			_, err := db.w.ExecContext(ctx, m[i:])
			return err
		}
	}
	return fmt.Errorf("no migration computes the reach")
}

// ClearSearchForTest empties the full-text index.
func ClearSearchForTest(ctx context.Context, db *DB) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO object_search(object_search) VALUES('delete-all')`)
	return err
}

// FillSearchForTest fills the full-text index as migration 14 does for a
// database upgraded with objects in it.
func FillSearchForTest(ctx context.Context, db *DB) error {
	m := migrations[13]
	i := strings.LastIndex(m, "INSERT INTO object_search(rowid, body, facets)")
	if i < 0 || !strings.Contains(m, "CREATE VIRTUAL TABLE object_search") {
		return fmt.Errorf("migration 14 does not fill object_search")
	}
	_, err := db.w.ExecContext(ctx, m[i:])
	return err
}

// BackfillKindsForTest forgets every collection's kind and sets it again as
// migration 17 does for a database upgraded with collections in it.
func BackfillKindsForTest(ctx context.Context, db *DB) error {
	m := migrations[16]
	i := strings.Index(m, "UPDATE collections SET kind")
	if i < 0 {
		return fmt.Errorf("migration 17 does not backfill kinds")
	}
	if _, err := db.w.ExecContext(ctx, `UPDATE collections SET kind = ''`); err != nil {
		return err
	}
	_, err := db.w.ExecContext(ctx, m[i:])
	return err
}

// UnkeyMarksForTest puts credit_marks back in the shape migration 20 gave
// it (keyed by object id, with an ordinal index), rows unchanged, then
// runs the migration that keys it by ordinal, as on a database upgraded
// with marks in it.
func UnkeyMarksForTest(ctx context.Context, db *DB) error {
	var m string
	for _, s := range migrations {
		if strings.Contains(s, "ALTER TABLE credit_marks_by_ord RENAME TO credit_marks") {
			m = s
		}
	}
	if m == "" {
		return fmt.Errorf("no migration keys credit_marks by ordinal")
	}
	for _, q := range []string{`CREATE TABLE credit_marks_v20 (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	party_id     TEXT NOT NULL,
	object_id    TEXT NOT NULL,
	ord          INTEGER NOT NULL,
	type         TEXT NOT NULL,
	tlp          INTEGER NOT NULL,
	version      INTEGER NOT NULL,
	PRIMARY KEY (agreement_id, party_id, object_id)
) WITHOUT ROWID`,
		`INSERT INTO credit_marks_v20 SELECT agreement_id, party_id, object_id, ord, type, tlp, version FROM credit_marks`,
		`DROP TABLE credit_marks`,
		`ALTER TABLE credit_marks_v20 RENAME TO credit_marks`,
		`CREATE UNIQUE INDEX credit_marks_ord ON credit_marks(agreement_id, party_id, ord)`,
		m} {
		if _, err := db.w.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
