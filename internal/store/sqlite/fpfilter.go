package sqlite

import (
	"context"
	"fmt"
	syncatomic "sync/atomic"
)

// The writer's filter of credited contents (issue 18, item 4).
//
// Contribute refuses a credit for content the party already knows under an
// agreement (its own credits, and the counterpart's released to it), found
// by fingerprint in credit_fps and credit_fps_new: two b-tree seeks a
// fingerprint, most of the lookup that made a give-to-get POST dearer than
// a plain one, and nearly every fingerprint is new. The writer keeps, per
// agreement and party, a Bloom filter (idfilter.go's) of the fingerprints
// the party knows by credit: its own credits' and those of the
// counterpart's released to it. A fingerprint the filter does not hold is
// not known, and is not looked up; one it may hold is looked up as before.
// The filter holds nothing of what the counterpart gave and has not had
// released, so whether a lookup runs says nothing of it. A false "does not
// hold" would credit known content, so the filter must hold every
// fingerprint the party knows:
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
//   - Every bound moved over credits written in the transaction is moved
//     back when it might not hold: a member's turn undone, or the
//     transaction not committed. The next Contribute then reads those
//     credits again. Fingerprints entered for credits undone stay in the
//     filter and cost a lookup each. Bounds moved before the transaction
//     wrote credits under the agreement cover committed credits only, and
//     stay.
//
// Agreements under which plain handovers released content
// (agreement_handed) are looked up as before.

// fpLookupsForTest counts the fingerprints Contribute asked SQLite for,
// fpEnteredForTest those the filters read from stored credits.
var fpLookupsForTest, fpEnteredForTest syncatomic.Int64

// fpFilterFirst is the fewest fingerprints a filter's first part holds. A variable for tests.
var fpFilterFirst = 1 << 12

// fpKey names a filter: an agreement and the party whose knowledge it
// holds (credit names).
type fpKey struct{ ag, pa int64 }

// fpFilter is what the writer knows of the credits one party knows under
// one agreement.
type fpFilter struct {
	set   *idSet
	known map[int64]int64 // party (credit name) -> the last ordinal in set
}

// fpMove is a bound moved in a transaction, and where it was.
type fpMove struct {
	key   fpKey
	pa    int64 // the party whose credits' bound moved
	was   int64
	fresh bool // the filter was made in the transaction
}

// fingerprints returns the filter holding the fingerprint of every credit
// party pa knows under agreement ag, to which the counterpart's credits up
// to ordinal released are released, or nil if the filter is not in use.
func (t *idTx) fingerprints(ctx context.Context, q querier, ag, pa, released int64) (*fpFilter, error) {
	if t == nil || t.f == nil {
		return nil, nil
	}
	f := t.f
	key := fpKey{ag, pa}
	// Until a Contribute of this transaction writes credits under ag, the
	// credits it reads are committed ones: what it enters holds whatever
	// becomes of the transaction, and its bounds need not move back.
	// (Moving them back would also let a party whose requests fail after
	// Contribute, a request cancelled at the right moment, make every one
	// of them read all its credits again.)
	journal := t.wrote[ag]
	ff := f.fps[key]
	if ff == nil {
		ff = &fpFilter{known: map[int64]int64{}}
		if f.fps == nil {
			f.fps = map[fpKey]*fpFilter{}
		}
		f.fps[key] = ff
		if journal {
			t.moves = append(t.moves, fpMove{key: key, fresh: true})
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT c.n, coalesce((SELECT max(ord) FROM agreement_credits WHERE ag = ? AND pa = c.n), 0)
		FROM agreement_totals t JOIN credit_names c ON c.name = t.party_id
		WHERE t.agreement_id = (SELECT name FROM credit_names WHERE n = ?)`, ag, ag)
	if err != nil {
		return nil, mapErr(err)
	}
	type behind struct{ party, from, to int64 }
	var todo []behind
	var past int64
	for rows.Next() {
		var party, last int64
		if err := rows.Scan(&party, &last); err != nil {
			rows.Close()
			return nil, mapErr(err)
		}
		if party != pa {
			last = min(last, released)
		}
		if k := ff.known[party]; last > k {
			todo = append(todo, behind{party, k, last})
			past += last - k
		}
	}
	if err := rows.Close(); err != nil {
		return nil, mapErr(err)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	if ff.set == nil {
		ff.set = &idSet{parts: []*bloom{newBloom(max(fpFilterFirst, int(2*past)))}}
	}
	for _, b := range todo {
		if err := ff.enter(ctx, q, ag, b.party, b.from, b.to); err != nil {
			return nil, err
		}
		if journal {
			t.move(ff, key, b.party, b.to)
		} else {
			ff.known[b.party] = b.to
		}
	}
	return ff, nil
}

// writes records that a Contribute of the transaction is about to write
// credits under agreement ag.
func (t *idTx) writes(ag int64) {
	if t == nil {
		return
	}
	if t.wrote == nil {
		t.wrote = map[int64]bool{}
	}
	t.wrote[ag] = true
}

// enter puts into the filter the fingerprints of party pa's credits with
// an ordinal in (from, to].
func (ff *fpFilter) enter(ctx context.Context, q querier, ag, pa, from, to int64) error {
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
		ff.set.add(uint64(fp))
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

// move sets the bound of party's credits in filter key to ord, noting
// where it was.
func (t *idTx) move(ff *fpFilter, key fpKey, party, ord int64) {
	t.moves = append(t.moves, fpMove{key: key, pa: party, was: ff.known[party]})
	ff.known[party] = ord
}

// unmove puts every bound moved in the transaction back where it was
// before it, and forgets filters made in it.
func (t *idTx) unmove() {
	if t == nil || t.f == nil {
		return
	}
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
