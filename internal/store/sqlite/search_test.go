package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// TestSearchIndexRebuilt: the search index is derived data; with its file
// gone (or another database's in its place) the next Open builds it again
// from the objects, and every search finds what it found before.
func TestSearchIndexRebuilt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	if err := db.Collections().Create(ctx, store.Collection{ID: "c", APIRoot: "r", Title: "c", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	v := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.Objects().Put(ctx, "c", []store.Object{
		{ID: "malware--1", Type: "malware", SpecVersion: "2.1", Version: v, DateAdded: v,
			Raw: []byte(`{"id":"malware--1","name":"Emotet","labels":["botnet"],"object_marking_refs":["marking-definition--x"]}`)},
		{ID: "relationship--2", Type: "relationship", SpecVersion: "2.1", Version: v, DateAdded: v.Add(time.Second),
			Raw: []byte(`{"id":"relationship--2","source_ref":"malware--1","target_ref":"tool--3"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	queries := []store.SearchQuery{{Text: "emotet"}, {Labels: []string{"botnet"}}, {Markings: []string{"marking-definition--x"}},
		{Refs: []string{"tool--3"}}, {Types: []string{"relationship"}, Refs: []string{"malware--1"}}}
	run := func() []int {
		var n []int
		for _, q := range queries {
			q.Collection, q.Limit = "c", 10
			p, err := db.Objects().Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			n = append(n, len(p.Objects))
		}
		return n
	}
	before := run()
	for i, n := range before {
		if n != 1 {
			t.Fatalf("query %+v found %d, want 1", queries[i], n)
		}
	}
	reopen := func() {
		t.Helper()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if db, err = sqlite.Open(ctx, dir, sqlite.Options{Migrate: true}); err != nil {
			t.Fatal(err)
		}
	}
	// The file removed.
	db.Close()
	sqlite.RemoveSearchFilesForTest(t, dir)
	if db, err = sqlite.Open(ctx, dir, sqlite.Options{Migrate: true}); err != nil {
		t.Fatal(err)
	}
	if got := run(); !slices.Equal(got, before) {
		t.Errorf("after the index file was removed, the queries found %v, want %v", got, before)
	}
	// Another database's index in its place: refused, built again.
	other := t.TempDir()
	odb, err := sqlite.Open(ctx, other, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	odb.Close()
	db.Close()
	raw, err := os.ReadFile(filepath.Join(other, sqlite.SearchFileName))
	if err != nil {
		t.Fatal(err)
	}
	sqlite.RemoveSearchFilesForTest(t, dir)
	if err := os.WriteFile(filepath.Join(dir, sqlite.SearchFileName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err = sqlite.Open(ctx, dir, sqlite.Options{Migrate: true}); err != nil {
		t.Fatal(err)
	}
	if got := run(); !slices.Equal(got, before) {
		t.Errorf("with another database's index in place, the queries found %v, want %v", got, before)
	}
	reopen()
	if got := run(); !slices.Equal(got, before) {
		t.Errorf("after a plain reopen, the queries found %v, want %v", got, before)
	}
	// A file that is not a database at all.
	db.Close()
	sqlite.RemoveSearchFilesForTest(t, dir)
	if err := os.WriteFile(filepath.Join(dir, sqlite.SearchFileName), bytes.Repeat([]byte("not sqlite "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err = sqlite.Open(ctx, dir, sqlite.Options{Migrate: true}); err != nil {
		t.Fatal(err)
	}
	if got := run(); !slices.Equal(got, before) {
		t.Errorf("with a damaged index file in place, the queries found %v, want %v", got, before)
	}
}

// TestSearchIndexAheadOfRestoredDatabase: a search index copied in beside an
// older copy of its database (a backup restored by hand) holds entries for
// seqs the database will give to other objects; it is rebuilt, so no search
// finds an object by another object's words.
func TestSearchIndexAheadOfRestoredDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Collections().Create(ctx, store.Collection{ID: "c", APIRoot: "r", Title: "c", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	v := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	put := func(db *sqlite.DB, n int, name string) {
		t.Helper()
		id := fmt.Sprintf("malware--00000000-0000-4000-8000-%012d", n)
		if _, err := db.Objects().Put(ctx, "c", []store.Object{{ID: id, Type: "malware", SpecVersion: "2.1", Version: v, DateAdded: v,
			Raw: []byte(`{"type":"malware","id":"` + id + `","name":"` + name + `"}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(db *sqlite.DB, words string) int {
		t.Helper()
		p, err := db.Objects().Search(ctx, store.SearchQuery{Collection: "c", Text: words, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Objects)
	}
	put(db, 1, "Oldware")
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := db.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	put(db, 2, "Laterware")
	if count(db, "laterware") != 1 {
		t.Fatal("laterware not found before the restore")
	}
	db.Close()
	restored := t.TempDir()
	if err := sqlite.Restore(ctx, backup, restored); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, sqlite.SearchFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restored, sqlite.SearchFileName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err = sqlite.Open(ctx, restored, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	put(db, 3, "Newware") // takes the seq Laterware had
	for words, want := range map[string]int{"oldware": 1, "laterware": 0, "newware": 1} {
		if got := count(db, words); got != want {
			t.Errorf("after the restore, %s found %d, want %d", words, got, want)
		}
	}
}
