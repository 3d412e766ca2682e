package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestIDLookupsReadNoWholeTable: every statement that finds ids' keys
// reaches stix_ids by key from the hash tables' primary keys, never by
// walking a table: the plan of each names no SCAN of those tables.
func TestIDLookupsReadNoWholeTable(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir(), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, q := range map[string]string{
		"lookup of 3 ids":  lookupKeysSQL(3),
		"key of one id":    `SELECT ` + keyOfID,
		"owner of one id":  `SELECT o.party_id FROM object_owners o JOIN collections c ON c.pk = o.coll WHERE c.id = 'c' AND o.key = ` + keyOfID,
		"credit of one id": `SELECT ord FROM agreement_credits WHERE ag = ` + creditName + ` AND key = ` + keyOfID + ` AND pa = ` + creditName,
	} {
		args := make([]any, strings.Count(q, "?"))
		for i := range args {
			args[i] = int64(i)
		}
		rows, err := db.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, "stix_id_hashes") {
			t.Errorf("%s: the plan does not read the hash tables:\n%s", name, text)
		}
		for _, line := range plan {
			if strings.HasPrefix(line, "SCAN ") && (strings.Contains(line, "stix_id") || strings.HasPrefix(line, "SCAN s")) {
				t.Errorf("%s: walks a table: %q in\n%s", name, line, text)
			}
		}
	}
}

// TestIDHashesMerge: new ids' hashes gather in the small table and all
// move into the large one in the transaction whose new keys pass a
// multiple of idMergeAt, however many it brings; every id is found
// afterwards, in either table.
func TestIDHashesMerge(t *testing.T) {
	defer SetIDHashingForTest(false, 8)()
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir(), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	coll := benchCollection(t, db)
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	counts := func() (small, large int) {
		t.Helper()
		if err := db.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM stix_id_hashes_new), (SELECT count(*) FROM stix_id_hashes)`).Scan(&small, &large); err != nil {
			t.Fatal(err)
		}
		return small, large
	}
	stored := 0
	for _, step := range []struct{ n, small, large int }{
		{3, 3, 0},   // keys 1-3
		{4, 7, 0},   // 4-7
		{1, 0, 8},   // 8: the mark, all move
		{13, 0, 21}, // 9-21 pass 16: all move, these too
		{2, 2, 21},  // 22-23
		{20, 0, 43}, // 24-43 pass 24, 32 and 40: one merge
		{1, 1, 43},  // 44
	} {
		if _, err := db.Objects().Put(ctx, coll, benchObjects(stored, step.n, added)); err != nil {
			t.Fatal(err)
		}
		stored += step.n
		if small, large := counts(); small != step.small || large != step.large {
			t.Fatalf("after %d ids: %d hashes in the small table, %d in the large; want %d and %d", stored, small, large, step.small, step.large)
		}
	}
	ids := make([]string, stored)
	for i := range ids {
		ids[i] = benchID(i)
	}
	keys := map[string]int64{}
	if err := lookupKeys(ctx, db.handle.r, ids, keys); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if keys[id] != int64(i+1) {
			t.Fatalf("id %d has key %d, want %d", i, keys[id], i+1)
		}
	}
}
