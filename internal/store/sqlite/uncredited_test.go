package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// TestContributeSkipsLookupOfNewKeys: Contribute does not look up the
// credits of an id whose key its own turn created, and does for the same
// id in the next call of the turn. To see the lookup, a credit of the
// counterpart released to the contributor is planted under the new key
// by hand, which Contribute never could: the first call credits the id
// regardless (not looked up), the second finds it known. The refusals
// that matter in practice are storetest's ContributeNewIDsInOneTurn.
func TestContributeSkipsLookupOfNewKeys(t *testing.T) {
	ctx := context.Background()
	ag := "agreement--skip"
	db, alpha, bravo, t0 := agreementDB(t, ag)
	if err := db.Credits().SetReleased(ctx, ag, alpha, 1); err != nil {
		t.Fatal(err)
	}
	id := "indicator--00000000-0000-4000-8000-000000000001"
	var first, second []store.Credited
	if err := db.Update(ctx, func(tx store.Handle) error {
		h := tx.(handle)
		keys, _, err := stixKeys(ctx, h.w, []string{id}, true)
		if err != nil {
			return err
		}
		agN, bravoN, err := creditNames(ctx, h, ag, bravo)
		if err != nil {
			return err
		}
		if _, err := h.w.ExecContext(ctx, `INSERT INTO agreement_credits(ag, pa, ord, key, object_id, weight, added_at) VALUES (?, ?, 1, ?, ?, 1, 0)`,
			agN, bravoN, keys[id], id); err != nil {
			return err
		}
		items := []store.Contribution{{ObjectID: id, Weight: 1}}
		if first, err = tx.Credits().Contribute(ctx, ag, alpha, items, t0); err != nil {
			return err
		}
		second, err = tx.Credits().Contribute(ctx, ag, alpha, items, t0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if first[0].Ord != 1 {
		t.Errorf("first call: %+v, want credited (the new key not looked up)", first[0])
	}
	if second[0].Ord != 0 || second[0].SameContent {
		t.Errorf("second call: %+v, want refused as a known id", second[0])
	}
}

// agreementDB opens a migrated store in a temporary directory with two
// parties, alpha and bravo, and agreement ag between them, made at t0.
func agreementDB(t *testing.T, ag string) (db *DB, alpha, bravo string, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir(), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	t0 = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	alpha, bravo = "party--alpha", "party--bravo"
	for _, p := range []string{alpha, bravo} {
		if err := db.Parties().Create(ctx, store.Party{ID: p, Name: p, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: alpha, PartyB: bravo, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return db, alpha, bravo, t0
}
