package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/store/storetest"
)

// fpsMigration is migration 37, which moves the credits' fingerprints
// from an index on agreement_credits into credit_fps and credit_fps_new.
var fpsMigration = func() string {
	for _, m := range migrations {
		if strings.Contains(m, "CREATE TABLE credit_fps (") {
			return m
		}
	}
	return ""
}()

// fpsRows is every fingerprint entry of both tables, and of the credit
// rows, as text in key order.
func fpsRows(t *testing.T, db *DB) (tables, credits string) {
	t.Helper()
	read := func(q string) string {
		rows, err := db.r.QueryContext(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var ag, fp, pa, ord int64
			if err := rows.Scan(&ag, &fp, &pa, &ord); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%d %d %d %d\n", ag, fp, pa, ord)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	return read(`SELECT ag, fingerprint, pa, ord FROM (SELECT * FROM credit_fps UNION ALL SELECT * FROM credit_fps_new) ORDER BY 1, 2, 3, 4`),
		read(`SELECT ag, fingerprint, pa, ord FROM agreement_credits WHERE fingerprint IS NOT NULL ORDER BY 1, 2, 3, 4`)
}

// TestFingerprintTables: content already credited is found whether its
// fingerprint is in the small table or has been merged into the large
// one, a merge moves every fingerprint and empties the small table, the
// release bound holds in both, and migration 37 files the fingerprints of
// credits stored before it in credit_fps, the credit rows unchanged.
func TestFingerprintTables(t *testing.T) {
	defer SetFingerprintMergeForTest(SetFingerprintMergeForTest(5))
	ctx := context.Background()
	ag := "agreement--fps"
	db, alpha, bravo, t0 := agreementDB(t, ag)
	give := storetest.GiveContents(t, db, ag, t0)
	count := func(table string) int {
		t.Helper()
		var n int
		if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := give(alpha, 1, 2, 3); got != "[]" {
		t.Fatalf("new contents counted as known: %q", got)
	}
	if n, m := count("credit_fps_new"), count("credit_fps"); n != 3 || m != 0 {
		t.Fatalf("after 3 credits: %d new, %d merged; want 3, 0", n, m)
	}
	// 1 is in the small table; 4-6 fill it to 6 >= 5, so it merges.
	if got := give(alpha, 1, 4, 5, 6); got != "[1]" {
		t.Fatalf("alpha re-giving 1 among new: same content %q, want 1", got)
	}
	if n, m := count("credit_fps_new"), count("credit_fps"); n != 0 || m != 6 {
		t.Fatalf("after the merge: %d new, %d merged; want 0, 6", n, m)
	}
	// Known from the large table (2) and the small one (7, given first).
	if got := give(alpha, 7, 2, 7, 8); got != "[2 7]" {
		t.Fatalf("alpha re-giving 2 and 7: same content %q, want 2 7", got)
	}
	// Bravo knows none of alpha's content before it is released: 1 and 2
	// are in the large table, 7 in the small one.
	if got := give(bravo, 1, 7); got != "[]" {
		t.Fatalf("bravo giving alpha's unreleased content: same content %q", got)
	}
	if err := db.Credits().SetReleased(ctx, ag, bravo, 7); err != nil {
		t.Fatal(err)
	}
	// Released to bravo: alpha's 1-7 (ordinals 1-7), not 8 (ordinal 8,
	// in the small table); bravo's own 1 and 7 too.
	if got := give(bravo, 2, 6, 8, 9, 1); got != "[2 6 1]" {
		t.Fatalf("bravo giving released and unreleased content: same content %q, want 2 6 1", got)
	}
	// Each table is searched by its key, never walked.
	prows, err := db.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+knownFPs(2, true), int64(1), int64(2), int64(1), int64(1), int64(7), ag, int64(1), int64(2))
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for prows.Next() {
		var id, parent, notused int
		var detail string
		if err := prows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	prows.Close()
	for _, want := range []string{"SEARCH credit_fps USING PRIMARY KEY (ag=? AND fingerprint=?)",
		"SEARCH credit_fps_new USING PRIMARY KEY (ag=? AND fingerprint=?)",
		"SEARCH agreement_handed USING PRIMARY KEY (agreement_id=? AND fingerprint=?)"} {
		if !strings.Contains(plan.String(), want) || strings.Contains(plan.String(), "SCAN") {
			t.Errorf("the fingerprint lookup's plan has no %q, or a scan:\n%s", want, plan.String())
		}
	}
	tables, rows := fpsRows(t, db)
	if tables != rows {
		t.Fatalf("the fingerprint tables hold\n%s\nthe credits\n%s", tables, rows)
	}

	// Migration 37 on a database whose fingerprints are in the credit
	// rows' index only.
	for _, q := range []string{`DROP TABLE credit_fps`, `DROP TABLE credit_fps_new`,
		`CREATE INDEX agreement_credits_fingerprint ON agreement_credits(fingerprint)`, fpsMigration} {
		if _, err := db.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.50s: %v", q, err)
		}
	}
	if after, _ := fpsRows(t, db); after != rows {
		t.Fatalf("after migration 37 the fingerprint tables hold\n%s\nwant\n%s", after, rows)
	}
	if n := count("credit_fps_new"); n != 0 {
		t.Fatalf("migration 37 left %d in credit_fps_new", n)
	}
	var idx int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'agreement_credits_fingerprint'`).Scan(&idx); err != nil || idx != 0 {
		t.Fatalf("the credit rows' fingerprint index is still there: %d, %v", idx, err)
	}
	if got := give(alpha, 9, 8, 3, 10); got != "[8 3]" {
		t.Fatalf("alpha after the migration: same content %q, want 8 3", got)
	}
}
