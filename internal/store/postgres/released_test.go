package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/store/storetest"
)

// TestReleasedReadTouchesPage guards issue 18: with 20,000 contributed and
// 5,000 released, the counterpart's read of the last 10 released objects
// touches (by EXPLAIN ANALYZE, rows of objects and credits read, kept or
// filtered out) about those 10 and their credits. The old query, with
// fresh statistics, either walked the 15,000 unreleased contributions
// after the cursor or joined all 5,000 released credits and sorted them.
func TestReleasedReadTouchesPage(t *testing.T) {
	db := open(t, freshSchema(t), postgres.Options{Migrate: true})
	ctx := context.Background()
	q := storetest.SeedReleased(t, db, 20000, 5000, 4990)
	if err := postgres.AnalyzeForTest(ctx, db); err != nil {
		t.Fatal(err)
	}
	p, err := db.Objects().Query(ctx, q)
	if err != nil || len(p.Objects) != 4990 || !p.More {
		t.Fatalf("read = %d objects, more %v, %v; want 4,990 of the 5,000 released", len(p.Objects), p.More, err)
	}
	last := p.Objects[len(p.Objects)-1]
	q.After, q.Limit = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}, 10
	if p, err = db.Objects().Query(ctx, q); err != nil || len(p.Objects) != 10 || p.More {
		t.Fatalf("last page = %d objects, more %v, %v; want the last 10 released", len(p.Objects), p.More, err)
	}
	plan, touched, err := postgres.ReadCostForTest(ctx, db, q)
	if err != nil {
		t.Fatal(err)
	}
	if touched < 10 || touched > 40 {
		t.Fatalf("the read of 10 released objects touched %d table rows, want 10 to 40; plan:\n%s", touched, plan)
	}
	t.Logf("rows touched: %d", touched)
}

// BenchmarkReleasedRead is the counterpart's read of the last 10 of 5,000
// released objects, with many more contributed, bounded by the release's
// reach and, for comparison, by the old unbounded query (issue 18), after
// ANALYZE (as autovacuum leaves it). With statistics PostgreSQL reads the
// first page of a small release through the credits' ordinal index, so the
// last page of a larger release is the case the reach is for.
func BenchmarkReleasedRead(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10000, 100000} {
		db := open(b, freshSchema(b), postgres.Options{Migrate: true})
		q := storetest.SeedReleased(b, db, n, 5000, 4990)
		if err := postgres.AnalyzeForTest(ctx, db); err != nil {
			b.Fatal(err)
		}
		p, err := db.Objects().Query(ctx, q)
		if err != nil || len(p.Objects) != 4990 {
			b.Fatalf("read = %d objects, %v", len(p.Objects), err)
		}
		last := p.Objects[len(p.Objects)-1]
		q.After, q.Limit = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}, 10
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
	}
}

// TestKindMigration checks the migration "collection kinds" on a database
// that already has collections: handover collections get their kind by the
// old title rule.
func TestKindMigration(t *testing.T) {
	db := open(t, freshSchema(t), postgres.Options{Migrate: true})
	storetest.CheckKindBackfill(t, db, func(ctx context.Context) error { return postgres.BackfillKindsForTest(ctx, db) })
}

// TestReachMigration checks migration 13 on a database that already has
// releases: the reach it computes is the one Reach maintains.
func TestReachMigration(t *testing.T) {
	db := open(t, freshSchema(t), postgres.Options{Migrate: true})
	ctx := context.Background()
	q := storetest.SeedReleased(t, db, 3000, 25, 10)
	want := *q.Released.Reach
	if want.Seq == 0 {
		t.Fatal("the seeded release has no reach")
	}
	if err := postgres.RecomputeReachForTest(ctx, db); err != nil {
		t.Fatal(err)
	}
	got, err := db.Credits().Bound(ctx, q.Released.Agreement, "party--bravo", q.Released.Contributor)
	if err != nil || got.UpTo != 25 || !got.Reach.DateAdded.Equal(want.DateAdded) || got.Reach.Seq != want.Seq {
		t.Fatalf("after the migration: bound %+v reach %+v, %v; want up to 25, reach %+v", got, got.Reach, err, want)
	}
}
