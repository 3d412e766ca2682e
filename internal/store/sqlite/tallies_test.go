package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// TestMarksKeyedByOrdinalMigration checks the migrations that key
// credit_marks by ordinal (22) and then move the marks into the credit
// rows (34) on a database that has marks: every tally reads the same
// after them, a credit contributed without a type still has no mark, and
// a later version's mark still replaces the one stored.
func TestMarksKeyedByOrdinalMigration(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	var pids []string
	for _, name := range []string{"alpha", "bravo"} {
		p := store.Party{ID: "party--" + name, Name: name, CreatedAt: t0}
		if err := db.Parties().Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, p.ID)
	}
	ag := "agreement--marks"
	if err := db.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: pids[0], PartyB: pids[1], CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	types := []string{"indicator", "malware", "tool"}
	var items []store.Contribution
	for i := range 2500 {
		items = append(items, store.Contribution{ObjectID: fmt.Sprintf("%s--%08d-0000-4000-8000-000000000000", types[i%3], i), Weight: 1,
			Type: types[i%3], TLP: i%5 - 1, Version: t0})
	}
	// Ordinals 2501 and 2502: credits without a mark.
	for i := range 2 {
		items = append(items, store.Contribution{ObjectID: fmt.Sprintf("tool--%08d-0000-4000-8000-000000000001", i), Weight: 1})
	}
	if err := db.Update(ctx, func(tx store.Handle) error {
		_, err := tx.Credits().Contribute(ctx, ag, pids[0], items, t0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ups := []int64{1, 1023, 1024, 2047, 2048, 2500, 2502}
	tallies := func() string {
		var s string
		for _, up := range ups {
			got, err := db.Credits().Tally(ctx, ag, pids[0], up)
			if err != nil {
				t.Fatal(err)
			}
			s += fmt.Sprint(got)
		}
		return s
	}
	before := tallies()
	if err := sqlite.UnkeyMarksForTest(ctx, db); err != nil {
		t.Fatal(err)
	}
	if after := tallies(); after != before {
		t.Fatalf("tallies after the migration:\n%s\nbefore:\n%s", after, before)
	}
	// Object 7 (ordinal 8, malware at TLP level 1) becomes an indicator
	// at level 3 in a later version; an older version of object 8 (a tool
	// at level 2) changes nothing.
	if err := db.Update(ctx, func(tx store.Handle) error {
		return tx.Credits().Mark(ctx, ag, pids[0], []store.Mark{
			{ObjectID: items[7].ObjectID, Type: "indicator", TLP: 3, Version: t0.Add(time.Hour)},
			{ObjectID: items[8].ObjectID, Type: "indicator", TLP: 3, Version: t0.Add(-time.Hour)}})
	}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Credits().Tally(ctx, ag, pids[0], 9)
	if err != nil {
		t.Fatal(err)
	}
	want := "[{indicator -1 1} {indicator 0 1} {indicator 2 1} {indicator 3 1} {malware 0 1} {malware 3 1} {tool -1 1} {tool 1 1} {tool 2 1}]"
	if fmt.Sprint(got) != want {
		t.Fatalf("Tally up to 9 = %v, want %s", got, want)
	}
	// The credit at ordinal 2501 had no mark: marking it counts it once.
	upTo2500, err := db.Credits().Tally(ctx, ag, pids[0], 2500)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx store.Handle) error {
		return tx.Credits().Mark(ctx, ag, pids[0], []store.Mark{{ObjectID: items[2500].ObjectID, Type: "tool", TLP: 0, Version: t0}})
	}); err != nil {
		t.Fatal(err)
	}
	got, err = db.Credits().Tally(ctx, ag, pids[0], 2502)
	if err != nil {
		t.Fatal(err)
	}
	want2502 := append([]store.Tally{}, upTo2500...)
	want2502 = append(want2502, store.Tally{Type: "tool", TLP: 0, N: 1})
	if fmt.Sprint(got) != fmt.Sprint(store.SumTallies(want2502)) {
		t.Fatalf("Tally up to 2502 after marking ordinal 2501 = %v, want %v", got, store.SumTallies(want2502))
	}
}
