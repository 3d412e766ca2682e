package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/parley-cti/parley/internal/store"
)

type objects handle

// collPK resolves a collection id to its integer key.
func collPK(ctx context.Context, q querier, id string) (int64, error) {
	var pk int64
	if err := q.QueryRowContext(ctx, `SELECT pk FROM collections WHERE id = ?`, id).Scan(&pk); err != nil {
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

// Rows per multi-row statement. SQLite allows 32766 parameters; 200 rows
// of 9 keep statements small to parse while cutting the per-statement cost
// of database/sql and the driver (most of Put's CPU when it ran one INSERT
// and one SELECT per object) by two orders of magnitude.
const (
	putChunk  = 200
	headChunk = 500
)

// head is what Put needs to know about one id: the smallest and largest
// version stored before this batch, and the smallest and largest after it.
type head struct {
	existed        bool
	oldMin, oldMax int64
	newMin, newMax int64
}

// versionKey names one stored version by its id's key, to match
// RETURNING rows to inputs.
type versionKey struct {
	key     int64
	version int64
}

func (s objects) put(ctx context.Context, collection string, objs []store.Object) ([]store.PutOutcome, error) {
	pk, err := collPK(ctx, s.w, collection)
	if err != nil {
		return nil, err
	}
	out := make([]store.PutOutcome, len(objs))
	if len(objs) == 0 {
		return out, nil
	}
	keys, fresh, err := stixKeys(ctx, s.w, objectIDs(objs), true)
	if err != nil {
		return nil, err
	}
	heads, err := s.heads(ctx, pk, objs, keys, fresh)
	if err != nil {
		return nil, err
	}
	// From here on versions of these ids may be stored, even if this Put
	// fails part way.
	memoOf(s.w).stored(objs)
	// Each row is flagged first/last against the whole batch, so that no
	// row inserted here needs updating afterwards.
	for i := range objs {
		v := micros(objs[i].Version)
		h := heads[objs[i].ID]
		h.newMin, h.newMax = min(h.newMin, v), max(h.newMax, v)
	}
	added := make(map[versionKey]int64, len(objs))
	insert := &chunked{q: s.w, full: putChunk, sql: insertSQL}
	defer insert.close()
	args := make([]any, 0, 10*putChunk)
	for lo := 0; lo < len(objs); lo += putChunk {
		chunk := objs[lo:min(lo+putChunk, len(objs))]
		args = args[:0]
		for i := range chunk {
			o := &chunk[i]
			v := micros(o.Version)
			h := heads[o.ID]
			args = append(args, pk, keys[o.ID], o.ID, o.Type, o.SpecVersion, v, micros(o.DateAdded), v == h.newMin, v == h.newMax, o.Raw)
		}
		rows, err := insert.query(ctx, len(chunk), args)
		if err != nil {
			return nil, mapErr(err)
		}
		for rows.Next() {
			var k versionKey
			var seq int64
			if err := rows.Scan(&seq, &k.key, &k.version); err != nil {
				rows.Close()
				return nil, mapErr(err)
			}
			added[k] = seq
		}
		if err := rows.Close(); err != nil {
			return nil, mapErr(err)
		}
		if err := rows.Err(); err != nil {
			return nil, mapErr(err)
		}
	}
	// The first input naming a version that was inserted gets it; any other
	// (already stored, or repeated in this batch) is a duplicate.
	for i := range objs {
		k := versionKey{keys[objs[i].ID], micros(objs[i].Version)}
		if seq, ok := added[k]; ok {
			objs[i].Seq = seq
			out[i] = store.Added
			delete(added, k)
		} else {
			out[i] = store.Duplicate
		}
	}
	// Versions stored before this batch lose their first/last flag when the
	// batch brought an older or newer one. Rare: only new versions of ids
	// already present.
	for id, h := range heads {
		if !h.existed {
			continue
		}
		if h.newMin < h.oldMin {
			if _, err := s.w.ExecContext(ctx, `UPDATE objects SET is_first = 0 WHERE coll = ? AND key = ? AND is_first = 1 AND version <> ?`, pk, keys[id], h.newMin); err != nil {
				return nil, mapErr(err)
			}
		}
		if h.newMax > h.oldMax {
			if _, err := s.w.ExecContext(ctx, `UPDATE objects SET is_last = 0 WHERE coll = ? AND key = ? AND is_last = 1 AND version <> ?`, pk, keys[id], h.newMax); err != nil {
				return nil, mapErr(err)
			}
		}
	}
	return out, nil
}

// heads looks up, in a few IN queries, the stored version range of every
// id in objs. keys holds each id's key; ids in fresh got theirs in this
// transaction, so no version of them is stored and they are not looked up.
func (s objects) heads(ctx context.Context, pk int64, objs []store.Object, keys map[string]int64, fresh map[string]bool) (map[string]*head, error) {
	heads := make(map[string]*head, len(objs))
	byKey := make(map[int64]*head, len(objs))
	known := make([]any, 0, len(objs))
	for i := range objs {
		id := objs[i].ID
		if _, ok := heads[id]; !ok {
			h := &head{newMin: math.MaxInt64, newMax: math.MinInt64}
			heads[id] = h
			if !fresh[id] {
				byKey[keys[id]] = h
				known = append(known, keys[id])
			}
		}
	}
	lookup := &chunked{q: s.w, full: headChunk, sql: func(n int) string {
		return `SELECT key, min(version), max(version) FROM objects WHERE coll = ? AND key IN (` + placeholders(n) + `) GROUP BY key`
	}}
	defer lookup.close()
	args := make([]any, 0, 1+headChunk)
	for lo := 0; lo < len(known); lo += headChunk {
		chunk := known[lo:min(lo+headChunk, len(known))]
		args = append(append(args[:0], pk), chunk...)
		rows, err := lookup.query(ctx, len(chunk), args)
		if err != nil {
			return nil, mapErr(err)
		}
		for rows.Next() {
			var key, lo, hi int64
			if err := rows.Scan(&key, &lo, &hi); err != nil {
				rows.Close()
				return nil, mapErr(err)
			}
			h := byKey[key]
			if h == nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: head lookup returned key %d that was not asked for", key)
			}
			h.existed, h.oldMin, h.oldMax = true, lo, hi
			h.newMin, h.newMax = lo, hi
		}
		if err := rows.Close(); err != nil {
			return nil, mapErr(err)
		}
		if err := rows.Err(); err != nil {
			return nil, mapErr(err)
		}
	}
	return heads, nil
}

// objectIDs returns the distinct ids of objs, in their first order.
func objectIDs(objs []store.Object) []string {
	seen := make(map[string]bool, len(objs))
	ids := make([]string, 0, len(objs))
	for i := range objs {
		if id := objs[i].ID; !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// stixKeys returns the compact key (stix_ids, migrations 24 and 38) of each of the
// distinct ids. With create, an id not known yet gets the next key, in
// the order given, and is in fresh too; without it, unknown ids are left
// out. The objects' and owners' b-trees are keyed by (coll, key), so that
// a new id appends to them: its key is larger than any stored.
func stixKeys(ctx context.Context, q querier, ids []string, create bool) (keys map[string]int64, fresh map[string]bool, err error) {
	keys = make(map[string]int64, len(ids))
	memo := memoOf(q)
	ask := ids
	if memo != nil {
		ask = make([]string, 0, len(ids))
		for _, id := range ids {
			k, ok := memo.keys[id]
			if !ok {
				ask = append(ask, id)
				continue
			}
			keys[id] = k
			if memo.fresh[id] {
				if fresh == nil {
					fresh = map[string]bool{}
				}
				fresh[id] = true
			}
		}
	}
	asked := ask
	// Every id is looked up first (stixids.go: by its hash, in two small-
	// entry tables); with create, those without a key get one. The writer
	// skips the ids its filter says have none (idfilter.go).
	look := ask
	if ids := idFilterOf(q); create && ids != nil {
		ids.f.want()
		if ids.usable() {
			look = make([]string, 0, len(ask))
			for _, id := range ask {
				if ids.mayHave(idHash(id)) {
					look = append(look, id)
				}
			}
		}
	}
	if err := lookupKeys(ctx, q, look, keys); err != nil {
		return nil, nil, err
	}
	var created []any
	if create {
		var unknown []string
		for _, id := range ask {
			if _, ok := keys[id]; !ok {
				unknown = append(unknown, id)
				created = append(created, id)
			}
		}
		if err := createKeys(ctx, q, unknown, keys); err != nil {
			return nil, nil, err
		}
	}
	if len(created) > 0 && fresh == nil {
		fresh = make(map[string]bool, len(created))
	}
	for _, id := range created {
		fresh[id.(string)] = true
	}
	if memo != nil {
		memo.learn(asked, keys, created)
	}
	return keys, fresh, nil
}

// keyMemo is what one member's turn of a group-commit transaction has
// learnt of stix_ids: the key of every id it looked up or created, and
// which of those it created and has stored no object version of yet. Put,
// the owner claim and the credits of one POST each need the keys of the
// same ids; with the memo only the first asks SQLite, and Put skips the
// version lookup of ids whose key is new. Nothing in a turn deletes a key
// or undoes part of the turn, so what the memo holds stays true until the
// turn ends; a turn undone, or a transaction lost, takes its memo with it.
type keyMemo struct {
	keys    map[string]int64
	fresh   map[string]bool
	claimed map[string]bool // ids this turn has claimed an owner of
	// uncredited holds the ids whose key this turn created and that no
	// Contribute of the turn has looked at yet: no credit row can name
	// such a key (credits are written only by Contribute, and a key is
	// never reused), so the first Contribute to see one takes it out
	// and skips its known-id lookup.
	uncredited map[string]bool
}

func newKeyMemo() *keyMemo {
	return &keyMemo{keys: map[string]int64{}, fresh: map[string]bool{}, claimed: map[string]bool{}, uncredited: map[string]bool{}}
}

// takeUncredited reports whether no credit row can name the key of id
// (see uncredited), and makes that false for the rest of the turn: the
// caller may credit it.
func (m *keyMemo) takeUncredited(id string) bool {
	if m == nil || !m.uncredited[id] {
		return false
	}
	delete(m.uncredited, id)
	return true
}

// idFilterOf returns the id filter of the transaction q belongs to, or nil.
func idFilterOf(q querier) *idTx {
	if m, ok := q.(memberQuerier); ok {
		return m.ids
	}
	return nil
}

// memoOf returns the memo of the turn q belongs to, or nil.
func memoOf(q querier) *keyMemo {
	if m, ok := q.(memberQuerier); ok {
		return m.memo
	}
	return nil
}

// learn records the keys of asked, of which created were new.
func (m *keyMemo) learn(asked []string, keys map[string]int64, created []any) {
	for _, id := range asked {
		if k, ok := keys[id]; ok {
			m.keys[id] = k
		}
	}
	for _, id := range created {
		m.fresh[id.(string)] = true
		m.uncredited[id.(string)] = true
	}
}

// stored records that versions of objs are stored: their ids are no
// longer fresh.
func (m *keyMemo) stored(objs []store.Object) {
	if m == nil || len(m.fresh) == 0 {
		return
	}
	for i := range objs {
		delete(m.fresh, objs[i].ID)
	}
}

// scanKeys runs the statement of c for n rows, whose result rows are
// (key, id), into keys.
func scanKeys(ctx context.Context, c *chunked, keys map[string]int64, n int, args []any) error {
	rows, err := c.query(ctx, n, args)
	if err != nil {
		return mapErr(err)
	}
	for rows.Next() {
		var key int64
		var id string
		if err := rows.Scan(&key, &id); err != nil {
			rows.Close()
			return mapErr(err)
		}
		keys[id] = key
	}
	if err := rows.Close(); err != nil {
		return mapErr(err)
	}
	return mapErr(rows.Err())
}

// insertSQL is a multi-row INSERT of n objects that skips stored versions
// and returns the rows it did insert, by key rather than id: no string
// to copy out of SQLite and hash per object.
func insertSQL(n int) string {
	const row = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	return `INSERT INTO objects(coll, key, id, type, spec_version, version, date_added, is_first, is_last, raw) VALUES ` +
		row + strings.Repeat(`, `+row, n-1) + ` ON CONFLICT(coll, key, version) DO NOTHING RETURNING seq, key, version`
}

// where builds the filter shared by Query and Delete; it returns the SQL
// after WHERE. coll is the SQL the coll column is compared with, and
// collArg its one parameter.
func where(coll string, collArg any, q store.ObjectQuery) (string, []any) {
	var b strings.Builder
	args := []any{collArg}
	b.WriteString(`coll = ` + coll)
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		b.WriteString(` AND ` + col + ` IN (?` + strings.Repeat(`, ?`, len(vals)-1) + `)`)
		for _, v := range vals {
			args = append(args, v)
		}
	}
	args = idIn(&b, args, `key`, q.IDs)
	in(`type`, q.Types)
	in(`spec_version`, q.SpecVersions)
	v := q.Versions
	if v.IsZero() {
		v.Last = true
	}
	if !v.All {
		var ors []string
		if v.First {
			ors = append(ors, `is_first = 1`)
		}
		if v.Last {
			ors = append(ors, `is_last = 1`)
		}
		if len(v.At) > 0 {
			ors = append(ors, `version IN (?`+strings.Repeat(`, ?`, len(v.At)-1)+`)`)
			for _, t := range v.At {
				args = append(args, micros(t))
			}
		}
		b.WriteString(` AND (` + strings.Join(ors, ` OR `) + `)`)
	}
	cr := q.Credited
	if cr != nil {
		// The stretch's keys, walked in order on agreement_credits_ord.
		b.WriteString(` AND key IN (SELECT key FROM agreement_credits WHERE ag = ` + creditName + ` AND pa = ` + creditName + ` AND ord >= ? AND ord <= ?)`)
		args = append(args, cr.Agreement, cr.Contributor, cr.From, cr.To)
	}
	if r := q.Released; r != nil && (cr == nil || cr.Agreement != r.Agreement || cr.Contributor != r.Contributor || cr.To > r.UpTo) {
		// Only what give-to-get has released: the object's first
		// contribution under the agreement, by the contributor, within the
		// released prefix of its publish order (implied by a stretch of
		// that order that ends within it).
		// "+c.ord" keeps the planner off the table's key (ag, pa, ord):
		// planned on it, a read by id walked the whole released prefix
		// for each row; the credit is one lookup in agreement_credits_key.
		b.WriteString(` AND EXISTS (SELECT 1 FROM agreement_credits c WHERE c.ag = ` + creditName + ` AND c.key = objects.key AND c.pa = ` + creditName + ` AND +c.ord <= ?)`)
		args = append(args, r.Agreement, r.Contributor, r.UpTo)
		if r.Reach != nil {
			// Nothing after the reach is released: the walk of the
			// (coll, date_added, seq) index ends there rather than
			// checking every unreleased contribution.
			b.WriteString(` AND (date_added, seq) <= (?, ?)`)
			args = append(args, micros(r.Reach.DateAdded), r.Reach.Seq)
		}
	}
	if !q.AddedAfter.IsZero() {
		b.WriteString(` AND date_added > ?`)
		args = append(args, micros(q.AddedAfter))
	}
	if !q.After.DateAdded.IsZero() || q.After.Seq != 0 {
		b.WriteString(` AND (date_added, seq) > (?, ?)`)
		args = append(args, micros(q.After.DateAdded), q.After.Seq)
	}
	return b.String(), args
}

// querySQL is the statement of Query and its arguments.
func querySQL(q store.ObjectQuery) (string, []any) {
	w, args := where(`(SELECT pk FROM collections WHERE id = ?)`, q.Collection, q)
	args = append(args, q.Limit+1)
	// Pages walk the (coll, date_added, seq) index; a short id list is
	// better served by the (coll, key, version) index and a sort. So is a
	// list no longer than the page (a feed page read by id): walking the
	// index, the page is done only at its limit+1'th match, which such a
	// list seldom has, so the walk went through the whole collection; by
	// id it costs the ids' versions and their sort, whatever the
	// collection holds.
	index := "objects_added"
	if len(q.IDs) > 0 && (len(q.IDs) <= 256 || len(q.IDs) <= q.Limit) {
		index = "objects_version"
	}
	if cr := q.Credited; cr != nil && cr.To-cr.From < int64(max(256, q.Limit)) {
		index = "objects_version"
	}
	cols := `seq, id, type, spec_version, version, date_added, raw`
	if q.RawOnly {
		cols = `seq, date_added, raw`
	}
	return `SELECT ` + cols + ` FROM objects INDEXED BY ` + index + `
		WHERE ` + w + ` ORDER BY date_added, seq LIMIT ?`, args
}

func (s objects) Query(ctx context.Context, q store.ObjectQuery) (store.Page, error) {
	if q.Limit < 1 {
		return store.Page{}, fmt.Errorf("sqlite: query limit %d must be at least 1", q.Limit)
	}
	// The collection is resolved inside the query rather than by a
	// statement of its own: a single-object GET is then one statement, and
	// only an empty page pays for telling "no such collection" apart.
	query, args := querySQL(q)
	rows, err := queryCached(ctx, s.r, query, args...)
	if err != nil {
		return store.Page{}, mapErr(err)
	}
	defer rows.Close()
	page := store.Page{Objects: make([]store.Object, 0, min(q.Limit, 1024))}
	for rows.Next() {
		if len(page.Objects) == q.Limit {
			page.More = true
			break
		}
		var o store.Object
		var v, added int64
		var err error
		if q.RawOnly {
			err = rows.Scan(&o.Seq, &added, &o.Raw)
		} else {
			err = rows.Scan(&o.Seq, &o.ID, &o.Type, &o.SpecVersion, &v, &added, &o.Raw)
			o.Version = fromMicros(v)
		}
		if err != nil {
			return store.Page{}, mapErr(err)
		}
		o.DateAdded = fromMicros(added)
		page.Objects = append(page.Objects, o)
	}
	if err := rows.Err(); err != nil {
		return store.Page{}, mapErr(err)
	}
	if len(page.Objects) == 0 {
		if _, err := collPK(ctx, s.r, q.Collection); err != nil {
			return store.Page{}, err
		}
	}
	return page, nil
}

// Prepared read statements, kept per read pool. Preparing is most of the
// CPU of a single-object GET on the pure-Go driver, which caches nothing
// itself. Only short statements are kept (the shapes a page or a GET by id
// produce, not long id lists), and at most maxCachedStmts of them, so the
// cache stays small even when tests open many databases; past the bound,
// statements are prepared per call as before.
const (
	maxCachedStmts = 64
	maxCachedArgs  = 8
)

type stmtKey struct {
	db    *sql.DB
	query string
}

var stmtCache struct {
	sync.Mutex
	m map[stmtKey]*sql.Stmt
}

// queryCached runs a read on q through a cached prepared statement when q
// is a read pool (not a transaction) and the statement is short.
func queryCached(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	g, ok := q.(guardedDB)
	if !ok || len(args) > maxCachedArgs {
		return q.QueryContext(ctx, query, args...)
	}
	if err := g.guard.Check(ctx); err != nil {
		return nil, err
	}
	db := g.db
	k := stmtKey{db, query}
	stmtCache.Lock()
	st := stmtCache.m[k]
	stmtCache.Unlock()
	if st == nil {
		stmtCache.Lock()
		full := len(stmtCache.m) >= maxCachedStmts
		stmtCache.Unlock()
		if full {
			return db.QueryContext(ctx, query, args...)
		}
		prepared, err := db.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		stmtCache.Lock()
		if stmtCache.m == nil {
			stmtCache.m = make(map[stmtKey]*sql.Stmt)
		}
		if st = stmtCache.m[k]; st == nil {
			// Another goroutine may have filled the cache meanwhile; the
			// bound is soft by at most the number of concurrent callers.
			st = prepared
			stmtCache.m[k] = st
		} else {
			prepared.Close()
		}
		stmtCache.Unlock()
	}
	return st.QueryContext(ctx, args...)
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
	pk, err := collPK(ctx, s.w, collection)
	if err != nil {
		return 0, err
	}
	keys, _, err := stixKeys(ctx, s.w, []string{id}, false)
	if err != nil {
		return 0, err
	}
	key, ok := keys[id]
	if !ok {
		return 0, nil // never stored anywhere
	}
	// The delete trigger notes each row's seq in search_gone, from which
	// the search index (searchdb.go) drops its entry.
	w, args := where(`?`, pk, store.ObjectQuery{Versions: versions, SpecVersions: specVersions})
	w += ` AND key = ?`
	args = append(args, key)
	res, err := s.w.ExecContext(ctx, `DELETE FROM objects WHERE `+w, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		// Re-elect the first and last versions among what remains.
		if _, err := s.w.ExecContext(ctx, `UPDATE objects SET
			is_first = (version = (SELECT min(version) FROM objects o2 WHERE o2.coll = objects.coll AND o2.key = objects.key)),
			is_last  = (version = (SELECT max(version) FROM objects o2 WHERE o2.coll = objects.coll AND o2.key = objects.key))
			WHERE coll = ? AND key = ?`, pk, key); err != nil {
			return 0, mapErr(err)
		}
	}
	return int(n), nil
}

func (s objects) Count(ctx context.Context, collection string) (int64, error) {
	pk, err := collPK(ctx, s.r, collection)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.r.QueryRowContext(ctx, `SELECT count(*) FROM objects WHERE coll = ?`, pk).Scan(&n)
	return n, mapErr(err)
}

func (s objects) Claim(ctx context.Context, collection, owner string, ids []string) (map[string]string, error) {
	var out map[string]string
	err := atomic(ctx, handle(s), func(h handle) error {
		var err error
		out, err = objects(h).claim(ctx, collection, owner, ids)
		return err
	})
	return out, err
}

func (s objects) claim(ctx context.Context, collection, owner string, ids []string) (map[string]string, error) {
	pk, err := collPK(ctx, s.w, collection)
	if err != nil {
		return nil, err
	}
	distinct := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			distinct = append(distinct, id)
		}
	}
	keys, fresh, err := stixKeys(ctx, s.w, distinct, true)
	if err != nil {
		return nil, err
	}
	// An id whose key is fresh (created in this turn; keys are never
	// deleted, so never reused) can have no owner row but the one this
	// turn inserts: unless the turn claimed it already, the claimant owns
	// it and its row need not be read back. An ingest of new objects then
	// reads no owner (the read was a sixth of the claim's CPU, issue 18).
	memo := memoOf(s.w)
	byKey := make(map[int64]string, len(keys))
	for id, k := range keys {
		byKey[k] = id
	}
	out := make(map[string]string, len(distinct))
	ask := make([]string, 0, len(distinct))
	insert := &chunked{q: s.w, full: headChunk, sql: func(n int) string {
		return `INSERT INTO object_owners(coll, key, party_id) VALUES (?, ?, ?)` + strings.Repeat(`, (?, ?, ?)`, n-1) + ` ON CONFLICT(coll, key) DO NOTHING`
	}}
	defer insert.close()
	lookup := &chunked{q: s.w, full: headChunk, sql: func(n int) string {
		return `SELECT key, party_id FROM object_owners WHERE coll = ? AND key IN (` + placeholders(n) + `)`
	}}
	defer lookup.close()
	args := make([]any, 0, 3*headChunk)
	for lo := 0; lo < len(distinct); lo += headChunk {
		chunk := distinct[lo:min(lo+headChunk, len(distinct))]
		args = args[:0]
		for _, id := range chunk {
			args = append(args, pk, keys[id], owner)
		}
		if err := insert.exec(ctx, len(chunk), args); err != nil {
			return nil, mapErr(err)
		}
		ask = ask[:0]
		for _, id := range chunk {
			if fresh[id] && (memo == nil || !memo.claimed[id]) {
				out[id] = owner
			} else {
				ask = append(ask, id)
			}
			if memo != nil {
				memo.claimed[id] = true
			}
		}
		if len(ask) == 0 {
			continue
		}
		args = args[:0]
		args = append(args, pk)
		for _, id := range ask {
			args = append(args, keys[id])
		}
		rows, err := lookup.query(ctx, len(ask), args)
		if err != nil {
			return nil, mapErr(err)
		}
		for rows.Next() {
			var key int64
			var p string
			if err := rows.Scan(&key, &p); err != nil {
				rows.Close()
				return nil, mapErr(err)
			}
			out[byKey[key]] = p
		}
		if err := rows.Close(); err != nil {
			return nil, mapErr(err)
		}
		if err := rows.Err(); err != nil {
			return nil, mapErr(err)
		}
	}
	return out, nil
}

func (s objects) Owner(ctx context.Context, collection, id string) (string, error) {
	var p string
	err := s.r.QueryRowContext(ctx, `SELECT o.party_id FROM object_owners o JOIN collections c ON c.pk = o.coll WHERE c.id = ? AND o.key = `+keyOfID, append([]any{collection}, keyOfIDArgs(id)...)...).Scan(&p)
	if err != nil {
		return "", fmt.Errorf("owner of %s in collection %s: %w", id, collection, mapErr(err))
	}
	return p, nil
}
