package sqlite_test

import (
	"context"
	"testing"

	"github.com/parley-cti/parley/internal/store/sqlite"
	"github.com/parley-cti/parley/internal/store/storetest"
)

// TestReleasedReadTouchesPage guards issue 18: with 20,000 contributed and
// 10 released, the counterpart's read of its 10 objects walks only the
// index entries up to the reach of the release, not every unreleased
// contribution after them. The old query (no reach) planned an unbounded
// walk over all 20,000.
func TestReleasedReadTouchesPage(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := storetest.SeedReleased(t, db, 20000, 10, 10)
	p, err := db.Objects().Query(ctx, q)
	if err != nil || len(p.Objects) != 10 || p.More {
		t.Fatalf("read = %d objects, more %v, %v; want the 10 released", len(p.Objects), p.More, err)
	}
	plan, entries, err := sqlite.ReadCostForTest(ctx, db, q)
	if err != nil {
		t.Fatal(err)
	}
	if entries > 11 {
		t.Fatalf("the read of 10 released objects walks %d index entries, want at most 11; plan:\n%s", entries, plan)
	}
	t.Logf("plan:\n%s\nentries walked: %d", plan, entries)
}
