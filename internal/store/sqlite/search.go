package sqlite

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/parley-cti/parley/internal/store"
)

// Search answers store.SearchQuery. Without words or facets it walks the
// (coll, date_added, seq) index backwards from the cursor (or from the
// release's reach); with them it walks the FTS5 index of migration 14 by
// rowid (= seq) downwards, the collection's facet first, so that other
// collections' matches are never visited. The FTS5 index is in search.db,
// attached to the read pool's connections as "search" (searchdb.go).
func (s objects) Search(ctx context.Context, q store.SearchQuery) (store.Page, error) {
	if q.Limit < 1 {
		return store.Page{}, fmt.Errorf("sqlite: search limit %d must be at least 1", q.Limit)
	}
	pk, err := collPK(ctx, s.r, q.Collection)
	if err != nil {
		return store.Page{}, err
	}
	var b strings.Builder
	var args []any
	if q.Indexed() {
		// The index is filled behind the writer (searchdb.go): it first
		// takes in everything committed before this search.
		if s.search == nil {
			return store.Page{}, errSearchInTx
		}
		if err := s.search.catchUp(ctx); err != nil {
			return store.Page{}, err
		}
		b.WriteString(`SELECT o.seq, o.id, o.type, o.spec_version, o.version, o.date_added, o.raw
			FROM object_search f CROSS JOIN objects o ON o.seq = f.rowid
			WHERE object_search MATCH ? AND o.coll = ? AND o.is_last = 1`)
		args = append(args, ftsQuery(pk, q), pk)
		if q.Before.Seq != 0 {
			b.WriteString(` AND f.rowid < ?`)
			args = append(args, q.Before.Seq)
		}
	} else {
		index := "objects_added"
		if len(q.IDs) > 0 && len(q.IDs) <= 256 {
			index = "objects_version"
		}
		b.WriteString(`SELECT o.seq, o.id, o.type, o.spec_version, o.version, o.date_added, o.raw
			FROM objects o INDEXED BY ` + index + ` WHERE o.coll = ? AND o.is_last = 1`)
		args = append(args, pk)
		if !q.Before.DateAdded.IsZero() || q.Before.Seq != 0 {
			// The scalar bound lets the planner start the backward walk
			// at the cursor; the row value then settles ties.
			b.WriteString(` AND o.date_added <= ? AND (o.date_added, o.seq) < (?, ?)`)
			args = append(args, micros(q.Before.DateAdded), micros(q.Before.DateAdded), q.Before.Seq)
		}
	}
	args = idIn(&b, args, `o.key`, q.IDs)
	if r := q.Released; r != nil {
		// The same bound as Query's (where): the first contribution by the
		// contributor within the released prefix, and nothing past the
		// reach. The unary + keeps the planner on agreement_credits_key
		// (one lookup per row) rather than the table's key (ag, pa, ord),
		// whose range is the whole released prefix.
		b.WriteString(` AND EXISTS (SELECT 1 FROM agreement_credits c WHERE c.ag = ` + creditName + ` AND c.key = o.key AND c.pa = ` + creditName + ` AND +c.ord <= ?)`)
		args = append(args, r.Agreement, r.Contributor, r.UpTo)
		if r.Reach != nil {
			b.WriteString(` AND (o.date_added, o.seq) <= (?, ?)`)
			args = append(args, micros(r.Reach.DateAdded), r.Reach.Seq)
		}
	}
	if !q.AddedFrom.IsZero() {
		b.WriteString(` AND o.date_added >= ?`)
		args = append(args, micros(q.AddedFrom))
	}
	if !q.AddedBefore.IsZero() {
		b.WriteString(` AND o.date_added < ?`)
		args = append(args, micros(q.AddedBefore))
	}
	if q.Indexed() {
		b.WriteString(` ORDER BY f.rowid DESC LIMIT ?`)
	} else {
		b.WriteString(` ORDER BY o.date_added DESC, o.seq DESC LIMIT ?`)
	}
	args = append(args, q.Limit+1)
	rows, err := s.r.QueryContext(ctx, b.String(), args...)
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
		if err := rows.Scan(&o.Seq, &o.ID, &o.Type, &o.SpecVersion, &v, &added, &o.Raw); err != nil {
			return store.Page{}, mapErr(err)
		}
		o.Version, o.DateAdded = fromMicros(v), fromMicros(added)
		page.Objects = append(page.Objects, o)
	}
	if err := rows.Err(); err != nil {
		return store.Page{}, mapErr(err)
	}
	return page, nil
}

// idIn appends "AND col IN (keys of ids)" if ids are given: col is an
// objects key column, and an id's key is looked up by its hash
// (stixids.go), once per id.
func idIn(b *strings.Builder, args []any, col string, ids []string) []any {
	if len(ids) == 0 {
		return args
	}
	b.WriteString(` AND ` + col + ` IN (` + keysOfIDs(len(ids)) + `)`)
	return keysOfIDsArgs(args, ids)
}

// ftsQuery is the FTS5 expression of q's words and facets, within
// collection pk. Words are quoted phrases (any quote inside doubled), so
// nothing a user types is read as FTS5 syntax; facet tokens are
// hexadecimal.
func ftsQuery(pk int64, q store.SearchQuery) string {
	// The collection's facet keeps other collections' matches of a
	// common term out of the walk; a reference is rare enough on its own,
	// and ANDing it with a collection's facet costs that facet's whole
	// doclist.
	var terms []string
	if len(q.Refs) == 0 {
		terms = append(terms, `facets : C`+strconv.FormatInt(pk, 10))
	}
	for _, w := range store.SearchWords(q.Text) {
		terms = append(terms, `body : "`+strings.ReplaceAll(strings.Join(w, " "), `"`, `""`)+`"`)
	}
	anyOf := func(kind byte, vals []string) {
		if len(vals) == 0 {
			return
		}
		ors := make([]string, len(vals))
		for i, v := range vals {
			ors[i] = `facets : ` + store.FacetToken(kind, v)
		}
		terms = append(terms, `(`+strings.Join(ors, ` OR `)+`)`)
	}
	anyOf(store.FacetType, q.Types)
	for _, l := range q.Labels {
		terms = append(terms, `facets : `+store.FacetToken(store.FacetLabel, l))
	}
	anyOf(store.FacetMarking, q.Markings)
	anyOf(store.FacetRef, q.Refs)
	return strings.Join(terms, ` AND `)
}
