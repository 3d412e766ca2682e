package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// searchCount is how many of coll's last versions a search for words finds.
func searchCount(t *testing.T, db *DB, coll, words string) int {
	t.Helper()
	p, err := db.Objects().Search(context.Background(), store.SearchQuery{Collection: coll, Text: words, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(p.Objects)
}

// benchAddr is the address in the pattern of benchObjects' i-th object.
func benchAddr(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff) }

// TestSearchSeesEveryCommittedWrite: the index is filled behind the writer,
// yet a search right after a write finds it, also when the write is larger
// than one pass of the indexer.
func TestSearchSeesEveryCommittedWrite(t *testing.T) {
	ctx := context.Background()
	db := openDefault(t, t.TempDir())
	defer db.Close()
	coll := benchCollection(t, db)
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	n := 2*searchPassObjects + 17
	if _, err := db.Objects().Put(ctx, coll, benchObjects(0, n, added)); err != nil {
		t.Fatal(err)
	}
	last := benchObjects(n-1, 1, added)[0]
	p, err := db.Objects().Search(ctx, store.SearchQuery{Collection: coll, Text: benchAddr(n - 1), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != 1 || p.Objects[0].ID != last.ID {
		t.Fatalf("a search for the last object's address found %d objects, want %s", len(p.Objects), last.ID)
	}
	if got := searchCount(t, db, coll, "bench indicator"); got != 100 {
		t.Fatalf("a search for every object found %d on a page of 100", got)
	}
	for range 3 {
		if _, err := db.Objects().Put(ctx, coll, benchObjects(n, 1, added)); err != nil {
			t.Fatal(err)
		}
		if got := searchCount(t, db, coll, benchAddr(n)); got != 1 {
			t.Fatalf("right after its Put, a search found the object %d times", got)
		}
		n++
	}
}

// TestSearchForgetsDeletedObjects: a deleted object is no longer found, and
// an object that takes the deleted newest object's seq (objects.seq is not
// AUTOINCREMENT) is found by its own words, never by the deleted one's.
func TestSearchForgetsDeletedObjects(t *testing.T) {
	ctx := context.Background()
	db := openDefault(t, t.TempDir())
	defer db.Close()
	coll := benchCollection(t, db)
	v := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	obj := func(id, name string) store.Object {
		return store.Object{ID: id, Type: "malware", SpecVersion: "2.1", Version: v, DateAdded: v,
			Raw: []byte(`{"type":"malware","spec_version":"2.1","id":"` + id + `","name":"` + name + `"}`)}
	}
	a := obj("malware--00000000-0000-4000-8000-00000000000a", "Alphacrypt")
	b := obj("malware--00000000-0000-4000-8000-00000000000b", "Betalocker")
	if _, err := db.Objects().Put(ctx, coll, []store.Object{b, a}); err != nil {
		t.Fatal(err)
	}
	if got := searchCount(t, db, coll, "alphacrypt"); got != 1 {
		t.Fatalf("before the delete, alphacrypt found %d", got)
	}
	var aSeq int64
	if err := db.r.QueryRow(`SELECT max(seq) FROM objects`).Scan(&aSeq); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Objects().Delete(ctx, coll, a.ID, store.VersionFilter{}, nil); err != nil || n != 1 {
		t.Fatalf("delete: %d, %v", n, err)
	}
	if got := searchCount(t, db, coll, "alphacrypt"); got != 0 {
		t.Fatalf("after the delete, alphacrypt found %d", got)
	}
	c := obj("malware--00000000-0000-4000-8000-00000000000c", "Gammaware")
	// Put it twice over: once while the indexer may still hold the
	// deleted entry, once after a search made it catch up.
	for i, o := range []store.Object{c, obj("malware--00000000-0000-4000-8000-00000000000d", "Deltaware")} {
		if _, err := db.Objects().Put(ctx, coll, []store.Object{o}); err != nil {
			t.Fatal(err)
		}
		var seq int64
		if err := db.r.QueryRow(`SELECT seq FROM objects WHERE id = ?`, o.ID).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		if i == 0 && seq != aSeq {
			t.Fatalf("the new object has seq %d, not the deleted one's %d: the case this test is for did not happen", seq, aSeq)
		}
		if i == 0 {
			if n, err := db.Objects().Delete(ctx, coll, o.ID, store.VersionFilter{}, nil); err != nil || n != 1 {
				t.Fatalf("delete: %d, %v", n, err)
			}
		}
	}
	for words, want := range map[string]int{"alphacrypt": 0, "gammaware": 0, "deltaware": 1, "betalocker": 1} {
		if got := searchCount(t, db, coll, words); got != want {
			t.Errorf("%s found %d, want %d", words, got, want)
		}
	}
	var entries int
	if err := db.search.w.QueryRow(`SELECT count(*) FROM object_search WHERE object_search MATCH 'betalocker OR deltaware OR alphacrypt OR gammaware'`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if entries != 2 {
		t.Errorf("the index holds %d entries for the four names, want 2", entries)
	}

	// A deletion below the newest sends the indexer back over objects it
	// had indexed: their entries are replaced, not doubled.
	e := obj("malware--00000000-0000-4000-8000-00000000000e", "Epsilonware")
	if _, err := db.Objects().Put(ctx, coll, []store.Object{e}); err != nil {
		t.Fatal(err)
	}
	if got := searchCount(t, db, coll, "epsilonware"); got != 1 {
		t.Fatalf("epsilonware found %d", got)
	}
	if n, err := db.Objects().Delete(ctx, coll, b.ID, store.VersionFilter{}, nil); err != nil || n != 1 {
		t.Fatalf("delete: %d, %v", n, err)
	}
	if got := searchCount(t, db, coll, "betalocker"); got != 0 {
		t.Fatalf("after its delete, betalocker found %d", got)
	}
	if _, err := db.search.w.Exec(`CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, object_search, instance)`); err != nil {
		t.Fatal(err)
	}
	if err := db.search.w.QueryRow(`SELECT count(*) FROM temp.terms WHERE term IN ('deltaware', 'epsilonware')`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if entries != 2 {
		t.Errorf("after the indexer went back, the index holds %d instances of two objects' names", entries)
	}
}

// TestSearchInsideUpdateRefused: a search by words inside a write
// transaction fails with errSearchInTx instead of missing what the
// transaction wrote.
func TestSearchInsideUpdateRefused(t *testing.T) {
	ctx := context.Background()
	db := openDefault(t, t.TempDir())
	defer db.Close()
	coll := benchCollection(t, db)
	err := db.Update(ctx, func(h store.Handle) error {
		_, err := h.Objects().Search(ctx, store.SearchQuery{Collection: coll, Text: "anything", Limit: 1})
		return err
	})
	if !errors.Is(err, errSearchInTx) {
		t.Fatalf("a search inside Update returned %v, want errSearchInTx", err)
	}
	// Without words or facets it reads objects alone, as before.
	if err := db.Update(ctx, func(h store.Handle) error {
		_, err := h.Objects().Search(ctx, store.SearchQuery{Collection: coll, Limit: 1})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSearchIndexGathersCommits: a commit wakes the indexer, which lets
// further commits gather before its pass unless a search waits; a search
// hurries it and is never answered from behind the writes before it.
func TestSearchIndexGathersCommits(t *testing.T) {
	defer func(old time.Duration) { searchGather = old }(searchGather)
	ctx := context.Background()
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(db *DB) int64 {
		db.search.mu.Lock()
		defer db.search.mu.Unlock()
		return db.search.at.seq
	}
	newest := func(db *DB) int64 {
		var seq int64
		if err := db.w.QueryRowContext(ctx, `SELECT max(seq) FROM objects`).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return seq
	}

	// Gathering longer than the test: only a search makes a pass.
	searchGather = time.Hour
	db := openDefault(t, t.TempDir())
	coll := benchCollection(t, db)
	for i := range 5 {
		if _, err := db.Objects().Put(ctx, coll, benchObjects(i, 1, added)); err != nil {
			t.Fatal(err)
		}
	}
	if got := at(db); got != 0 {
		t.Fatalf("five commits and no search: the index took in up to seq %d; it should still be gathering", got)
	}
	if got := searchCount(t, db, coll, benchAddr(4)); got != 1 {
		t.Fatalf("a search for the last commit's object found %d, want 1", got)
	}
	if got, want := at(db), newest(db); got != want {
		t.Fatalf("after the search the index is at seq %d, want %d", got, want)
	}
	if _, err := db.Objects().Put(ctx, coll, benchObjects(5, 1, added)); err != nil {
		t.Fatal(err)
	}
	if got := searchCount(t, db, coll, benchAddr(5)); got != 1 {
		t.Fatalf("a search right after one more commit found %d, want 1", got)
	}
	// Close does not wait for the gathering time.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// With a short gathering time, commits are taken in without a search.
	searchGather = time.Millisecond
	db = openDefault(t, t.TempDir())
	defer db.Close()
	coll = benchCollection(t, db)
	if _, err := db.Objects().Put(ctx, coll, benchObjects(0, 3, added)); err != nil {
		t.Fatal(err)
	}
	want := newest(db)
	for deadline := time.Now().Add(time.Minute); at(db) != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a minute after the commit, with no search, the index is at seq %d, want %d", at(db), want)
		}
	}
}
