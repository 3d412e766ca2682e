package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/store"
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

// BenchmarkReleasedRead is the counterpart's read of its 10 released
// objects (one page of 10) with many more contributed, bounded by the
// release's reach and, for comparison, by the old unbounded query (issue
// 18). PARLEY_BENCH_MILLION=1 adds 1,000,000 contributed (about a minute
// to seed).
func BenchmarkReleasedRead(b *testing.B) {
	sizes := []int{1000, 100000}
	if os.Getenv("PARLEY_BENCH_MILLION") != "" {
		sizes = append(sizes, 1000000)
	}
	ctx := context.Background()
	for _, n := range sizes {
		db, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{Migrate: true})
		if err != nil {
			b.Fatal(err)
		}
		q := storetest.SeedReleased(b, db, n, 10, 10)
		for _, mode := range []string{"reach", "old"} {
			qq := q
			if mode == "old" {
				rb := *q.Released
				rb.Reach = nil
				qq.Released = &rb
			}
			b.Run(fmt.Sprintf("contributed=%d/%s", n, mode), func(b *testing.B) {
				for b.Loop() {
					p, err := db.Objects().Query(ctx, qq)
					if err != nil || len(p.Objects) != 10 || p.More {
						b.Fatalf("read = %d objects, more %v, %v", len(p.Objects), p.More, err)
					}
				}
			})
		}
		db.Close()
	}
}

// TestReachMigration checks migration 13 on a database that already has
// releases: the reach it computes is the one Reach maintains.
func TestReachMigration(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := storetest.SeedReleased(t, db, 3000, 25, 10)
	want := *q.Released.Reach
	if want.Seq == 0 {
		t.Fatal("the seeded release has no reach")
	}
	if err := sqlite.RecomputeReachForTest(ctx, db); err != nil {
		t.Fatal(err)
	}
	got, err := db.Credits().Bound(ctx, q.Released.Agreement, "party--bravo", q.Released.Contributor)
	if err != nil || got.UpTo != 25 || !got.Reach.DateAdded.Equal(want.DateAdded) || got.Reach.Seq != want.Seq {
		t.Fatalf("after the migration: bound %+v reach %+v, %v; want up to 25, reach %+v", got, got.Reach, err, want)
	}
}

// TestKindMigration checks migration 17 on a database that already has
// collections: handover collections get their kind by the old title rule.
func TestKindMigration(t *testing.T) {
	db, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.CheckKindBackfill(t, db, func(ctx context.Context) error { return sqlite.BackfillKindsForTest(ctx, db) })
}

// TestReleasedCheckIsAKeyLookup: the release check of a read by id looks
// the object's credit up by primary key. Planned on the ordinal index
// instead, it walked the whole released prefix for every row (64 ms for
// one object with 100,000 released, found by the intelligence pages).
func TestReleasedCheckIsAKeyLookup(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := storetest.SeedReleased(t, db, 3000, 2000, 10)
	p, err := db.Objects().Query(ctx, q)
	if err != nil || len(p.Objects) != 10 {
		t.Fatalf("page = %d objects, %v", len(p.Objects), err)
	}
	byID := q
	byID.IDs = []string{p.Objects[9].ID}
	got, err := db.Objects().Query(ctx, byID)
	if err != nil || len(got.Objects) != 1 || got.Objects[0].ID != byID.IDs[0] {
		t.Fatalf("read by id = %+v, %v", got.Objects, err)
	}
	for name, qq := range map[string]store.ObjectQuery{"page": q, "by id": byID} {
		plan, _, err := sqlite.ReadCostForTest(ctx, db, qq)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(plan, "agreement_credits_ord") || strings.Contains(plan, "c EXISTS USING PRIMARY KEY") || !strings.Contains(plan, "USING COVERING INDEX agreement_credits_key (ag=? AND key=? AND pa=?)") {
			t.Errorf("%s: the release check does not look the credit up by key; plan:\n%s", name, plan)
		}
	}
}
