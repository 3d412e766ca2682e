package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// TestIDSetHoldsEveryID: the growing Bloom filter answers "may hold" for
// every id entered, across its parts, and "does not hold" for nearly every
// other.
func TestIDSetHoldsEveryID(t *testing.T) {
	s := &idSet{parts: []*bloom{newBloom(1000)}} // grows 1,000, 2,000, 4,000 …
	const n = 200_000
	for i := range n {
		s.add(uint64(idHash(benchID(i))))
	}
	if len(s.parts) < 5 {
		t.Fatalf("%d ids in %d parts, want the filter to have grown", n, len(s.parts))
	}
	for i := range n {
		if !s.has(uint64(idHash(benchID(i)))) {
			t.Fatalf("id %d was entered but the filter does not hold it", i)
		}
	}
	false_ := 0
	for i := n; i < 2*n; i++ {
		if s.has(uint64(idHash(benchID(i)))) {
			false_++
		}
	}
	// ~0.1 % a part when full, and a lookup asks every part (8 here).
	if rate := float64(false_) / n; rate > 0.01 {
		t.Errorf("%d of %d ids never entered may be held (%.2f %%)", false_, n, 100*rate)
	}
}

// filterTest opens a store whose id filter is built at its first use,
// before that use returns.
func filterTest(t *testing.T) (*DB, string) {
	t.Helper()
	idFilterSync = true
	t.Cleanup(func() { idFilterSync = false })
	db := openGroupTest(t)
	return db, benchCollection(t, db)
}

func putIn(t *testing.T, db *DB, coll string, objs []store.Object) {
	t.Helper()
	err := db.Update(context.Background(), func(tx store.Handle) error {
		_, err := tx.Objects().Put(context.Background(), coll, objs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// keysOf returns how many keys id has in stix_ids.
func keysOf(t *testing.T, db *DB, id string) int {
	t.Helper()
	var n int
	if err := db.r.QueryRowContext(context.Background(), `SELECT count(*) FROM stix_ids WHERE id = ?`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIDFilterSkipsLookupsOfNewIDs: once the filter is built, new ids are
// given keys without a lookup, and ids stored before (in this transaction
// or an earlier one) are still looked up and keep their key.
func TestIDFilterSkipsLookupsOfNewIDs(t *testing.T) {
	db, coll := filterTest(t)
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	putIn(t, db, coll, benchObjects(0, 50, added)) // builds the filter; this turn looks up
	before := lookupsForTest.Load()
	putIn(t, db, coll, benchObjects(50, 200, added))
	if n := lookupsForTest.Load() - before; n != 0 {
		t.Errorf("200 new ids: %d looked up, want none", n)
	}
	// The same ids again (new versions): all of them are looked up.
	again := benchObjects(0, 250, added)
	for i := range again {
		again[i].Version = again[i].Version.Add(time.Hour)
		again[i].Raw = []byte(fmt.Sprintf(`{"type":"indicator","id":%q}`, again[i].ID))
	}
	before = lookupsForTest.Load()
	putIn(t, db, coll, again)
	if n := lookupsForTest.Load() - before; n != 250 {
		t.Errorf("250 stored ids: %d looked up, want 250", n)
	}
	for _, i := range []int{0, 49, 50, 249} {
		if n := keysOf(t, db, benchID(i)); n != 1 {
			t.Errorf("id %d has %d keys, want 1", i, n)
		}
	}
	// In one group: the second member stores an id the first gave a key
	// in the same, uncommitted, transaction.
	errs, _, _ := group(t, db, nil, nil,
		func(tx store.Handle) error {
			_, err := tx.Objects().Put(context.Background(), coll, benchObjects(1000, 1, added))
			return err
		},
		func(tx store.Handle) error {
			o := benchObjects(1000, 1, added)
			o[0].Version = o[0].Version.Add(time.Hour)
			_, err := tx.Objects().Put(context.Background(), coll, o)
			return err
		})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
	}
	if n := keysOf(t, db, benchID(1000)); n != 1 {
		t.Errorf("an id given a key by one member and stored by the next: %d keys, want 1", n)
	}
}

// enterByHand gives id a key and enters its hash as another process (or a
// statement that is not createKeys) would, on q.
func enterByHand(ctx context.Context, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, id string) error {
	res, err := q.ExecContext(ctx, `INSERT INTO stix_ids(id) VALUES (?)`, id)
	if err != nil {
		return err
	}
	k, err := res.LastInsertId()
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO stix_id_hashes_new(h, key) VALUES (?, ?)`, idHash(id), k)
	return err
}

// TestIDFilterSeesOtherWriters: an id given its key by another connection
// (another process) after the filter was built is found, not given a
// second key.
func TestIDFilterSeesOtherWriters(t *testing.T) {
	db, coll := filterTest(t)
	ctx := context.Background()
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	putIn(t, db, coll, benchObjects(0, 10, added))
	putIn(t, db, coll, benchObjects(10, 10, added)) // the filter in use, known moved
	other, err := sql.Open(DriverName, dsn(db.path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := enterByHand(ctx, other, benchID(500)); err != nil {
		t.Fatal(err)
	}
	putIn(t, db, coll, benchObjects(500, 1, added))
	if n := keysOf(t, db, benchID(500)); n != 1 {
		t.Errorf("an id another process stored: %d keys after the server stored it, want 1", n)
	}
}

// TestIDFilterAfterAnUndoneTurn: when a member's turn is undone, the keys
// it was given may go to other ids in the same transaction; the filter
// does not take the transaction's keys as all its own, so an id that got
// such a key by hand is found afterwards.
func TestIDFilterAfterAnUndoneTurn(t *testing.T) {
	db, coll := filterTest(t)
	ctx := context.Background()
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	putIn(t, db, coll, benchObjects(0, 10, added))
	putIn(t, db, coll, benchObjects(10, 10, added))
	failed := errors.New("the first member fails")
	errs, _, d := group(t, db, nil, nil,
		func(tx store.Handle) error {
			if _, err := tx.Objects().Put(ctx, coll, benchObjects(600, 1, added)); err != nil {
				return err
			}
			return failed // undone: its key 21 is free again
		},
		func(tx store.Handle) error { return enterByHand(ctx, tx.(handle).w.(memberQuerier), benchID(700)) }, // takes key 21
	)
	if d.Transactions != 1 || !errors.Is(errs[0], failed) || errs[1] != nil {
		t.Fatalf("group: %v in %d transactions, want the first member's failure alone, in one", errs, d.Transactions)
	}
	putIn(t, db, coll, benchObjects(700, 1, added))
	if n := keysOf(t, db, benchID(700)); n != 1 {
		t.Errorf("an id given, by hand, a key freed by an undone turn: %d keys, want 1", n)
	}
	putIn(t, db, coll, benchObjects(600, 1, added))
	if n := keysOf(t, db, benchID(600)); n != 1 {
		t.Errorf("the undone member's id stored afterwards: %d keys, want 1", n)
	}
}
