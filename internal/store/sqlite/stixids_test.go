package sqlite

import (
	"context"
	"maps"
	"math"
	"slices"
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

// TestIDHashesMerge: with the hash space in one part, new ids' hashes
// gather in the small table and all move into the large one in the
// transaction whose new keys pass a multiple of idMergeAt, however many
// it brings; every id is found afterwards, in either table.
func TestIDHashesMerge(t *testing.T) {
	defer SetIDHashingForTest(false, 8)()
	defer SetIDMergeSlicesForTest(1)()
	ctx := context.Background()
	db, coll := openForMerges(t)
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
	checkKeysInOrder(t, db, stored)
}

// TestIDSlices: the parts of the hash space are contiguous, in SQLite's
// signed order, and cover it.
func TestIDSlices(t *testing.T) {
	for _, n := range []int{1, 2, 4, 16} {
		lo, _ := idSlice(0, n)
		_, hi := idSlice(n-1, n)
		if lo != math.MinInt64 || hi != math.MaxInt64 {
			t.Errorf("%d parts: from %d to %d, want the whole int64 range", n, lo, hi)
		}
		for i := 0; i+1 < n; i++ {
			_, h := idSlice(i, n)
			l, _ := idSlice(i+1, n)
			if h+1 != l {
				t.Errorf("%d parts: part %d ends at %d, part %d starts at %d", n, i, h, i+1, l)
			}
		}
	}
}

// TestIDHashesMergeInSlices: with the hash space in 4 parts and a merge
// every 8 keys, each transaction whose new keys pass a multiple of 2
// moves the small table's entries of the next part (all of them when it
// passes 4 multiples), and no others; the small table holds exactly what
// a model of that rule says, every entry moves within 8 keys and the
// transaction's own, and every id is found afterwards.
func TestIDHashesMergeInSlices(t *testing.T) {
	defer SetIDHashingForTest(false, 8)()
	defer SetIDMergeSlicesForTest(4)()
	ctx := context.Background()
	db, coll := openForMerges(t)
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	// The model: the part of a key's id (the top two bits of its hash,
	// unsigned order), and the keys it says are in the small table.
	part := func(key int64) int { return int((uint64(idHash(benchID(int(key-1)))) + 1<<63) >> 62) }
	small := map[int64]bool{}
	stored, moves := 0, 0
	for _, n := range []int{1, 1, 1, 3, 2, 5, 1, 7, 9, 2, 1, 1, 1, 1, 12, 3, 1, 1, 2, 6} {
		if _, err := db.Objects().Put(ctx, coll, benchObjects(stored, n, added)); err != nil {
			t.Fatal(err)
		}
		lo, hi := int64(stored+1), int64(stored+n)
		stored += n
		for k := lo; k <= hi; k++ {
			small[k] = true
		}
		due := map[int]bool{}
		if passed := hi/2 - (lo-1)/2; passed >= 4 {
			due = map[int]bool{0: true, 1: true, 2: true, 3: true}
		} else {
			for j := (lo-1)/2 + 1; j <= hi/2; j++ {
				due[int(j%4)] = true
			}
		}
		for k := range small {
			if due[part(k)] {
				delete(small, k)
				moves++
			}
		}
		rows, err := db.r.QueryContext(ctx, `SELECT key FROM stix_id_hashes_new`)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]bool{}
		for rows.Next() {
			var k int64
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			got[k] = true
		}
		rows.Close()
		if !maps.Equal(got, small) {
			t.Fatalf("after keys %d to %d the small table holds keys %v, want %v", lo, hi, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(small)))
		}
		for k := range got {
			if k <= hi-7 {
				t.Fatalf("after keys %d to %d key %d is still in the small table", lo, hi, k)
			}
		}
		var large int
		if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM stix_id_hashes`).Scan(&large); err != nil {
			t.Fatal(err)
		}
		if large+len(got) != stored {
			t.Fatalf("after %d ids: %d hashes in the large table and %d in the small", stored, large, len(got))
		}
	}
	if moves == 0 || len(small) == 0 {
		t.Fatalf("the sequence moved %d entries and left %d: it tests nothing", moves, len(small))
	}
	checkKeysInOrder(t, db, stored)
}

// openForMerges opens a new store for the merge tests and adds a
// collection to it.
func openForMerges(t *testing.T) (*DB, string) {
	t.Helper()
	db, err := Open(context.Background(), t.TempDir(), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, benchCollection(t, db)
}

// checkKeysInOrder checks that the first stored of benchID's ids are
// found, in either hash table, with keys 1 to stored in order.
func checkKeysInOrder(t *testing.T, db *DB, stored int) {
	t.Helper()
	ids := make([]string, stored)
	for i := range ids {
		ids[i] = benchID(i)
	}
	keys := map[string]int64{}
	if err := lookupKeys(context.Background(), db.handle.r, ids, keys); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if keys[id] != int64(i+1) {
			t.Fatalf("id %d has key %d, want %d", i, keys[id], i+1)
		}
	}
}
