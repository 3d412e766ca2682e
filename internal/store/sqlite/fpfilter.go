package sqlite

import (
	"context"
	"fmt"
	"maps"
	"slices"
	syncatomic "sync/atomic"
)

// The writer's index of credited contents (issue 18, item 4).
//
// Contribute refuses a credit for content the party already knows under an
// agreement: its own credits, and the counterpart's released to it. The
// writer keeps, per agreement and party, the set of the fingerprints the
// party knows by credit, exactly, in memory; each credit row keeps its
// fingerprint, from which the set is read. (Until migration 40 SQLite also
// kept them in two tables of their own, found by value, with a Bloom
// filter here in front of them; filing every new fingerprint there was
// about a quarter of what give-to-get added to an ingest.) A fingerprint
// in the set is known and one outside it is not, so the set must hold
// every fingerprint the party knows and nothing else:
//
//   - For each party with credits under the agreement it knows up to which
//     ordinal it holds them (credits append to their party's ordinals and
//     are never removed; a release only grows). Before each Contribute
//     looks, it reads every party's last ordinal (agreement_totals names
//     the parties; the ordinal is a seek of agreement_credits' key), the
//     counterpart's capped at what is released to the party, and enters
//     the fingerprints of the credits past what it knows, whoever wrote
//     them: another process, or a member before this one in the
//     transaction. The first Contribute after Open reads them all.
//   - Contribute enters the fingerprints it credits, and moves the party's
//     own bound to its last ordinal.
//   - Once a transaction has written credits under the agreement, or
//     raised what is released under it, what the sets take in may not
//     hold: every bound it moves and every fingerprint it enters from
//     then on is noted, and all of them are taken back when a member's
//     turn is undone or the transaction is not committed. The next
//     Contribute reads those credits again. Bounds moved and fingerprints
//     entered before that are of committed credits and a committed
//     release, and stay (taking them back too would let a party whose
//     requests fail after Contribute make each of them read every credit
//     again).
//
// The memory is the price: about 9 bytes (fpSet) per fingerprint a party
// knows, both parties' credits counted in each party's set once released
// to it: some 36 MB for an agreement of a million credits each way.
//
// Agreements under which plain handovers released content
// (agreement_handed) look those fingerprints up there as well.

// fpLookupsForTest counts the fingerprints Contribute asked SQLite for
// (agreement_handed), fpEnteredForTest those the sets read from stored
// credits.
var fpLookupsForTest, fpEnteredForTest syncatomic.Int64

// fpKey names a filter: an agreement and the party whose knowledge it
// holds (credit names).
type fpKey struct{ ag, pa int64 }

// fpFilter is what the writer knows of the credits one party knows under
// one agreement.
type fpFilter struct {
	fps   fpSet           // the fingerprints of the credits up to known
	known map[int64]int64 // party (credit name) -> the last ordinal in fps
}

func (ff *fpFilter) has(fp uint64) bool { return ff.fps.has(fp) }

func newFPFilter() *fpFilter { return &fpFilter{known: map[int64]int64{}} }

// fpSet is a set of fingerprints in about 9 bytes each (a Go map takes
// 24 to 38): most in a sorted slice, the latest in a map, merged into the
// slice when the map holds an eighth as many: the merges copy about nine
// times as many fingerprints as the set ends up holding.
type fpSet struct {
	sorted []uint64
	recent map[uint64]struct{}
}

// fpRecentMin is the fewest the map holds before a merge. A variable for tests.
var fpRecentMin = 4096

func (s *fpSet) has(fp uint64) bool {
	if _, ok := s.recent[fp]; ok {
		return true
	}
	_, ok := slices.BinarySearch(s.sorted, fp)
	return ok
}

// add puts fp in the set and reports whether it was not there.
func (s *fpSet) add(fp uint64) bool {
	if s.has(fp) {
		return false
	}
	if s.recent == nil {
		s.recent = map[uint64]struct{}{}
	}
	s.recent[fp] = struct{}{}
	if len(s.recent) >= max(fpRecentMin, len(s.sorted)/8) {
		s.merge()
	}
	return true
}

func (s *fpSet) merge() {
	add := slices.Sorted(maps.Keys(s.recent))
	out := make([]uint64, 0, len(s.sorted)+len(add))
	i := 0
	for _, fp := range add {
		for i < len(s.sorted) && s.sorted[i] < fp {
			out = append(out, s.sorted[i])
			i++
		}
		out = append(out, fp)
	}
	s.sorted = append(out, s.sorted[i:]...)
	clear(s.recent)
}

// remove takes fps out of the set: one pass over the slice, if any is there.
func (s *fpSet) remove(fps []uint64) {
	var gone map[uint64]bool
	for _, fp := range fps {
		if _, ok := s.recent[fp]; ok {
			delete(s.recent, fp)
		} else if _, ok := slices.BinarySearch(s.sorted, fp); ok {
			if gone == nil {
				gone = map[uint64]bool{}
			}
			gone[fp] = true
		}
	}
	if gone != nil {
		s.sorted = slices.DeleteFunc(s.sorted, func(fp uint64) bool { return gone[fp] })
	}
}

// fpEntry is a fingerprint entered in a set in a transaction.
type fpEntry struct {
	key fpKey
	fp  uint64
}

// fpMove is a bound moved in a transaction, and where it was.
type fpMove struct {
	key   fpKey
	pa    int64 // the party whose credits' bound moved
	was   int64
	fresh bool // the set was made in the transaction
}

// fingerprints returns the set holding the fingerprint of every credit
// party pa knows under agreement ag, to which the counterpart's credits up
// to ordinal released are released, or nil if the writer keeps none.
func (t *idTx) fingerprints(ctx context.Context, q querier, ag, pa, released int64) (*fpFilter, error) {
	if t == nil || t.f == nil {
		return nil, nil
	}
	f := t.f
	key := fpKey{ag, pa}
	// Until this transaction writes credits under ag or raises what is
	// released under it, the credits it reads are committed ones within
	// a committed release: what it enters holds whatever becomes of the
	// transaction, and its bounds need not move back.
	journal := t.wrote[ag]
	ff := f.fps[key]
	if ff == nil {
		ff = newFPFilter()
		if f.fps == nil {
			f.fps = map[fpKey]*fpFilter{}
		}
		f.fps[key] = ff
		if journal {
			t.moves = append(t.moves, fpMove{key: key, fresh: true})
		}
	}
	add := func(fp uint64) { ff.fps.add(fp) }
	if journal {
		add = func(fp uint64) { t.entered(ff, key, fp) }
	}
	return ff, ff.catchUp(ctx, q, ag, pa, released, add, func(party, to int64) {
		if journal {
			t.move(ff, key, party, to)
		} else {
			ff.known[party] = to
		}
	})
}

// readFingerprints returns a set of the fingerprints party pa knows under
// agreement ag, read from the credits, for a Contribute on a store whose
// writer keeps none.
func readFingerprints(ctx context.Context, q querier, ag, pa, released int64) (*fpFilter, error) {
	ff := newFPFilter()
	return ff, ff.catchUp(ctx, q, ag, pa, released, func(fp uint64) { ff.fps.add(fp) },
		func(party, to int64) { ff.known[party] = to })
}

// catchUp enters, through add, the fingerprints of the credits party pa
// knows under agreement ag that are past ff's bounds, and moves each bound
// through moved.
func (ff *fpFilter) catchUp(ctx context.Context, q querier, ag, pa, released int64, add func(uint64), moved func(party, to int64)) error {
	rows, err := q.QueryContext(ctx, `SELECT c.n, coalesce((SELECT max(ord) FROM agreement_credits WHERE ag = ? AND pa = c.n), 0)
		FROM agreement_totals t JOIN credit_names c ON c.name = t.party_id
		WHERE t.agreement_id = (SELECT name FROM credit_names WHERE n = ?)`, ag, ag)
	if err != nil {
		return mapErr(err)
	}
	type behind struct{ party, from, to int64 }
	var todo []behind
	for rows.Next() {
		var party, last int64
		if err := rows.Scan(&party, &last); err != nil {
			rows.Close()
			return mapErr(err)
		}
		if party != pa {
			last = min(last, released)
		}
		if k := ff.known[party]; last > k {
			todo = append(todo, behind{party, k, last})
		}
	}
	if err := rows.Close(); err != nil {
		return mapErr(err)
	}
	if err := rows.Err(); err != nil {
		return mapErr(err)
	}
	for _, b := range todo {
		if err := ff.enter(ctx, q, ag, b.party, b.from, b.to, add); err != nil {
			return err
		}
		moved(b.party, b.to)
	}
	return nil
}

// writes records that the transaction is about to write credits under
// agreement ag, or to raise what is released under it.
func (t *idTx) writes(ag int64) {
	if t == nil {
		return
	}
	if t.wrote == nil {
		t.wrote = map[int64]bool{}
	}
	t.wrote[ag] = true
}

// enter puts through add the fingerprints of party pa's credits with an
// ordinal in (from, to].
func (ff *fpFilter) enter(ctx context.Context, q querier, ag, pa, from, to int64, add func(uint64)) error {
	rows, err := q.QueryContext(ctx, `SELECT fingerprint FROM agreement_credits WHERE ag = ? AND pa = ? AND ord > ? AND ord <= ? AND fingerprint IS NOT NULL`, ag, pa, from, to)
	if err != nil {
		return mapErr(err)
	}
	for rows.Next() {
		var fp int64
		if err := rows.Scan(&fp); err != nil {
			rows.Close()
			return mapErr(err)
		}
		add(uint64(fp))
		fpEnteredForTest.Add(1)
	}
	if err := rows.Close(); err != nil {
		return mapErr(err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: reading credits' fingerprints: %w", mapErr(err))
	}
	return nil
}

// move sets the bound of party's credits in set key to ord, noting where
// it was; on a set of a store whose writer keeps none, it only sets it.
func (t *idTx) move(ff *fpFilter, key fpKey, party, ord int64) {
	if t != nil && t.f != nil {
		t.moves = append(t.moves, fpMove{key: key, pa: party, was: ff.known[party]})
	}
	ff.known[party] = ord
}

// entered puts fp into set key, noting it if it was not there.
func (t *idTx) entered(ff *fpFilter, key fpKey, fp uint64) {
	if !ff.fps.add(fp) {
		return
	}
	if t != nil && t.f != nil {
		t.entries = append(t.entries, fpEntry{key: key, fp: fp})
	}
}

// unmove takes every fingerprint entered and puts every bound moved in the
// transaction (since it wrote credits or raised a release) back where it
// was before it, and forgets sets made in it.
func (t *idTx) unmove() {
	if t == nil || t.f == nil {
		return
	}
	gone := map[fpKey][]uint64{}
	for _, e := range t.entries {
		gone[e.key] = append(gone[e.key], e.fp)
	}
	for key, fps := range gone {
		if ff := t.f.fps[key]; ff != nil {
			ff.fps.remove(fps)
		}
	}
	t.entries = nil
	for i := len(t.moves) - 1; i >= 0; i-- {
		m := t.moves[i]
		ff := t.f.fps[m.key]
		switch {
		case ff == nil:
		case m.fresh:
			delete(t.f.fps, m.key)
		default:
			ff.known[m.pa] = m.was
		}
	}
	t.moves = nil
}
