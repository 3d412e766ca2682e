package multiinstance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/store/storecopy"
	"github.com/parley-cti/parley/internal/taxii"
	"github.com/parley-cti/parley/internal/tests/e2e"
)

// TestCopySQLiteToPostgres populates a SQLite deployment through the real
// server, copies it into PostgreSQL, serves the copy and checks that
// parties see the same objects, balances and ledger there, that a TAXII
// cursor from the old server continues on the new one, and that the copy's
// ledger verifies.
func TestCopySQLiteToPostgres(t *testing.T) {
	pgURL := pgSchemaURL(t)
	s := e2e.Start(t)
	a, b := s.NewParty(t, "cert-north"), s.NewParty(t, "police-south")
	d := document(t, a, b, nil)
	ag := activate(t, a, b, d)
	aOwn, aTheirs := collections(t, a, ag.ID)
	bOwn, bTheirs := collections(t, b, ag.ID)
	if _, err := a.C.AddObjects(ctx, ag.ID, aOwn, indicators(0, 60)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.C.AddObjects(ctx, ag.ID, bOwn, indicators(1000, 15)); err != nil {
		t.Fatal(err)
	}
	// A second version of an object: the copy must keep both.
	v2 := indicator(3, "2026-02-01T00:00:00.000Z")
	if _, err := a.C.AddObjects(ctx, ag.ID, aOwn, []json.RawMessage{v2}); err != nil {
		t.Fatal(err)
	}
	// An operator collection's object keeps its owner in the copy.
	op, err := s.Srv.Ex.CreateCollection(ctx, "shared notes", "", []string{a.ID, b.ID}, []string{a.ID, b.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.C.AddObjects(ctx, "shared", op.ID, indicators(2000, 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Srv.Parties.AddToken(ctx, a.ID, "spare"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Srv.Checkpointer.SignNow(ctx); err != nil {
		t.Fatal(err)
	}
	// One more entry beyond the checkpoint.
	if _, err := b.C.AddObjects(ctx, ag.ID, bOwn, indicators(1015, 3)); err != nil {
		t.Fatal(err)
	}
	page, err := b.C.GetObjects(ctx, ag.ID, bTheirs, client.Filter{Limit: 4})
	if err != nil || !page.More || page.Next == "" {
		t.Fatalf("first page = %+v, %v", page, err)
	}

	dst, err := postgres.Open(ctx, pgURL, postgres.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	counts, err := storecopy.Copy(ctx, s.Data, dst)
	if err != nil {
		t.Fatal(err)
	}
	if counts["objects"] != 60+15+1+3+1 || counts["agreements"] != 1 || counts["ledger_entries"] == 0 || counts["object_owners"] != 1 {
		t.Fatalf("copied %v", counts)
	}
	var opObj struct{ ID string }
	if err := json.Unmarshal(indicators(2000, 1)[0], &opObj); err != nil {
		t.Fatal(err)
	}
	if owner, err := dst.Objects().Owner(ctx, op.ID, opObj.ID); err != nil || owner != b.ID {
		t.Errorf("owner after the copy = %q, %v; want %s", owner, err, b.ID)
	}
	checked, err := storecopy.Verify(ctx, s.Srv.Store, dst, taxii.CursorKeySetting)
	if err != nil {
		t.Fatal(err)
	}
	if checked.Objects != counts["objects"] || checked.CheckpointSize == 0 || checked.LedgerEntries != counts["ledger_entries"] {
		t.Fatalf("verified %+v after copying %v", checked, counts)
	}
	t.Logf("copied %v; verified %+v", counts, checked)
	if _, err := storecopy.Copy(ctx, s.Data, dst); !errors.Is(err, postgres.ErrNotEmpty) {
		t.Fatalf("second copy into the same database: %v, want ErrNotEmpty", err)
	}

	// Serve the copy; the same tokens work and everything reads the same.
	url2, _ := serveStore(t, dst)
	a2, b2 := clientFor(t, url2, a), clientFor(t, url2, b)
	for _, v := range []struct {
		name     string
		old, new *client.Client
		coll     string
	}{{a.Name, a.C, a2, aOwn}, {a.Name, a.C, a2, aTheirs}, {b.Name, b.C, b2, bOwn}, {b.Name, b.C, b2, bTheirs}} {
		before, after := readAll(t, v.old, ag.ID, v.coll, 7), readAll(t, v.new, ag.ID, v.coll, 11)
		if !slices.Equal(before, after) || len(before) == 0 {
			t.Fatalf("%s reads %d objects of %s before the copy and %d after", v.name, len(before), v.coll, len(after))
		}
		balOld, err1 := v.old.Balance(ctx, ag.ID)
		balNew, err2 := v.new.Balance(ctx, ag.ID)
		if err1 != nil || err2 != nil || fmt.Sprint(*balOld) != fmt.Sprint(*balNew) {
			t.Fatalf("%s's balance %+v (%v) before, %+v (%v) after", v.name, balOld, err1, balNew, err2)
		}
	}
	// The cursor key and the objects' seqs were copied: a next from the
	// old server continues on the new one.
	contOld, err1 := b.C.GetObjects(ctx, ag.ID, bTheirs, client.Filter{Limit: 4, Next: page.Next})
	contNew, err2 := b2.GetObjects(ctx, ag.ID, bTheirs, client.Filter{Limit: 4, Next: page.Next})
	if err1 != nil || err2 != nil || len(contNew.Objects) != 4 || !slices.EqualFunc(contOld.Objects, contNew.Objects, func(x, y json.RawMessage) bool { return bytes.Equal(x, y) }) {
		t.Fatalf("continuing a cursor: old %v, new %v", err1, err2)
	}
	// The copy takes new writes after the copied ones.
	if _, err := b2.AddObjects(ctx, ag.ID, bOwn, indicators(2000, 2)); err != nil {
		t.Fatal(err)
	}
	own := readAll(t, b2, ag.ID, bOwn, 100)
	if len(own) != 15+3+2 || own[len(own)-1] != "indicator--00000000-0000-4000-8000-000000002001" {
		t.Fatalf("after a write on the copy b's collection reads %d objects ending %s", len(own), own[len(own)-1])
	}
	n, err := dst.Ledger().Size(ctx)
	if err != nil || n <= checked.LedgerEntries {
		t.Fatalf("ledger size after one more batch = %d, %v; want more than the %d copied", n, err, checked.LedgerEntries)
	}
	if _, err := dst.Ledger().ReadEntries(ctx, 0, n); err != nil {
		t.Fatalf("the ledger after a write on the copy: %v", err)
	}
}
