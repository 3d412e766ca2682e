package storetest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// testTallies is a differential test of Credits.Mark and Tally: on random
// contributions by two parties, half of them marked as Contribute credits
// them, and random marks (new, older and equal versions, objects never
// credited, objects credited to the other party),
// Tally up to every block boundary and random ordinals equals a count over
// a plain model of the latest mark of each credited object. Marks that do
// not take (a rolled-back transaction) leave no trace.
func testTallies(t *testing.T, st store.Store) {
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	ag := "agreement--tallies"
	if err := st.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a.ID, b.ID} {
		if ok, err := st.Credits().Marked(ctx, ag, p); err != nil || !ok {
			t.Fatalf("Marked of a new agreement = %v, %v; want true", ok, err)
		}
	}
	rng := rand.New(rand.NewPCG(17, 1))
	types := []string{"indicator", "malware", "tool"}
	type mark struct {
		typ     string
		tlp     int
		version int
	}
	owner := map[string]string{} // object → the party credited
	ord := map[string]int64{}
	latest := map[string]mark{}
	next := map[string]int64{}
	n := 0
	for round := range 12 {
		for _, p := range []string{a.ID, b.ID} {
			size := 300
			if p == b.ID {
				size = 20
			}
			var items []store.Contribution
			var ids []string
			marked := map[string]mark{} // marked by Contribute, as it credits
			for range size {
				id := uid(types[n%3], n)
				n++
				it := store.Contribution{ObjectID: id, Weight: 1}
				if rng.IntN(2) == 0 {
					m := mark{types[rng.IntN(3)], rng.IntN(6) - 1, rng.IntN(50)}
					it.Type, it.TLP, it.Version = m.typ, m.tlp, t0.Add(time.Duration(m.version)*time.Minute)
					marked[id] = m
				}
				items = append(items, it)
				ids = append(ids, id)
			}
			var marks []store.Mark
			all := slices.Sorted(maps.Keys(owner))
			for k := range size + 40 {
				var id string
				switch {
				case k < size && rng.IntN(6) != 0:
					id = ids[k]
				case len(all) > 0 && rng.IntN(2) == 0:
					id = all[rng.IntN(len(all))]
				default:
					id = uid("tool", 1_000_000+rng.IntN(1000)) // never credited
				}
				m := mark{types[rng.IntN(3)], rng.IntN(6) - 1, rng.IntN(50)}
				marks = append(marks, store.Mark{ObjectID: id, Type: m.typ, TLP: m.tlp, Version: t0.Add(time.Duration(m.version) * time.Minute)})
			}
			err := st.Update(ctx, func(tx store.Handle) error {
				if err := tx.Agreements().Lock(ctx, ag); err != nil {
					return err
				}
				res, err := tx.Credits().Contribute(ctx, ag, p, items, t0)
				if err != nil {
					return err
				}
				for i, r := range res {
					if r.Ord == 0 {
						return fmt.Errorf("%s earned nothing", items[i].ObjectID)
					}
				}
				return tx.Credits().Mark(ctx, ag, p, marks)
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				owner[id] = p
				next[p]++
				ord[id] = next[p]
				if m, ok := marked[id]; ok {
					latest[id] = m
				}
			}
			for _, m := range marks {
				if owner[m.ObjectID] != p {
					continue
				}
				v := int(m.Version.Sub(t0) / time.Minute)
				if old, ok := latest[m.ObjectID]; ok && v <= old.version {
					continue
				}
				latest[m.ObjectID] = mark{m.Type, m.TLP, v}
			}
		}
		// A rolled-back Mark changes nothing.
		_ = st.Update(ctx, func(tx store.Handle) error {
			var ms []store.Mark
			for id := range latest {
				ms = append(ms, store.Mark{ObjectID: id, Type: "rolled-back", TLP: 4, Version: t0.Add(24 * time.Hour)})
			}
			if err := tx.Credits().Mark(ctx, ag, a.ID, ms); err != nil {
				return err
			}
			return fmt.Errorf("roll back")
		})
		for _, p := range []string{a.ID, b.ID} {
			ups := []int64{0, 1, next[p], next[p] + 3}
			for k := int64(1); k*store.TallyBlock <= next[p]+1; k++ {
				ups = append(ups, k*store.TallyBlock-1, k*store.TallyBlock, k*store.TallyBlock+1)
			}
			for range 5 {
				ups = append(ups, rng.Int64N(next[p]+1))
			}
			for _, up := range ups {
				want := map[[2]any]int64{}
				for id, m := range latest {
					if owner[id] == p && ord[id] <= up {
						want[[2]any{m.typ, m.tlp}]++
					}
				}
				got, err := st.Credits().Tally(ctx, ag, p, up)
				if err != nil {
					t.Fatal(err)
				}
				have := map[[2]any]int64{}
				for i, x := range got {
					if x.N == 0 || (i > 0 && (got[i-1].Type > x.Type || got[i-1].Type == x.Type && got[i-1].TLP >= x.TLP)) {
						t.Fatalf("round %d: Tally(%s, %d) = %v: a zero or out of order", round, p, up, got)
					}
					have[[2]any{x.Type, x.TLP}] = x.N
				}
				if fmt.Sprint(have) != fmt.Sprint(want) {
					t.Fatalf("round %d: Tally(%s, %d) = %v, want %v", round, p, up, have, want)
				}
			}
		}
	}
	if next[a.ID] <= 2*store.TallyBlock {
		t.Fatalf("only %d contributions: the test needs whole blocks", next[a.ID])
	}
	if err := st.Credits().SetMarked(ctx, ag, a.ID); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Credits().Marked(ctx, ag, a.ID); err != nil || !ok {
		t.Fatalf("Marked after SetMarked = %v, %v", ok, err)
	}
}
