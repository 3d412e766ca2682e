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
// agreement, a Bloom filter (idfilter.go's) of the fingerprints of all of
// the agreement's credits, whoever gave them and whatever was released: a
// fingerprint it does not hold is no credit's, and is not looked up; one it
// may hold is looked up as before, with the party and release conditions.
// A false "does not hold" would credit the same content twice, so the
// filter must hold every credit's fingerprint:
//
//   - For each party with credits under the agreement it knows up to which
//     ordinal it holds them (credits append to their party's ordinals and
//     are never removed). Before each Contribute looks, it reads every
//     party's last ordinal (agreement_totals names the parties; the
//     ordinal is a seek of agreement_credits' key) and enters the
//     fingerprints of the credits past what it knows, whoever wrote them:
//     another process, or a member before this one in the transaction.
//     The first Contribute of an agreement after Open reads them all.
//   - Contribute enters the fingerprints it credits, and moves the party's
//     bound to its last ordinal.
//   - Every bound moved in a transaction is moved back when it might not
//     hold: a member's turn undone, or the transaction not committed. The
//     next Contribute then reads those credits again. Fingerprints entered
//     for credits undone stay in the filter and cost a lookup each.
//
// Agreements under which plain handovers released content
// (agreement_handed) are looked up as before.

// fpLookupsForTest counts the fingerprints Contribute asked SQLite for.
var fpLookupsForTest syncatomic.Int64

// fpFilterFirst is the fewest fingerprints an agreement's filter's first
// part holds. A variable for tests.
var fpFilterFirst = 1 << 12

// fpFilter is what the writer knows of one agreement's credits.
type fpFilter struct {
	set   *idSet
	known map[int64]int64 // party (credit name) -> the last ordinal in set
}

// fpMove is a bound moved in a transaction, and where it was.
type fpMove struct {
	ag, pa, was int64
	fresh       bool // the agreement's filter was made in the transaction
}

// fingerprints returns the filter of agreement ag holding the fingerprint
// of every credit under it, or nil if the filter is not in use.
func (t *idTx) fingerprints(ctx context.Context, q querier, ag int64) (*fpFilter, error) {
	if t == nil || t.f == nil {
		return nil, nil
	}
	f := t.f
	ff := f.fps[ag]
	if ff == nil {
		ff = &fpFilter{known: map[int64]int64{}}
		if f.fps == nil {
			f.fps = map[int64]*fpFilter{}
		}
		f.fps[ag] = ff
		t.moves = append(t.moves, fpMove{ag: ag, fresh: true})
	}
	rows, err := q.QueryContext(ctx, `SELECT c.n, coalesce((SELECT max(ord) FROM agreement_credits WHERE ag = ? AND pa = c.n), 0)
		FROM agreement_totals t JOIN credit_names c ON c.name = t.party_id
		WHERE t.agreement_id = (SELECT name FROM credit_names WHERE n = ?)`, ag, ag)
	if err != nil {
		return nil, mapErr(err)
	}
	type behind struct{ pa, from, to int64 }
	var todo []behind
	var past int64
	for rows.Next() {
		var pa, last int64
		if err := rows.Scan(&pa, &last); err != nil {
			rows.Close()
			return nil, mapErr(err)
		}
		if k := ff.known[pa]; last > k {
			todo = append(todo, behind{pa, k, last})
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
		if err := ff.enter(ctx, q, ag, b.pa, b.from, b.to); err != nil {
			return nil, err
		}
		t.move(ff, ag, b.pa, b.to)
	}
	return ff, nil
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
	}
	if err := rows.Close(); err != nil {
		return mapErr(err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: reading credits' fingerprints: %w", mapErr(err))
	}
	return nil
}

// move sets party pa's bound under ag to ord, noting where it was.
func (t *idTx) move(ff *fpFilter, ag, pa, ord int64) {
	t.moves = append(t.moves, fpMove{ag: ag, pa: pa, was: ff.known[pa]})
	ff.known[pa] = ord
}

// unmove puts every bound moved in the transaction back where it was
// before it, and forgets filters made in it.
func (t *idTx) unmove() {
	if t == nil || t.f == nil {
		return
	}
	for i := len(t.moves) - 1; i >= 0; i-- {
		m := t.moves[i]
		ff := t.f.fps[m.ag]
		switch {
		case ff == nil:
		case m.fresh:
			delete(t.f.fps, m.ag)
		default:
			ff.known[m.pa] = m.was
		}
	}
	t.moves = nil
}
