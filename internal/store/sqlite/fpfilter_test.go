package sqlite

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/storetest"
)

// contentFP is the key SQLite stores for storetest.GiveContents' content c.
func contentFP(c int) int64 {
	fp := sha256.Sum256([]byte(fmt.Sprint(c)))
	return fp64(fp[:])
}

// TestFingerprintFilterSkipsNewContents: Contribute looks no fingerprint
// up in SQLite (the writer's sets answer, fpfilter.go), and still finds
// the contents credited before, in this transaction or another, and by
// another process.
func TestFingerprintFilterSkipsNewContents(t *testing.T) {
	ctx := context.Background()
	ag := "agreement--fpfilter"
	db, alpha, bravo, t0 := agreementDB(t, ag)
	give := storetest.GiveContents(t, db, ag, t0)
	looked := func(f func() string) (string, int64) {
		before := fpLookupsForTest.Load()
		got := f()
		return got, fpLookupsForTest.Load() - before
	}
	if got, n := looked(func() string { return give(alpha, 1, 2, 3) }); got != "[]" || n != 0 {
		t.Fatalf("3 new contents: known %s, %d looked up; want none known, none looked up", got, n)
	}
	if got, n := looked(func() string { return give(alpha, 1, 4, 5) }); got != "[1]" || n != 0 {
		t.Fatalf("1 given before and 2 new: known %s, %d looked up; want [1], none looked up", got, n)
	}
	// Bravo's filter holds nothing of alpha's unreleased credits: whether
	// a lookup runs says nothing of them.
	if got, n := looked(func() string { return give(bravo, 2, 6) }); got != "[]" || n != 0 {
		t.Fatalf("bravo giving alpha's unreleased 2 and a new 6: known %s, %d looked up; want none known, none looked up", got, n)
	}
	// Released to bravo: alpha's ordinals 1-3 (contents 1, 2, 3), not 4.
	if err := db.Credits().SetReleased(ctx, ag, bravo, 3); err != nil {
		t.Fatal(err)
	}
	if got, n := looked(func() string { return give(bravo, 3, 4, 6) }); got != "[3 6]" || n != 0 {
		t.Fatalf("bravo giving alpha's released 3, unreleased 4 and its own 6: known %s, %d looked up; want [3 6], none looked up", got, n)
	}
	// Another process credits content 7 for alpha.
	other, err := Open(ctx, filepath.Dir(db.path), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	fp := sha256.Sum256([]byte("7"))
	if err := other.Update(ctx, func(tx store.Handle) error {
		_, err := tx.Credits().Contribute(ctx, ag, alpha, []store.Contribution{{ObjectID: "indicator--00000000-0000-4000-8000-0000000000a7", Weight: 1, Fingerprint: fp[:]}}, t0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := give(alpha, 7, 8); got != "[7]" {
		t.Fatalf("alpha giving content another process credited it for: known %s, want [7]", got)
	}
	// One transaction: the second member gives what the first gave.
	errs, _, _ := group(t, db, nil, nil,
		func(tx store.Handle) error { return giveIn(tx, ag, alpha, 900, 30, t0) },
		func(tx store.Handle) error {
			if err := giveIn(tx, ag, alpha, 901, 30, t0); !errors.Is(err, errSameContent) {
				return fmt.Errorf("content 30 again in the same transaction: %v, want it known", err)
			}
			return nil
		})
	for i, err := range errs {
		if err != nil {
			t.Errorf("member %d: %v", i, err)
		}
	}
}

var errSameContent = errors.New("same content")

// giveIn contributes content c under a new object id numbered n, in tx,
// and fails with errSameContent if it was known.
func giveIn(tx store.Handle, ag, party string, n, c int, at time.Time) error {
	fp := sha256.Sum256([]byte(fmt.Sprint(c)))
	res, err := tx.Credits().Contribute(context.Background(), ag, party,
		[]store.Contribution{{ObjectID: fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", n), Weight: 1, Fingerprint: fp[:]}}, at)
	if err != nil {
		return err
	}
	if res[0].SameContent {
		return errSameContent
	}
	return nil
}

// TestFingerprintFilterAfterAnUndoneTurn: a member's turn undone takes its
// credits with it, and their ordinals may go to other credits in the same
// transaction; the filter's bound moves back, so a credit written there by
// something other than Contribute is found afterwards.
func TestFingerprintFilterAfterAnUndoneTurn(t *testing.T) {
	ctx := context.Background()
	ag := "agreement--fpundo"
	db, alpha, _, t0 := agreementDB(t, ag)
	give := storetest.GiveContents(t, db, ag, t0)
	if got := give(alpha, 1, 2); got != "[]" {
		t.Fatalf("new contents known: %s", got)
	}
	failed := errors.New("the first member fails")
	errs, _, d := group(t, db, nil, nil,
		func(tx store.Handle) error {
			if err := giveIn(tx, ag, alpha, 900, 20, t0); err != nil {
				return err
			}
			return failed // undone: its ordinal 3 is free again
		},
		func(tx store.Handle) error {
			// A credit for content 22 at ordinal 3, by hand.
			w := tx.(handle).w
			_, err := w.ExecContext(ctx, `INSERT INTO agreement_credits(ag, pa, ord, key, object_id, weight, added_at, fingerprint)
				SELECT ag, pa, 3, 424242, 'indicator--00000000-0000-4000-8000-000000424242', 1, 0, ? FROM agreement_credits WHERE ord = 2`, contentFP(22))
			if err == nil {
			}
			return err
		})
	if d.Transactions != 1 || !errors.Is(errs[0], failed) || errs[1] != nil {
		t.Fatalf("group: %v in %d transactions, want the first member's failure alone, in one", errs, d.Transactions)
	}
	if got := give(alpha, 22, 20); got != "[22]" {
		t.Fatalf("alpha giving content credited at an ordinal an undone turn freed, and the undone content: known %s, want [22]", got)
	}
}

// TestFingerprintFilterKeepsWhatWasCommitted: a filter made in a
// transaction that does not commit keeps the committed credits it read, so
// a party whose requests fail after Contribute (a request cancelled at the
// right moment) cannot make each of them read all its credits again; the
// credit undone is not taken for known.
func TestFingerprintFilterKeepsWhatWasCommitted(t *testing.T) {
	ctx := context.Background()
	ag := "agreement--fpkeep"
	db, alpha, _, t0 := agreementDB(t, ag)
	give := storetest.GiveContents(t, db, ag, t0)
	if got := give(alpha, 1, 2, 3, 4, 5); got != "[]" {
		t.Fatalf("new contents known: %s", got)
	}
	// A second store on the directory: its filters are empty.
	other, err := Open(ctx, filepath.Dir(db.path), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	failed := errors.New("failed after Contribute")
	before := fpEnteredForTest.Load()
	if err := other.Update(ctx, func(tx store.Handle) error {
		if err := giveIn(tx, ag, alpha, 950, 40, t0); err != nil {
			return err
		}
		return failed
	}); !errors.Is(err, failed) {
		t.Fatalf("failing update: %v", err)
	}
	if n := fpEnteredForTest.Load() - before; n != 5 {
		t.Fatalf("the first Contribute read %d credits' fingerprints, want the 5 committed", n)
	}
	before = fpEnteredForTest.Load()
	if err := other.Update(ctx, func(tx store.Handle) error { return giveIn(tx, ag, alpha, 951, 40, t0) }); err != nil {
		t.Fatalf("content 40 after its credit was undone: %v, want it credited", err)
	}
	if n := fpEnteredForTest.Load() - before; n != 0 {
		t.Errorf("after a transaction that did not commit, the next Contribute read %d credits' fingerprints again, want 0", n)
	}
	if err := other.Update(ctx, func(tx store.Handle) error { return giveIn(tx, ag, alpha, 952, 3, t0) }); !errors.Is(err, errSameContent) {
		t.Errorf("content 3 again: %v, want it known", err)
	}
}
