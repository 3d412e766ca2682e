package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// ftsSegments counts the segments of object_search's index: FTS5 keeps a
// segment's pages in object_search_data under rowids segid<<37 | height<<31
// | page, and its structure and averages records under small rowids.
func ftsSegments(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.r.QueryRowContext(context.Background(), `SELECT count(DISTINCT id >> 37) FROM object_search_data WHERE id >> 37 > 0`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// searchIDs returns the ids of the latest versions in coll whose indexed
// text has word, sorted.
func searchIDs(t *testing.T, h store.Handle, coll, word string) []string {
	t.Helper()
	page, err := h.Objects().Search(context.Background(), store.SearchQuery{Collection: coll, Text: word, Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range page.Objects {
		ids = append(ids, o.ID)
	}
	sort.Strings(ids)
	return ids
}

func idsOf(objs ...[]store.Object) []string {
	var ids []string
	for _, os := range objs {
		for _, o := range os {
			ids = append(ids, o.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// TestSearchRowsOneSegmentPerTransaction: a transaction's search rows go
// into the index in one statement before COMMIT, so FTS5 writes one
// segment per transaction — not one per 200 rows of a POST, nor one per
// member of a group (each statement savepoint and each member's SAVEPOINT
// made it write one), whose merging had grown to a fifth of ingest's CPU
// at a million objects.
func TestSearchRowsOneSegmentPerTransaction(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	coll := benchCollection(t, db)
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	post := benchObjects(0, 1000, added)
	if _, err := db.Objects().Put(ctx, coll, post); err != nil {
		t.Fatal(err)
	}
	if n := ftsSegments(t, db); n != 1 {
		t.Errorf("a Put of 1,000 objects left %d index segments, want 1", n)
	}
	var fns []func(store.Handle) error
	var members [][]store.Object
	for i := range 6 {
		objs := benchObjects(1000+10*i, 10, added.Add(time.Second))
		members = append(members, objs)
		fns = append(fns, func(tx store.Handle) error {
			_, err := tx.Objects().Put(ctx, coll, objs)
			return err
		})
	}
	errs, _, d := group(t, db, nil, nil, fns...)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
	}
	if d.Transactions != 1 {
		t.Fatalf("6 queued Puts took %d transactions, want 1", d.Transactions)
	}
	if n := ftsSegments(t, db); n != 2 {
		t.Errorf("after a group of 6 Puts the index has %d segments, want 2 (one more)", n)
	}
	if got, want := searchIDs(t, db, coll, "indicator"), idsOf(append(members, post)...); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("search finds %d objects, want all %d stored", len(got), len(want))
	}
}

// TestSearchRowsFollowTheirMembers: the rows waiting for COMMIT are in the
// index before a Search or a Delete inside the transaction needs them;
// a member rolled back takes its rows out and leaves those of the members
// before it, even when a Search during its turn had inserted them.
func TestSearchRowsFollowTheirMembers(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	coll := benchCollection(t, db)
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	a, b, c := benchObjects(0, 3, added), benchObjects(10, 3, added), benchObjects(20, 3, added)
	errB := errors.New("b gives up")
	var seenByB []string
	var deleted int64
	errs, _, _ := group(t, db, nil, nil,
		func(tx store.Handle) error {
			_, err := tx.Objects().Put(ctx, coll, a)
			return err
		},
		func(tx store.Handle) error {
			if _, err := tx.Objects().Put(ctx, coll, b); err != nil {
				return err
			}
			seenByB = searchIDs(t, tx, coll, "indicator")
			return errB
		},
		func(tx store.Handle) error {
			if _, err := tx.Objects().Put(ctx, coll, c); err != nil {
				return err
			}
			if err := tx.(handle).w.QueryRowContext(ctx, `SELECT seq FROM objects WHERE id = ?`, c[0].ID).Scan(&deleted); err != nil {
				return err
			}
			n, err := tx.Objects().Delete(ctx, coll, c[0].ID, store.VersionFilter{All: true}, nil)
			if err == nil && n != 1 {
				err = fmt.Errorf("deleted %d versions, want 1", n)
			}
			return err
		})
	if errs[0] != nil || !errors.Is(errs[1], errB) || errs[2] != nil {
		t.Fatalf("members: %v", errs)
	}
	if want := idsOf(a, b); strings.Join(seenByB, " ") != strings.Join(want, " ") {
		t.Errorf("a Search inside the transaction found %v, want the objects of both members so far %v", seenByB, want)
	}
	if got, want := searchIDs(t, db, coll, "indicator"), idsOf(a, c[1:]); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after commit search finds %v, want %v (a's, and c's but the deleted one)", got, want)
	}
	// Nothing of b, and nothing of the deleted object, is left in the index.
	if _, err := db.w.ExecContext(ctx, `CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_docs USING fts5vocab(main, object_search, instance)`); err != nil {
		t.Fatal(err)
	}
	var docs, stale int
	if err := db.w.QueryRowContext(ctx, `SELECT count(DISTINCT doc), count(DISTINCT doc) FILTER (WHERE doc NOT IN (SELECT seq FROM objects)) FROM temp.search_docs`).Scan(&docs, &stale); err != nil {
		t.Fatal(err)
	}
	if docs != 5 || stale != 0 {
		t.Errorf("the index holds %d documents, %d of them no stored object (deleted seq %d); want 5 and 0", docs, stale, deleted)
	}
}
