package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/parley-cti/parley/internal/store"
)

// MigrationForTest returns the SQL of the migration whose name contains
// name.
func MigrationForTest(name string) string {
	for _, m := range migrations {
		if strings.Contains(m.name, name) {
			return m.sql
		}
	}
	return ""
}

// ReadCostForTest runs the page read of q under EXPLAIN (ANALYZE) and
// returns the plan and the table rows the execution touched: those every
// scan of a table (objects, agreement_credits…) returned plus those it
// read and removed by a filter, over all its loops.
func ReadCostForTest(ctx context.Context, db *DB, q store.ObjectQuery) (plan string, touched int64, err error) {
	pk, err := collPK(ctx, db.q, q.Collection)
	if err != nil {
		return "", 0, err
	}
	w, args := where(pk, q)
	args = append(args, q.Limit+1)
	err = db.pool.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) SELECT seq, id, type, spec_version, version, date_added, raw FROM objects
		WHERE `+w+` ORDER BY date_added, seq LIMIT $`+strconv.Itoa(len(args)), args...).Scan(&plan)
	if err != nil {
		return "", 0, err
	}
	var doc []struct{ Plan node }
	if err := json.Unmarshal([]byte(plan), &doc); err != nil {
		return plan, 0, err
	}
	var walk func(n node)
	walk = func(n node) {
		if n.Relation != "" {
			touched += int64((n.Rows + n.Removed) * n.Loops)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	for _, d := range doc {
		walk(d.Plan)
	}
	return plan, touched, nil
}

type node struct {
	Relation string  `json:"Relation Name"`
	Rows     float64 `json:"Actual Rows"`
	Removed  float64 `json:"Rows Removed by Filter"`
	Loops    float64 `json:"Actual Loops"`
	Plans    []node  `json:"Plans"`
}

// AnalyzeForTest refreshes the planner's statistics, as autovacuum does
// after a bulk load.
func AnalyzeForTest(ctx context.Context, db *DB) error {
	_, err := db.pool.Exec(ctx, `ANALYZE`)
	return err
}

// RecomputeReachForTest forgets every release's reach and recomputes it as
// migration 13 does for a database upgraded with releases in it.
func RecomputeReachForTest(ctx context.Context, db *DB) error {
	m := MigrationForTest("reach of a release")
	i := strings.Index(m, "UPDATE agreement_released")
	if i < 0 {
		return errors.New("no migration computes the reach")
	}
	if _, err := db.pool.Exec(ctx, `UPDATE agreement_released SET reach_added = 0, reach_seq = 0`); err != nil {
		return err
	}
	_, err := db.pool.Exec(ctx, m[i:])
	return err
}

// BackendPIDForTest returns the server process serving h, a transaction's
// handle, so a test can break that connection.
func BackendPIDForTest(ctx context.Context, h store.Handle) (int32, error) {
	var pid int32
	err := h.(handle).q.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid)
	return pid, err
}

// BackfillKindsForTest forgets every collection's kind and sets it again as
// the migration "collection kinds" does for a database upgraded with
// collections in it.
func BackfillKindsForTest(ctx context.Context, db *DB) error {
	m := MigrationForTest("collection kinds")
	i := strings.Index(m, "UPDATE collections SET kind")
	if i < 0 {
		return errors.New("no migration backfills collection kinds")
	}
	if _, err := db.pool.Exec(ctx, `UPDATE collections SET kind = ''`); err != nil {
		return err
	}
	_, err := db.pool.Exec(ctx, m[i:])
	return err
}

// FailStatementForTest runs a statement that fails in h's transaction,
// which aborts it, and returns the error.
func FailStatementForTest(ctx context.Context, h store.Handle) error {
	_, err := h.(handle).q.Exec(ctx, `SELECT 1/0`)
	return err
}

// FailAtCommitForTest makes h's transaction fail at COMMIT: it breaks a
// deferred unique constraint of a temporary table.
func FailAtCommitForTest(ctx context.Context, h store.Handle) error {
	q := h.(handle).q
	if _, err := q.Exec(ctx, `CREATE TEMP TABLE fail_at_commit (x int UNIQUE DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP`); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `INSERT INTO fail_at_commit VALUES (1), (1)`)
	return err
}
