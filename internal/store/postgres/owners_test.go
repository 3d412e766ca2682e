package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/postgres"
)

// TestOwnersBackfill: the migration that records object owners gives an
// operator collection's objects stored before it to the writer whose
// earliest status resource lists them as a success; an id no status names
// so stays unowned. (The SQLite backend has the same test.)
func TestOwnersBackfill(t *testing.T) {
	ctx := context.Background()
	u := freshSchema(t)
	db := open(t, u, postgres.Options{Migrate: true})
	defer db.Close()
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
	if _, err := db.Objects().Put(ctx, "c", []store.Object{obj("indicator--x"), obj("indicator--y"), obj("indicator--z")}); err != nil {
		t.Fatal(err)
	}
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
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	mig := postgres.MigrationForTest("object owners")
	if mig == "" {
		t.Fatal("no object owners migration")
	}
	if _, err := conn.Exec(ctx, `DROP TABLE object_owners`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, mig); err != nil {
		t.Fatalf("migration: %v", err)
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
