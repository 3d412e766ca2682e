package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/storetest"
)

// TestFingerprintsKnownFromCreditRows: migration 40 drops the tables that
// filed the credits' fingerprints by value (37); a content credited before
// is still known, and one not released is not, to the writer's sets in the
// store that credited it, in a store opened afterwards (its sets empty,
// read from the credit rows) and in a store whose writer keeps no sets
// (each Contribute reads its own).
func TestFingerprintsKnownFromCreditRows(t *testing.T) {
	ctx := context.Background()
	ag := "agreement--fps"
	db, alpha, bravo, t0 := agreementDB(t, ag)
	var tables int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name IN ('credit_fps', 'credit_fps_new')`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("the fingerprint tables of migration 37: %d left (%v), want none", tables, err)
	}
	give := storetest.GiveContents(t, db, ag, t0)
	if got := give(alpha, 1, 2, 3); got != "[]" {
		t.Fatalf("new contents known: %s", got)
	}
	if got := give(alpha, 1, 4); got != "[1]" {
		t.Fatalf("alpha giving 1 again and a new 4: known %s, want [1]", got)
	}
	if got := give(bravo, 1, 5); got != "[]" {
		t.Fatalf("bravo giving alpha's unreleased 1 and a new 5: known %s, want none", got)
	}
	// Released to bravo: alpha's ordinals 1 and 2 (contents 1 and 2).
	if err := db.Credits().SetReleased(ctx, ag, bravo, 2); err != nil {
		t.Fatal(err)
	}
	if got := give(bravo, 2, 3, 5); got != "[2 5]" {
		t.Fatalf("bravo giving alpha's released 2, unreleased 3 and its own 5: known %s, want [2 5]", got)
	}
	// What each party knows now: alpha 1-4, bravo 1-3 and 5 (its own
	// 1, 3, 5 and alpha's released 1, 2); alpha's 4 is not released.
	// Each content is given in a transaction that does not commit, so
	// that the next store finds the same; a credit undone is taken back
	// from the set too, or the second content 5 would be known.
	undo := errors.New("undone")
	check := func(name string, s *DB, n int) {
		t.Helper()
		for _, c := range []struct {
			party   string
			content int
			known   bool
		}{{alpha, 4, true}, {alpha, 5, false}, {alpha, 5, false}, {bravo, 2, true}, {bravo, 4, false}, {bravo, 5, true}} {
			n++
			err := s.Update(ctx, func(tx store.Handle) error {
				if err := giveIn(tx, ag, c.party, n, c.content, t0); err != nil {
					return err
				}
				return undo
			})
			if want := map[bool]error{true: errSameContent, false: undo}[c.known]; !errors.Is(err, want) {
				t.Errorf("%s: %s giving content %d: %v, want %v", name, c.party, c.content, err, want)
			}
		}
	}
	check("the store that credited them", db, 1000)
	other, err := Open(ctx, filepath.Dir(db.path), Options{})
	if err != nil {
		t.Fatal(err)
	}
	check("a store opened afterwards", other, 2000)
	other.Close()
	bare, err := Open(ctx, filepath.Dir(db.path), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	bare.commit.ids.close()
	bare.commit.ids = nil
	check("a store whose writer keeps no sets", bare, 3000)
}

// TestFingerprintsTakenBackWithTheirRelease: a transaction that raises a
// release and then reads the newly released credits' fingerprints into
// the party's set, and does not commit, takes them back: the content stays
// unknown to the party, which may still be credited for it.
func TestFingerprintsTakenBackWithTheirRelease(t *testing.T) {
	ctx := context.Background()
	ag := "agreement--fprelease"
	db, alpha, bravo, t0 := agreementDB(t, ag)
	give := storetest.GiveContents(t, db, ag, t0)
	if got := give(alpha, 1, 2); got != "[]" {
		t.Fatalf("new contents known: %s", got)
	}
	if got := give(bravo, 9); got != "[]" { // bravo's set is made, knowing 9
		t.Fatalf("new content known: %s", got)
	}
	failed := errors.New("failed after the release")
	if err := db.Update(ctx, func(tx store.Handle) error {
		if err := tx.Credits().SetReleased(ctx, ag, bravo, 2); err != nil {
			return err
		}
		if err := giveIn(tx, ag, bravo, 100, 1, t0); !errors.Is(err, errSameContent) {
			return fmt.Errorf("bravo giving alpha's 1 within the release: %v, want it known", err)
		}
		return failed
	}); !errors.Is(err, failed) {
		t.Fatalf("update: %v", err)
	}
	if got := give(bravo, 2, 9); got != "[9]" {
		t.Fatalf("bravo giving alpha's 2 after the release was undone, and its own 9: known %s, want [9]", got)
	}
}

// TestFingerprintSet: fpSet answers as a map does through adds, merges
// into its sorted part and removals from either part.
func TestFingerprintSet(t *testing.T) {
	defer func(n int) { fpRecentMin = n }(fpRecentMin)
	fpRecentMin = 4
	var s fpSet
	ref := map[uint64]bool{}
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var added []uint64
		for range r.IntN(40) {
			fp := r.Uint64N(500) // repeats on purpose
			if got := s.add(fp); got == ref[fp] {
				t.Fatalf("round %d: add(%d) = %v with %d in the set: %v", round, fp, got, fp, ref[fp])
			}
			if !ref[fp] {
				added = append(added, fp)
			}
			ref[fp] = true
		}
		if round%3 == 0 { // take back some of this round's
			n := r.IntN(len(added) + 1)
			s.remove(added[:n])
			for _, fp := range added[:n] {
				delete(ref, fp)
			}
		}
		for fp := range uint64(500) {
			if s.has(fp) != ref[fp] {
				t.Fatalf("round %d: has(%d) = %v, want %v", round, fp, s.has(fp), ref[fp])
			}
		}
		if !slices.IsSorted(s.sorted) || len(s.sorted)+len(s.recent) != len(ref) {
			t.Fatalf("round %d: %d sorted (sorted: %v) and %d recent, want %d in all", round, len(s.sorted), slices.IsSorted(s.sorted), len(s.recent), len(ref))
		}
	}
	if len(s.sorted) == 0 {
		t.Fatal("nothing was merged into the sorted part")
	}
}
