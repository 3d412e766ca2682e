package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// TestOwnersBackfill: the migration that records object owners gives an
// operator collection's objects stored before it to the writer whose
// earliest status resource lists them as a success; an id no status names
// so stays unowned.
func TestOwnersBackfill(t *testing.T) {
	ctx := context.Background()
	// The backfill runs on the schema before compact STIX id keys
	// (migration 24), which then carries the owners over.
	dir := t.TempDir()
	db := openAtVersion(t, dir, stixKeysVersion-1)
	defer func() { db.Close() }()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range []string{"alpha", "bravo", "reader"} {
		if err := db.Parties().Create(ctx, store.Party{ID: "party--" + n, Name: n, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Collections().Create(ctx, store.Collection{ID: "c", APIRoot: "shared", Title: "c", CreatedAt: t0,
		Readers: []string{"party--reader"}, Writers: []string{"party--alpha", "party--bravo"}}); err != nil {
		t.Fatal(err)
	}
	obj := func(id string) store.Object {
		return store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: t0, DateAdded: t0, Raw: []byte(`{}`)}
	}
	putBeforeKeys(t, db, "c", []store.Object{obj("indicator--x"), obj("indicator--y"), obj("indicator--z")})
	// bravo re-posted x after alpha; the reader's "status" (it never
	// wrote) and another root's do not count.
	for i, st := range []store.Status{
		{ID: "s1", APIRoot: "shared", PartyID: "party--alpha", RequestTimestamp: t0, Successes: []store.StatusDetail{{ID: "indicator--x"}}},
		{ID: "s2", APIRoot: "shared", PartyID: "party--bravo", RequestTimestamp: t0.Add(time.Hour), Successes: []store.StatusDetail{{ID: "indicator--x"}, {ID: "indicator--y"}}},
		{ID: "s0", APIRoot: "shared", PartyID: "party--reader", RequestTimestamp: t0.Add(-time.Hour), Successes: []store.StatusDetail{{ID: "indicator--y"}}},
		{ID: "s3", APIRoot: "elsewhere", PartyID: "party--alpha", RequestTimestamp: t0.Add(-time.Hour), Successes: []store.StatusDetail{{ID: "indicator--y"}}},
		{ID: "s4", APIRoot: "shared", PartyID: "party--alpha", RequestTimestamp: t0, Failures: []store.StatusDetail{{ID: "indicator--z"}}},
	} {
		st.Status, st.TotalCount = "complete", i
		if err := db.Statuses().Create(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	var mig string
	for _, m := range migrations {
		if strings.Contains(m, "CREATE TABLE object_owners (") {
			mig = m
			break
		}
	}
	if _, err := db.w.ExecContext(ctx, `DROP TABLE object_owners`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, mig); err != nil {
		t.Fatalf("migration: %v", err)
	}
	db.Close()
	db, err := Open(ctx, dir, Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"indicator--x": "party--alpha", "indicator--y": "party--bravo"} {
		if got, err := db.Objects().Owner(ctx, "c", id); err != nil || got != want {
			t.Errorf("owner of %s = %q, %v; want %s", id, got, err, want)
		}
	}
	if got, err := db.Objects().Owner(ctx, "c", "indicator--z"); err == nil {
		t.Errorf("indicator--z, named by no success, is owned by %q", got)
	}
}
