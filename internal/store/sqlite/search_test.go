package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// TestSearchMigration checks migration 14 on a database that already
// holds objects: what it indexes is what the triggers index.
func TestSearchMigration(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
	if err := sqlite.ClearSearchForTest(ctx, db); err != nil {
		t.Fatal(err)
	}
	for i, n := range run() {
		if n != 0 {
			t.Fatalf("with the index emptied, query %+v found %d", queries[i], n)
		}
	}
	if err := sqlite.FillSearchForTest(ctx, db); err != nil {
		t.Fatal(err)
	}
	for i, n := range run() {
		if n != before[i] {
			t.Errorf("after migration 14's fill, query %+v found %d, want %d", queries[i], n, before[i])
		}
	}
}
