package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

type objects handle

// collPK resolves a collection id to its integer key.
func collPK(ctx context.Context, q querier, id string) (int64, error) {
	var pk int64
	if err := q.QueryRow(ctx, `SELECT pk FROM collections WHERE id = $1`, id).Scan(&pk); err != nil {
		return 0, fmt.Errorf("collection %s: %w", id, mapErr(err))
	}
	return pk, nil
}

// collPKForWrite resolves a collection and holds it, as a foreign key check
// would, until the transaction ends.
func collPKForWrite(ctx context.Context, q querier, id string) (int64, error) {
	var pk int64
	if err := q.QueryRow(ctx, `SELECT pk FROM collections WHERE id = $1 FOR KEY SHARE`, id).Scan(&pk); err != nil {
		return 0, fmt.Errorf("collection %s: %w", id, mapErr(err))
	}
	return pk, nil
}

// Put stores objs atomically. Each id keeps exactly one row flagged first
// and one flagged last, so that the default "last version" query and
// "first" need no per-page aggregation.
func (s objects) Put(ctx context.Context, collection string, objs []store.Object) ([]store.PutOutcome, error) {
	var out []store.PutOutcome
	err := atomic(ctx, handle(s), func(h handle) error {
		var err error
		out, err = objects(h).put(ctx, collection, objs)
		return err
	})
	return out, err
}

// versionKey names one stored version.
type versionKey struct {
	id      string
	version int64
}

// head is the first and last stored version of one object id.
type head struct {
	first, last int64
	ok          bool // false while no version is stored
}

// put takes a fixed number of round trips whatever the batch size: resolve
// and hold the collection; create or lock the heads of every id in the batch
// (in id order, so concurrent batches queue instead of deadlocking) and read
// their first and last versions; look up which versions in those ranges are
// already stored; draw seqs and fix flags and heads in one pipelined batch;
// COPY the new rows.
func (s objects) put(ctx context.Context, collection string, objs []store.Object) ([]store.PutOutcome, error) {
	pk, err := collPKForWrite(ctx, s.q, collection)
	if err != nil {
		return nil, err
	}
	out := make([]store.PutOutcome, len(objs))
	if len(objs) == 0 {
		return out, nil
	}
	// span is each id's earliest and latest version in the batch: what a
	// new head starts with.
	span := make(map[string]head, len(objs))
	for i := range objs {
		v := micros(objs[i].Version)
		h, ok := span[objs[i].ID]
		if !ok {
			h = head{first: v, last: v, ok: true}
		}
		h.first, h.last = min(h.first, v), max(h.last, v)
		span[objs[i].ID] = h
	}
	ids := slices.Sorted(maps.Keys(span))

	before, created, err := lockHeads(ctx, s.q, pk, ids, span)
	if err != nil {
		return nil, err
	}
	stored, err := storedVersions(ctx, s.q, pk, objs, before)
	if err != nil {
		return nil, err
	}

	// Replay the batch in order against the heads, as the SQLite backend
	// does row by row, to decide outcomes and the final first and last.
	after := make(map[string]head, len(before))
	for id, h := range before {
		after[id] = h
	}
	var add []int
	for i := range objs {
		o := &objs[i]
		k := versionKey{o.ID, micros(o.Version)}
		if stored[k] {
			out[i] = store.Duplicate
			continue
		}
		stored[k] = true
		out[i] = store.Added
		add = append(add, i)
		h := after[o.ID]
		if !h.ok {
			h = head{first: k.version, last: k.version, ok: true}
		} else {
			h.first, h.last = min(h.first, k.version), max(h.last, k.version)
		}
		after[o.ID] = h
	}
	if len(add) == 0 {
		return out, nil
	}

	var clearFirst, clearLast, headIDs []string
	var headFirst, headLast []int64
	for _, id := range ids {
		b, a := before[id], after[id]
		if created[id] || b == a {
			continue // a new head already holds the batch's span
		}
		headIDs, headFirst, headLast = append(headIDs, id), append(headFirst, a.first), append(headLast, a.last)
		if b.ok && a.first < b.first {
			clearFirst = append(clearFirst, id)
		}
		if b.ok && a.last > b.last {
			clearLast = append(clearLast, id)
		}
	}
	b := &pgx.Batch{}
	// Seqs are drawn in advance so the rows can be COPied, the fastest way
	// in; drawn in one statement they ascend in batch order.
	seqs := make([]int64, 0, len(add))
	b.Queue(`SELECT nextval(pg_get_serial_sequence('objects', 'seq')) FROM generate_series(1, $1)`, len(add)).
		Query(func(rows pgx.Rows) error {
			var seq int64
			_, err := pgx.ForEachRow(rows, []any{&seq}, func() error {
				seqs = append(seqs, seq)
				return nil
			})
			return err
		})
	if len(clearFirst) > 0 {
		b.Queue(`UPDATE objects SET is_first = false WHERE coll = $1 AND id = ANY($2::text[]) AND is_first`, pk, clearFirst)
	}
	if len(clearLast) > 0 {
		b.Queue(`UPDATE objects SET is_last = false WHERE coll = $1 AND id = ANY($2::text[]) AND is_last`, pk, clearLast)
	}
	if len(headIDs) > 0 {
		b.Queue(`UPDATE object_heads h SET first_version = u.f, last_version = u.l
			FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS u(id, f, l)
			WHERE h.coll = $1 AND h.id = u.id`, pk, headIDs, headFirst, headLast)
	}
	if err := s.q.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("collection %s: storing objects: %w", collection, mapErr(err))
	}
	if len(seqs) != len(add) {
		return nil, fmt.Errorf("postgres: drew %d seqs for %d objects", len(seqs), len(add))
	}
	slices.Sort(seqs)
	_, err = s.q.CopyFrom(ctx, pgx.Identifier{"objects"},
		[]string{"seq", "coll", "id", "type", "spec_version", "version", "date_added", "is_first", "is_last", "raw"},
		pgx.CopyFromSlice(len(add), func(j int) ([]any, error) {
			o := &objs[add[j]]
			v := micros(o.Version)
			h := after[o.ID]
			return []any{seqs[j], pk, o.ID, o.Type, o.SpecVersion, v, micros(o.DateAdded), v == h.first, v == h.last, o.Raw}, nil
		}))
	if err != nil {
		return nil, fmt.Errorf("collection %s: storing objects: %w", collection, mapErr(err))
	}
	for j, i := range add {
		objs[i].Seq = seqs[j]
	}
	return out, nil
}

// lockHeads locks the object_heads row of every id, creating the missing
// ones with the batch's span, and returns the heads as they were before this
// batch and which ids it created. Rows are taken in id order, new ones by
// the INSERT and the rest by FOR UPDATE, so concurrent batches queue
// rather than deadlock, and in READ COMMITTED a locked row is the newest
// committed one. Existing heads are locked without being rewritten.
func lockHeads(ctx context.Context, q querier, pk int64, ids []string, span map[string]head) (before map[string]head, created map[string]bool, err error) {
	first, last := make([]int64, len(ids)), make([]int64, len(ids))
	for i, id := range ids {
		first[i], last[i] = span[id].first, span[id].last
	}
	before = make(map[string]head, len(ids))
	created = make(map[string]bool)
	rows, err := q.Query(ctx, `INSERT INTO object_heads(coll, id, first_version, last_version)
		SELECT $1, id, f, l FROM unnest($2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS u(id, f, l, ord) ORDER BY ord
		ON CONFLICT (coll, id) DO NOTHING
		RETURNING id`, pk, ids, first, last)
	if err != nil {
		return nil, nil, fmt.Errorf("creating object heads: %w", mapErr(err))
	}
	var id string
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error {
		created[id] = true
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("creating object heads: %w", mapErr(err))
	}
	if len(created) == len(ids) {
		return before, created, nil
	}
	existing := make([]string, 0, len(ids)-len(created))
	for _, id := range ids {
		if !created[id] {
			existing = append(existing, id)
		}
	}
	rows, err = q.Query(ctx, `SELECT id, first_version, last_version FROM object_heads
		WHERE coll = $1 AND id = ANY($2::text[]) ORDER BY id COLLATE "C" FOR UPDATE`, pk, existing)
	if err != nil {
		return nil, nil, fmt.Errorf("locking object heads: %w", mapErr(err))
	}
	var f, l *int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &f, &l}, func() error {
		if f != nil && l != nil {
			before[id] = head{first: *f, last: *l, ok: true}
		}
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("locking object heads: %w", mapErr(err))
	}
	return before, created, nil
}

// storedVersions returns which versions in objs are already stored. Only
// versions between an id's first and last can be, so a batch of new objects
// or of newer versions costs no lookup at all.
func storedVersions(ctx context.Context, q querier, pk int64, objs []store.Object, heads map[string]head) (map[versionKey]bool, error) {
	stored := make(map[versionKey]bool)
	var ids []string
	var vers []int64
	for i := range objs {
		h, v := heads[objs[i].ID], micros(objs[i].Version)
		if h.ok && v >= h.first && v <= h.last {
			ids, vers = append(ids, objs[i].ID), append(vers, v)
		}
	}
	if len(ids) == 0 {
		return stored, nil
	}
	rows, err := q.Query(ctx, `SELECT o.id, o.version FROM objects o
		JOIN unnest($2::text[], $3::bigint[]) AS u(id, v) ON o.coll = $1 AND o.id = u.id AND o.version = u.v`, pk, ids, vers)
	if err != nil {
		return nil, mapErr(err)
	}
	var k versionKey
	_, err = pgx.ForEachRow(rows, []any{&k.id, &k.version}, func() error {
		stored[k] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading stored versions: %w", mapErr(err))
	}
	return stored, nil
}

// where builds the filter shared by Query and Delete; it returns the SQL
// after WHERE and its arguments, the collection key being $1.
func where(pk int64, q store.ObjectQuery) (string, []any) {
	return whereColl(`coll = $1`, pk, q)
}

// byCollectionID selects the collection by its id ($1) within the query,
// saving the round trip that would resolve it first.
const byCollectionID = `coll = (SELECT pk FROM collections WHERE id = $1)`

// whereColl is where with the collection selected by cond on $1 = coll.
func whereColl(cond string, coll any, q store.ObjectQuery) (string, []any) {
	args := []any{coll}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	conds := []string{cond}
	if len(q.IDs) > 0 {
		conds = append(conds, `id = ANY(`+arg(q.IDs)+`::text[])`)
	}
	if len(q.Types) > 0 {
		conds = append(conds, `type = ANY(`+arg(q.Types)+`::text[])`)
	}
	if len(q.SpecVersions) > 0 {
		conds = append(conds, `spec_version = ANY(`+arg(q.SpecVersions)+`::text[])`)
	}
	v := q.Versions
	if v.IsZero() {
		v.Last = true
	}
	if !v.All {
		var ors []string
		if v.First {
			ors = append(ors, `is_first`)
		}
		if v.Last {
			ors = append(ors, `is_last`)
		}
		if len(v.At) > 0 {
			at := make([]int64, len(v.At))
			for i, t := range v.At {
				at[i] = micros(t)
			}
			ors = append(ors, `version = ANY(`+arg(at)+`::bigint[])`)
		}
		conds = append(conds, `(`+strings.Join(ors, ` OR `)+`)`)
	}
	cr := q.Credited
	if cr != nil {
		conds = append(conds, `id IN (SELECT c.object_id FROM agreement_credits c WHERE c.agreement_id = `+arg(cr.Agreement)+
			` AND c.party_id = `+arg(cr.Contributor)+` AND c.ord >= `+arg(cr.From)+` AND c.ord <= `+arg(cr.To)+`)`)
	}
	if r := q.Released; r != nil && (cr == nil || cr.Agreement != r.Agreement || cr.Contributor != r.Contributor || cr.To > r.UpTo) {
		// Only what give-to-get has released: the object's first
		// contribution under the agreement, by the contributor, within the
		// released prefix of its publish order (implied by a stretch of
		// that order that ends within it).
		conds = append(conds, `EXISTS (SELECT 1 FROM agreement_credits c WHERE c.agreement_id = `+arg(r.Agreement)+
			` AND c.object_id = objects.id AND c.party_id = `+arg(r.Contributor)+` AND c.ord <= `+arg(r.UpTo)+`)`)
		if r.Reach != nil {
			// Nothing after the reach is released: the walk of the
			// (coll, date_added, seq) index ends there rather than
			// checking every unreleased contribution.
			conds = append(conds, `(date_added, seq) <= (`+arg(micros(r.Reach.DateAdded))+`, `+arg(r.Reach.Seq)+`)`)
		}
	}
	if !q.AddedAfter.IsZero() {
		conds = append(conds, `date_added > `+arg(micros(q.AddedAfter)))
	}
	if !q.After.DateAdded.IsZero() || q.After.Seq != 0 {
		conds = append(conds, `(date_added, seq) > (`+arg(micros(q.After.DateAdded))+`, `+arg(q.After.Seq)+`)`)
	}
	return strings.Join(conds, ` AND `), args
}

func (s objects) Query(ctx context.Context, q store.ObjectQuery) (store.Page, error) {
	if q.Limit < 1 {
		return store.Page{}, fmt.Errorf("postgres: query limit %d must be at least 1", q.Limit)
	}
	// One round trip: the collection is resolved inside the query, and
	// only an empty page asks whether it exists at all.
	w, args := whereColl(byCollectionID, q.Collection, q)
	args = append(args, q.Limit+1)
	var o store.Object
	var v, added int64
	cols, dest := `seq, id, type, spec_version, version, date_added, raw`, []any{&o.Seq, &o.ID, &o.Type, &o.SpecVersion, &v, &added, &o.Raw}
	if q.RawOnly {
		cols, dest = `seq, date_added, raw`, []any{&o.Seq, &added, &o.Raw}
	}
	rows, err := s.q.Query(ctx, `SELECT `+cols+` FROM objects
		WHERE `+w+` ORDER BY date_added, seq LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return store.Page{}, mapErr(err)
	}
	page := store.Page{Objects: make([]store.Object, 0, min(q.Limit, 1024))}
	_, err = pgx.ForEachRow(rows, dest, func() error {
		if len(page.Objects) == q.Limit {
			page.More = true
			return nil
		}
		if !q.RawOnly {
			o.Version = fromMicros(v)
		}
		o.DateAdded = fromMicros(added)
		page.Objects = append(page.Objects, o)
		o.Raw = nil // the next row must not scan into this row's bytes
		return nil
	})
	if err != nil {
		return store.Page{}, mapErr(err)
	}
	if len(page.Objects) == 0 {
		if _, err := collPK(ctx, s.q, q.Collection); err != nil {
			return store.Page{}, err
		}
	}
	return page, nil
}

func (s objects) Delete(ctx context.Context, collection, id string, versions store.VersionFilter, specVersions []string) (int, error) {
	var n int
	err := atomic(ctx, handle(s), func(h handle) error {
		var err error
		n, err = objects(h).delete(ctx, collection, id, versions, specVersions)
		return err
	})
	return n, err
}

func (s objects) delete(ctx context.Context, collection, id string, versions store.VersionFilter, specVersions []string) (int, error) {
	pk, err := collPKForWrite(ctx, s.q, collection)
	if err != nil {
		return 0, err
	}
	// Lock the head first, as Put does, so a concurrent Put of this object
	// sees the deletion whole.
	var one int
	err = s.q.QueryRow(ctx, `SELECT 1 FROM object_heads WHERE coll = $1 AND id = $2 FOR UPDATE`, pk, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil // never stored: nothing to delete
	}
	if err != nil {
		return 0, mapErr(err)
	}
	w, args := where(pk, store.ObjectQuery{IDs: []string{id}, Versions: versions, SpecVersions: specVersions})
	tag, err := s.q.Exec(ctx, `DELETE FROM objects WHERE `+w, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	n := tag.RowsAffected()
	if n == 0 {
		return 0, nil
	}
	// Re-elect the first and last versions among what remains.
	b := &pgx.Batch{}
	b.Queue(`UPDATE object_heads SET
			first_version = (SELECT min(version) FROM objects WHERE coll = $1 AND id = $2),
			last_version  = (SELECT max(version) FROM objects WHERE coll = $1 AND id = $2)
		WHERE coll = $1 AND id = $2`, pk, id)
	b.Queue(`UPDATE objects o SET is_first = (o.version = h.first_version), is_last = (o.version = h.last_version)
		FROM object_heads h
		WHERE h.coll = $1 AND h.id = $2 AND o.coll = $1 AND o.id = $2
			AND (o.is_first <> (o.version = h.first_version) OR o.is_last <> (o.version = h.last_version))`, pk, id)
	if err := s.q.SendBatch(ctx, b).Close(); err != nil {
		return 0, mapErr(err)
	}
	return int(n), nil
}

func (s objects) Count(ctx context.Context, collection string) (int64, error) {
	var n int64
	err := s.q.QueryRow(ctx, `SELECT (SELECT count(*) FROM objects WHERE coll = c.pk) FROM collections c WHERE c.id = $1`, collection).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("collection %s: %w", collection, mapErr(err))
	}
	return n, nil
}

func (s objects) Claim(ctx context.Context, collection, owner string, ids []string) (map[string]string, error) {
	pk, err := collPKForWrite(ctx, s.q, collection)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// A concurrent claim of the same id waits on the primary key and then
	// does nothing; the SELECT after it sees whichever claim won.
	if _, err := s.q.Exec(ctx, `INSERT INTO object_owners(coll, id, party_id)
		SELECT $1, u.id, $2 FROM unnest($3::text[]) AS u(id) ORDER BY u.id ON CONFLICT DO NOTHING`, pk, owner, ids); err != nil {
		return nil, mapErr(err)
	}
	rows, err := s.q.Query(ctx, `SELECT id, party_id FROM object_owners WHERE coll = $1 AND id = ANY($2::text[])`, pk, ids)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, p string
		if err := rows.Scan(&id, &p); err != nil {
			return nil, mapErr(err)
		}
		out[id] = p
	}
	return out, mapErr(rows.Err())
}

func (s objects) Owner(ctx context.Context, collection, id string) (string, error) {
	var p string
	err := s.q.QueryRow(ctx, `SELECT o.party_id FROM object_owners o JOIN collections c ON c.pk = o.coll WHERE c.id = $1 AND o.id = $2`, collection, id).Scan(&p)
	if err != nil {
		return "", fmt.Errorf("owner of %s in collection %s: %w", id, collection, mapErr(err))
	}
	return p, nil
}
