package storetest

import (
	"context"
	"testing"

	"github.com/parley-cti/parley/internal/store"
)

// testCollectionKinds: a collection's kind is stored and read back, by Get
// and List alike; the zero kind stays empty.
func testCollectionKinds(t *testing.T, st store.Store) {
	a := mustParty(t, st, "alpha")
	for _, c := range []store.Collection{
		{ID: "plain", APIRoot: "agreement--k", Title: "plain", CreatedAt: t0},
		{ID: "handed", APIRoot: "agreement--k", Title: "anything at all", CreatedAt: t0, Readers: []string{a.ID}, Kind: store.KindHandover},
	} {
		if err := st.Collections().Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Collections().Get(ctx, "agreement--k", "handed")
	if err != nil || got.Kind != store.KindHandover {
		t.Fatalf("Get handed: kind %q, %v; want %q", got.Kind, err, store.KindHandover)
	}
	list, err := st.Collections().List(ctx, "agreement--k")
	if err != nil || len(list) != 2 || list[0].Kind != "" || list[1].Kind != store.KindHandover {
		t.Fatalf("List = %+v, %v; want kinds \"\" then %q", list, err, store.KindHandover)
	}
}

// CheckKindBackfill checks the migration that gave collections a kind, on
// a database that already held collections: backfill must forget every
// kind and set them again as the migration does. Only what the title rule
// of old found (no agreement, an agreement's API root, titled "Handed over
// to …") becomes a handover collection.
func CheckKindBackfill(t *testing.T, st store.Store, backfill func(context.Context) error) {
	t.Helper()
	a := mustParty(t, st, "alpha")
	cs := []struct {
		c    store.Collection
		kind string
	}{
		{store.Collection{ID: "h", APIRoot: "agreement--1", Title: "Handed over to alpha", Readers: []string{a.ID}}, store.KindHandover},
		{store.Collection{ID: "op", APIRoot: "shared", Title: "Handed over to alpha", Readers: []string{a.ID}}, ""},
		{store.Collection{ID: "contrib", APIRoot: "agreement--1", Title: "Handed over to nobody", Agreement: "agreement--1", Contributor: a.ID}, ""},
		{store.Collection{ID: "other", APIRoot: "agreement--1", Title: "handed over to alpha"}, ""},
	}
	for _, c := range cs {
		c.c.CreatedAt = t0
		if err := st.Collections().Create(ctx, c.c); err != nil {
			t.Fatal(err)
		}
	}
	if err := backfill(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		got, err := st.Collections().Get(ctx, c.c.APIRoot, c.c.ID)
		if err != nil || got.Kind != c.kind {
			t.Errorf("%s after the backfill: kind %q, %v; want %q", c.c.ID, got.Kind, err, c.kind)
		}
	}
}
