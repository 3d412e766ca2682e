package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

// Search answers store.SearchQuery. Without words or facets it walks the
// (coll, date_added, seq) index backwards; with them it asks the GIN index
// of migration 14 for the collection's matches.
func (s objects) Search(ctx context.Context, q store.SearchQuery) (store.Page, error) {
	if q.Limit < 1 {
		return store.Page{}, fmt.Errorf("postgres: search limit %d must be at least 1", q.Limit)
	}
	pk, err := collPK(ctx, s.q, q.Collection)
	if err != nil {
		return store.Page{}, err
	}
	args := []any{pk}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var b strings.Builder
	if q.Indexed() {
		b.WriteString(`SELECT o.seq, o.id, o.type, o.spec_version, o.version, o.date_added, o.raw
			FROM object_search f JOIN objects o ON o.seq = f.seq
			WHERE o.coll = $1 AND o.is_last AND f.doc @@ to_tsquery('simple', ` + arg(tsQuery(pk, q)) + `)`)
		if q.Before.Seq != 0 {
			b.WriteString(` AND f.seq < ` + arg(q.Before.Seq))
		}
	} else {
		b.WriteString(`SELECT o.seq, o.id, o.type, o.spec_version, o.version, o.date_added, o.raw
			FROM objects o WHERE o.coll = $1 AND o.is_last`)
		if !q.Before.DateAdded.IsZero() || q.Before.Seq != 0 {
			b.WriteString(` AND (o.date_added, o.seq) < (` + arg(micros(q.Before.DateAdded)) + `, ` + arg(q.Before.Seq) + `)`)
		}
	}
	if len(q.IDs) > 0 {
		b.WriteString(` AND o.id = ANY(` + arg(q.IDs) + `::text[])`)
	}
	if r := q.Released; r != nil {
		// The same bound as Query's (where).
		b.WriteString(` AND EXISTS (SELECT 1 FROM agreement_credits c WHERE c.agreement_id = ` + arg(r.Agreement) +
			` AND c.object_id = o.id AND c.party_id = ` + arg(r.Contributor) + ` AND c.ord <= ` + arg(r.UpTo) + `)`)
		if r.Reach != nil {
			b.WriteString(` AND (o.date_added, o.seq) <= (` + arg(micros(r.Reach.DateAdded)) + `, ` + arg(r.Reach.Seq) + `)`)
		}
	}
	if !q.AddedFrom.IsZero() {
		b.WriteString(` AND o.date_added >= ` + arg(micros(q.AddedFrom)))
	}
	if !q.AddedBefore.IsZero() {
		b.WriteString(` AND o.date_added < ` + arg(micros(q.AddedBefore)))
	}
	if q.Indexed() {
		b.WriteString(` ORDER BY f.seq DESC`)
	} else {
		b.WriteString(` ORDER BY o.date_added DESC, o.seq DESC`)
	}
	b.WriteString(` LIMIT ` + arg(q.Limit+1))
	rows, err := s.q.Query(ctx, b.String(), args...)
	if err != nil {
		return store.Page{}, mapErr(err)
	}
	page := store.Page{Objects: make([]store.Object, 0, min(q.Limit, 1024))}
	var o store.Object
	var v, added int64
	_, err = pgx.ForEachRow(rows, []any{&o.Seq, &o.ID, &o.Type, &o.SpecVersion, &v, &added, &o.Raw}, func() error {
		if len(page.Objects) == q.Limit {
			page.More = true
			return nil
		}
		o.Version, o.DateAdded = fromMicros(v), fromMicros(added)
		page.Objects = append(page.Objects, o)
		o.Raw = nil // the next row must not scan into this row's bytes
		return nil
	})
	if err != nil {
		return store.Page{}, mapErr(err)
	}
	return page, nil
}

// tsQuery is the tsquery text of q's words (weight A, each word's runs in
// sequence) and facets (weight B), within collection pk. Every token is a
// run of letters and digits (store.SearchWords) or hexadecimal
// (store.FacetToken), so nothing a user types is read as tsquery syntax.
func tsQuery(pk int64, q store.SearchQuery) string {
	terms := []string{`c` + strconv.FormatInt(pk, 10) + `:B`}
	for _, w := range store.SearchWords(q.Text) {
		parts := make([]string, len(w))
		for i, p := range w {
			parts[i] = p + `:A`
		}
		terms = append(terms, `(`+strings.Join(parts, ` <-> `)+`)`)
	}
	facet := func(kind byte, v string) string { return strings.ToLower(store.FacetToken(kind, v)) + `:B` }
	anyOf := func(kind byte, vals []string) {
		if len(vals) == 0 {
			return
		}
		ors := make([]string, len(vals))
		for i, v := range vals {
			ors[i] = facet(kind, v)
		}
		terms = append(terms, `(`+strings.Join(ors, ` | `)+`)`)
	}
	anyOf(store.FacetType, q.Types)
	for _, l := range q.Labels {
		terms = append(terms, facet(store.FacetLabel, l))
	}
	anyOf(store.FacetMarking, q.Markings)
	anyOf(store.FacetRef, q.Refs)
	return strings.Join(terms, ` & `)
}
