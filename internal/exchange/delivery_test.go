package exchange_test

import (
	"slices"
	"testing"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// TestDeliverHandover: released objects land in the recipient's handover
// collection, found by its kind on the next delivery, which only the
// recipient sees and nobody writes; and giving the same content afterwards
// earns no credit.
func TestDeliverHandover(t *testing.T) {
	f := newFixture(t)
	ag := f.activate(nil)
	id := ag.Record.ID
	own, _ := f.collections(f.b, id)
	deliver := func(from, n int) string {
		t.Helper()
		var objs []*stix.Object
		for _, raw := range batch(from, n) {
			o, err := stix.ParseObject(raw)
			if err != nil {
				t.Fatal(err)
			}
			objs = append(objs, o)
		}
		var coll string
		err := f.st.Update(ctx, func(tx store.Handle) error {
			var err error
			coll, err = f.ex.DeliverHandover(ctx, tx, id, f.b.p.PartyID, objs, f.now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return coll
	}
	first := deliver(1, 2)
	if again := deliver(3, 1); again != first {
		t.Fatalf("second delivery went to %s, not the recipient's collection %s", again, first)
	}
	c, err := f.st.Collections().Get(ctx, id, first)
	if err != nil || c.Kind != store.KindHandover || !slices.Equal(c.Readers, []string{f.b.p.PartyID}) || len(c.Writers) != 0 || c.Title != exchange.HandoverCollectionTitle+"bravo" {
		t.Fatalf("handover collection = %+v, %v", c, err)
	}
	if got := f.readAll(f.b, id, first); len(got) != 3 {
		t.Fatalf("bravo reads %v from its handover collection, want 3 objects", got)
	}
	if _, _, err := f.ex.Collection(ctx, f.a.p, id, first); err == nil {
		t.Fatal("alpha sees bravo's handover collection")
	}
	// What was handed over earns nobody credit when given again.
	res, err := f.ex.Ingest(ctx, f.b.p, id, own, batch(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Status.Successes; len(d) != 1 || d[0].Message == "" {
		t.Fatalf("re-giving handed-over content: %+v, want it stored without credit", d)
	}
}
