package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

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
			// Credit rows name their agreement and party by integers
			// since migration 34; the view shows them as they were.
			_, err := db.w.ExecContext(ctx, strings.ReplaceAll(m[i:], "agreement_credits c", "agreement_credits_named c"))
			return err
		}
	}
	return fmt.Errorf("no migration computes the reach")
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

// UnkeyMarksForTest puts the credits and their marks back in the shape
// migration 20 gave the marks (a credit_marks table keyed by object id,
// with an ordinal index) and migration 26 the credits (agreement and party
// ids in each row, indexed by key, ordinal, time and fingerprint), rows
// unchanged, then runs the migrations that key credit_marks by ordinal
// (22) and move the marks into credit rows named by integers (34), as on
// a database upgraded with marks in it, the one that gives the
// fingerprints their tables (37) and the one that drops them (40).
func UnkeyMarksForTest(ctx context.Context, db *DB) error {
	find := func(text string) (string, error) {
		for _, s := range migrations {
			if strings.Contains(s, text) {
				return s, nil
			}
		}
		return "", fmt.Errorf("no migration has %q", text)
	}
	byOrd, err := find("ALTER TABLE credit_marks_by_ord RENAME TO credit_marks")
	if err != nil {
		return err
	}
	inRows, err := find("CREATE TABLE agreement_credits_v34")
	if err != nil {
		return err
	}
	ownFPs, err := find("CREATE TABLE credit_fps (")
	if err != nil {
		return err
	}
	noFPs, err := find("DROP TABLE credit_fps_new;")
	if err != nil {
		return err
	}
	for _, q := range []string{`CREATE TABLE credit_marks (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	party_id     TEXT NOT NULL,
	object_id    TEXT NOT NULL,
	ord          INTEGER NOT NULL,
	type         TEXT NOT NULL,
	tlp          INTEGER NOT NULL,
	version      INTEGER NOT NULL,
	PRIMARY KEY (agreement_id, party_id, object_id)
) WITHOUT ROWID`,
		`INSERT INTO credit_marks SELECT agreement_id, party_id, object_id, ord, mark_type, mark_tlp, mark_version
			FROM agreement_credits_named WHERE mark_type IS NOT NULL`,
		`CREATE UNIQUE INDEX credit_marks_ord ON credit_marks(agreement_id, party_id, ord)`,
		`CREATE TABLE agreement_credits_v26 (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	key          INTEGER NOT NULL,
	party_id     TEXT NOT NULL,
	object_id    TEXT NOT NULL,
	ord          INTEGER NOT NULL,
	weight       REAL NOT NULL,
	added_at     INTEGER NOT NULL,
	fingerprint  INTEGER,
	contested    INTEGER NOT NULL DEFAULT 0
)`,
		`INSERT INTO agreement_credits_v26 SELECT agreement_id, key, party_id, object_id, ord, weight, added_at, fingerprint, contested
			FROM agreement_credits_named ORDER BY added_at, party_id, ord`,
		`DROP VIEW agreement_credits_named`,
		`DROP TABLE agreement_credits`,
		`DROP TABLE credit_names`,
		`ALTER TABLE agreement_credits_v26 RENAME TO agreement_credits`,
		`CREATE UNIQUE INDEX agreement_credits_key ON agreement_credits(agreement_id, key, party_id)`,
		`CREATE UNIQUE INDEX agreement_credits_ord ON agreement_credits(agreement_id, party_id, ord)`,
		`CREATE INDEX agreement_credits_added ON agreement_credits(agreement_id, party_id, added_at)`,
		`CREATE INDEX agreement_credits_fingerprint ON agreement_credits(fingerprint)`,
		byOrd, inRows, ownFPs, noFPs} {
		if _, err := db.w.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%.60s: %w", q, err)
		}
	}
	return nil
}

// SetFingerprintMergeForTest makes the writer's sets of known contents
// merge their latest fingerprints into their sorted part when they hold n
// (fpSet); the returned function undoes it.
func SetFingerprintMergeForTest(n int) (undo func()) {
	old := fpRecentMin
	fpRecentMin = n
	return func() { fpRecentMin = old }
}

// SetIDHashingForTest makes every id hash to the same value (stixids.go)
// when alike is true and sets idMergeAt to n; the returned function
// undoes both.
func SetIDHashingForTest(alike bool, n int) (undo func()) {
	oldHash, oldMerge := idHash, idMergeAt
	if alike {
		idHash = func(string) int64 { return 42 }
	}
	idMergeAt = n
	return func() { idHash, idMergeAt = oldHash, oldMerge }
}

// SetIDMergeSlicesForTest sets idMergeSlices to n; the returned function
// undoes it.
func SetIDMergeSlicesForTest(n int) (undo func()) {
	old := idMergeSlices
	idMergeSlices = n
	return func() { idMergeSlices = old }
}

// SetIDFilterForTest makes the writer's id filter (idfilter.go) be built
// at its first use, before that use returns, with a first part of first
// ids, and merges the id hashes every mergeAt new ids.
func SetIDFilterForTest(first, mergeAt int) (undo func()) {
	oldSync, oldFirst, oldMerge := idFilterSync, idFilterFirst, idMergeAt
	idFilterSync, idFilterFirst, idMergeAt = true, first, mergeAt
	return func() { idFilterSync, idFilterFirst, idMergeAt = oldSync, oldFirst, oldMerge }
}

// RemoveSearchFilesForTest removes dir's search index (search.db and its
// -wal and -shm files), as an operator deleting it by hand would.
func RemoveSearchFilesForTest(t testing.TB, dir string) {
	t.Helper()
	if err := removeSearchFiles(filepath.Join(dir, SearchFileName)); err != nil {
		t.Fatal(err)
	}
}
