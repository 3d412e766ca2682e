package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// testReleasedReach is a differential test of the reach of a release
// (issue 18): on random contributions, new versions, duplicates by
// content, deletions and releases, maintained as package exchange does
// (Reach after every write and every release), a read bounded by the reach
// returns exactly the pages, in the same order, that the unbounded
// released query returns, for random filters and page sizes.
func testReleasedReach(t *testing.T, st store.Store) {
	x := ext(t, st)
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	ag := "agreement--reach"
	if err := x.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := st.Collections().Create(ctx, store.Collection{ID: "contrib-a", APIRoot: ag, Title: "alpha's", CreatedAt: t0, Agreement: ag, Contributor: a.ID}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(18, 2026))
	types := []string{"indicator", "malware", "tool"}
	ids := make([]string, 30)
	for i := range ids {
		ids[i] = uid(types[i%len(types)], i)
	}
	versions := map[string]int{}
	clock := 0
	var upTo int64
	compare := func(step int) {
		t.Helper()
		bound, err := x.Credits().Bound(ctx, ag, b.ID, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if bound.UpTo != upTo || bound.Reach == nil {
			t.Fatalf("step %d: Bound = %+v, want up to %d with a reach", step, bound, upTo)
		}
		old := bound
		old.Reach = nil
		for k := 0; k < 6; k++ {
			q := store.ObjectQuery{Collection: "contrib-a", Limit: 1 + rng.IntN(7)}
			switch rng.IntN(5) {
			case 0:
				q.Versions = store.VersionFilter{All: true}
			case 1:
				q.Versions = store.VersionFilter{First: true}
			case 2:
				q.Versions = store.VersionFilter{At: []time.Time{t0.Add(time.Duration(rng.IntN(3)) * time.Hour)}}
			}
			if rng.IntN(3) == 0 {
				q.Types = []string{types[rng.IntN(len(types))]}
			}
			if rng.IntN(3) == 0 {
				q.AddedAfter = t0.Add(time.Duration(rng.IntN(clock+1)) * time.Second)
			}
			var got, want []string
			for _, side := range []struct {
				b   store.ReleaseBound
				out *[]string
			}{{old, &want}, {bound, &got}} {
				qq := q
				qq.Released = &side.b
				for page := 0; ; page++ {
					p, err := st.Objects().Query(ctx, qq)
					if err != nil {
						t.Fatal(err)
					}
					for _, o := range p.Objects {
						*side.out = append(*side.out, fmt.Sprintf("%s@%d+%d", o.ID, o.Version.Unix(), o.DateAdded.Unix()))
					}
					*side.out = append(*side.out, fmt.Sprintf("more=%v", p.More))
					if !p.More || page > 100 {
						break
					}
					last := p.Objects[len(p.Objects)-1]
					qq.After = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d, query %+v (up to %d, reach %+v):\n got %v\nwant %v", step, q, upTo, *bound.Reach, got, want)
			}
		}
	}
	for step := 0; step < 120; step++ {
		switch r := rng.IntN(10); {
		case r < 6: // a write of new objects and new versions, some out of date order
			var objs []store.Object
			var items []store.Contribution
			for n := 1 + rng.IntN(4); n > 0; n-- {
				id := ids[rng.IntN(len(ids))]
				v := versions[id]
				versions[id]++
				clock++
				added := clock
				if rng.IntN(8) == 0 {
					added = rng.IntN(clock + 1) // a clock that went back
				}
				objs = append(objs, obj(id, t0.Add(time.Duration(v)*time.Hour), t0.Add(time.Duration(added)*time.Second)))
				items = append(items, store.Contribution{ObjectID: id, Weight: 1, Fingerprint: fingerprint(rng.IntN(40))})
			}
			outcomes, err := st.Objects().Put(ctx, "contrib-a", objs)
			if err != nil {
				t.Fatal(err)
			}
			credited, err := x.Credits().Contribute(ctx, ag, a.ID, items, t0)
			if err != nil {
				t.Fatal(err)
			}
			// As package exchange: what earned an ordinal now is not
			// released yet.
			var stored []string
			for i, o := range objs {
				if outcomes[i] != store.Duplicate && credited[i].Ord == 0 {
					stored = append(stored, o.ID)
				}
			}
			if err := x.Credits().Reach(ctx, ag, b.ID, a.ID, stored); err != nil {
				t.Fatal(err)
			}
		case r < 9: // a release
			bal, err := x.Credits().Balance(ctx, ag, a.ID, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			target := min(upTo+int64(rng.IntN(4)), bal.Contributed)
			if target <= upTo {
				continue
			}
			released, err := x.Credits().Range(ctx, ag, a.ID, upTo+1, target)
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Credits().SetReleased(ctx, ag, b.ID, target); err != nil {
				t.Fatal(err)
			}
			// Either form of the reach of a release, as exchange uses
			// ReachRange; a range reaching past what is released is cut.
			if rng.IntN(2) == 0 {
				err = x.Credits().Reach(ctx, ag, b.ID, a.ID, released)
			} else {
				err = x.Credits().ReachRange(ctx, ag, b.ID, a.ID, upTo+1, target+int64(rng.IntN(3)))
			}
			if err != nil {
				t.Fatal(err)
			}
			upTo = target
		default: // a deletion: the reach may stay beyond what is left
			id := ids[rng.IntN(len(ids))]
			if _, err := st.Objects().Delete(ctx, "contrib-a", id, store.VersionFilter{All: true}, nil); err != nil {
				t.Fatal(err)
			}
			delete(versions, id)
		}
		compare(step)
	}
	if upTo < 5 {
		t.Fatalf("only %d released: the random walk did not exercise releases", upTo)
	}
}

// SeedReleased stores contributed objects of one contributor under an
// agreement, the first released of them released to the counterpart as
// package exchange does, and returns the query of the counterpart's read
// of the first page of limit objects. Backends use it to count the rows
// such a read touches.
func SeedReleased(tb testing.TB, st store.Store, contributed, released, limit int) store.ObjectQuery {
	tb.Helper()
	a := store.Party{ID: "party--alpha", Name: "alpha", CreatedAt: t0}
	b := store.Party{ID: "party--bravo", Name: "bravo", CreatedAt: t0}
	ag := "agreement--seed"
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(st.Parties().Create(ctx, a))
	must(st.Parties().Create(ctx, b))
	must(st.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}))
	must(st.Collections().Create(ctx, store.Collection{ID: "contrib-a", APIRoot: ag, Title: "alpha's", CreatedAt: t0, Agreement: ag, Contributor: a.ID}))
	for start := 0; start < contributed; start += 1000 {
		var objs []store.Object
		var items []store.Contribution
		for i := start; i < min(start+1000, contributed); i++ {
			id := uid("indicator", i)
			objs = append(objs, obj(id, t0, t0.Add(time.Duration(i)*time.Microsecond)))
			items = append(items, store.Contribution{ObjectID: id, Weight: 1})
		}
		must(st.Update(ctx, func(tx store.Handle) error {
			if _, err := tx.Objects().Put(ctx, "contrib-a", objs); err != nil {
				return err
			}
			_, err := tx.Credits().Contribute(ctx, ag, a.ID, items, t0)
			return err
		}))
	}
	ids, err := st.Credits().Range(ctx, ag, a.ID, 1, int64(released))
	must(err)
	must(st.Update(ctx, func(tx store.Handle) error {
		if err := tx.Credits().SetReleased(ctx, ag, b.ID, int64(released)); err != nil {
			return err
		}
		return tx.Credits().Reach(ctx, ag, b.ID, a.ID, ids)
	}))
	bound, err := st.Credits().Bound(ctx, ag, b.ID, a.ID)
	must(err)
	return store.ObjectQuery{Collection: "contrib-a", Limit: limit, Released: &bound}
}

// fingerprint is a content fingerprint, the same for the same n.
func fingerprint(n int) []byte {
	fp := make([]byte, 32)
	fp[7] = byte(n)
	return fp
}
