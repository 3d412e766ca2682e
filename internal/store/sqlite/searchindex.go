package sqlite

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parley-cti/parley/internal/store"
)

// The search index (object_search, migration 14) is written by Put, not by
// a trigger (migration 30). The trigger computed each row's words and
// facets with SQLite's JSON functions: eight of a POST's ~30 µs per object
// in Put, in the writer's critical section (issue 18). Put computes them
// here in Go instead, for every object whose JSON is plain — an object
// whose indexed members are strings or lists of strings, strict RFC 8259,
// valid UTF-8, no escape SQLite might decode differently — and runs the
// trigger's own SQL (searchColumnsJSONB) for any other, so the index holds
// exactly what the trigger wrote (TestSearchColumnsGoMatchSQL,
// FuzzSearchColumns).

// searchChunk rows per multi-row INSERT into object_search: a POST's
// whole envelope of 1,000 in one statement (see searchBatch).
const searchChunk = 1000

// searchAheadMin is the fewest objects whose search columns Put computes
// ahead, on a goroutine of their own (searchAhead).
const searchAheadMin = 64

// searchCols are one object's search columns computed ahead: done when
// computed, ok when plain (else SQL computes them).
type searchCols struct {
	body, facets string
	ok, done     bool
}

// searchAhead starts computing, on another goroutine, the search columns
// of the objects of collection pk whose id is fresh (certain to be stored
// unless repeated in the batch), and returns the wait for them; nil for a
// batch too small to be worth it. The writer meanwhile runs the batch's
// SQL: the columns were 4 % of ingest's CPU inside the single writer
// (issue 18). The goroutine reads only the objects' Type and Raw and the
// fresh map, which nothing writes while it runs.
func searchAhead(pk int64, objs []store.Object, fresh map[string]bool) func() []searchCols {
	if len(objs) < searchAheadMin || len(fresh) < searchAheadMin {
		return nil
	}
	cols := make([]searchCols, len(objs))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range objs {
			if fresh[objs[i].ID] {
				body, facets, ok := searchColumnsGo(pk, objs[i].Type, objs[i].Raw)
				cols[i] = searchCols{body: body, facets: facets, ok: ok, done: true}
			}
		}
	}()
	return func() []searchCols {
		<-done
		return cols
	}
}

// indexForSearch adds to object_search the row of every object Put
// stored (out[i] == store.Added, objs[i].Seq set), with the columns
// computed ahead where ahead (if not nil) has them. Inside a group-commit
// transaction the rows computed in Go wait in the transaction's
// searchBatch and are inserted just before its COMMIT.
func indexForSearch(ctx context.Context, q querier, pk int64, objs []store.Object, out []store.PutOutcome, ahead []searchCols) error {
	batch, deferred := &searchBatch{}, false
	if m, ok := q.(memberQuerier); ok && m.search != nil {
		batch, deferred = m.search, true
	}
	var other []int64
	for i := range objs {
		if out[i] != store.Added {
			continue
		}
		var body, facets string
		var ok bool
		if ahead != nil && ahead[i].done {
			body, facets, ok = ahead[i].body, ahead[i].facets, ahead[i].ok
		} else {
			body, facets, ok = searchColumnsGo(pk, objs[i].Type, objs[i].Raw)
		}
		if !ok {
			other = append(other, objs[i].Seq)
			continue
		}
		batch.rows = append(batch.rows, searchRow{objs[i].Seq, body, facets})
	}
	if !deferred {
		if err := batch.flush(ctx, q); err != nil {
			return err
		}
	}
	for _, seq := range other {
		if _, err := q.ExecContext(ctx, `INSERT INTO object_search(rowid, body, facets) SELECT s, `+searchColumnsJSONB+`
			FROM (SELECT seq AS s, coll AS k, type AS ty,
				CASE WHEN json_valid(CAST(raw AS TEXT)) THEN jsonb(CAST(raw AS TEXT)) END AS j FROM objects WHERE seq = ?)`, seq); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// searchBatch holds the object_search rows that the members of one
// group-commit transaction have computed and not yet inserted. FTS5 writes
// its pending terms out as a new segment of its index at every statement
// savepoint (each multi-row INSERT, each member's SAVEPOINT), and the
// segments' merging grows with their number: inserting a POST's rows 200
// at a time, and each member of a group apart, had made the search index
// a fifth of ingest's CPU at a million objects (issue 18). So Put leaves
// its rows here and the leader inserts them all, one statement per
// searchChunk rows, just before COMMIT: one segment per transaction.
//
// The rows are in the index before anything reads or deletes it: a
// Search or a Delete inside the transaction flushes the batch first (the
// delete trigger must find the rows it removes). A member rolled back to
// its savepoint takes its own rows out, and puts back as pending those
// of earlier members that a flush during its turn had inserted (the
// rollback undid that insert too).
type searchBatch struct {
	rows    []searchRow
	flushed int // rows[:flushed] are in object_search
}

type searchRow struct {
	seq          int64
	body, facets string
}

// mark is the batch's state at the start of a member's turn.
type searchMark struct{ rows, flushed int }

func (b *searchBatch) mark() searchMark { return searchMark{len(b.rows), b.flushed} }

// undo returns the batch to m after the member's savepoint was rolled
// back.
func (b *searchBatch) undo(m searchMark) {
	b.rows, b.flushed = b.rows[:m.rows], m.flushed
}

// flush inserts the pending rows through q.
func (b *searchBatch) flush(ctx context.Context, q querier) error {
	pending := b.rows[b.flushed:]
	if len(pending) == 0 {
		return nil
	}
	insert := &chunked{q: q, full: searchChunk, sql: func(n int) string {
		return `INSERT INTO object_search(rowid, body, facets) VALUES (?, ?, ?)` + strings.Repeat(`, (?, ?, ?)`, n-1)
	}}
	defer insert.close()
	args := make([]any, 0, 3*min(len(pending), searchChunk))
	for lo := 0; lo < len(pending); lo += searchChunk {
		chunk := pending[lo:min(lo+searchChunk, len(pending))]
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r.seq, r.body, r.facets)
		}
		if err := insert.exec(ctx, len(chunk), args); err != nil {
			return mapErr(err)
		}
	}
	b.flushed = len(b.rows)
	return nil
}

// flushSearch inserts the pending search rows of q's transaction, if any:
// before anything reads object_search or deletes objects in it.
func flushSearch(ctx context.Context, q querier) error {
	if m, ok := q.(memberQuerier); ok && m.search != nil {
		return m.search.flush(ctx, q)
	}
	return nil
}

// Members the index reads, in the order searchColumnsJSONB writes their
// facets.
const (
	sName = iota
	sAliases
	sDescription
	sPattern
	sLabels
	sMarkingRefs
	sGranular
	sSourceRef
	sTargetRef
	sSightingOf
	sObjectRefs
	sWhereSighted
	sObservedData
	sMembers
)

var searchMembers = map[string]int{
	"name": sName, "aliases": sAliases, "description": sDescription, "pattern": sPattern,
	"labels": sLabels, "object_marking_refs": sMarkingRefs, "granular_markings": sGranular,
	"source_ref": sSourceRef, "target_ref": sTargetRef, "sighting_of_ref": sSightingOf,
	"object_refs": sObjectRefs, "where_sighted_refs": sWhereSighted, "observed_data_refs": sObservedData,
}

// searchColumnsGo computes searchColumnsJSONB's two columns for an object of
// collection pk and type typ, or reports false when raw is not plain (see
// above) and SQL must compute them.
func searchColumnsGo(pk int64, typ string, raw []byte) (body, facets string, ok bool) {
	if !utf8.Valid(raw) {
		return "", "", false
	}
	p := searchScan{b: raw}
	var vals [sMembers][]string
	var seen [sMembers]bool
	p.ws()
	if !p.eat('{') {
		return "", "", false
	}
	p.ws()
	if !p.eat('}') {
		for {
			p.ws()
			key, ok := p.name()
			if !ok {
				return "", "", false
			}
			p.ws()
			if !p.eat(':') {
				return "", "", false
			}
			p.ws()
			m, indexed := searchMembers[string(key)]
			switch {
			case !indexed:
				ok = p.skip(1)
			case seen[m]:
				return "", "", false // SQLite reads the first of duplicates
			case m == sGranular:
				seen[m] = true
				vals[m], ok = p.markingRefs()
			case m == sName || m == sDescription || m == sPattern:
				seen[m] = true
				var s string
				s, ok = p.str(true)
				vals[m] = []string{s}
			default:
				seen[m] = true
				vals[m], ok = p.strings()
			}
			if !ok {
				return "", "", false
			}
			p.ws()
			if p.eat('}') {
				break
			}
			if !p.eat(',') {
				return "", "", false
			}
		}
	}
	p.ws()
	if p.i != len(p.b) {
		return "", "", false
	}
	var b strings.Builder
	one := func(m int) {
		if len(vals[m]) > 0 {
			b.WriteString(vals[m][0])
		}
	}
	one(sName)
	b.WriteByte(' ')
	b.WriteString(strings.Join(vals[sAliases], " "))
	b.WriteByte(' ')
	one(sDescription)
	b.WriteByte(' ')
	one(sPattern)
	body = b.String()
	if utf8.RuneCountInString(body) > 65536 {
		n := 0
		for i := range body {
			if n == 65536 {
				body = body[:i]
				break
			}
			n++
		}
	}
	// The facets in one buffer of their size (at most), converted once.
	n := 1 + 20 + 2 + 2*len(typ)
	for m, prefix := range facetPrefixes {
		if prefix == "" {
			continue
		}
		for _, v := range vals[m] {
			n += len(prefix) + 2*len(v)
		}
	}
	f := make([]byte, 0, n)
	f = append(f, 'C')
	f = strconv.AppendInt(f, pk, 10)
	f = append(f, " T"...)
	f = appendHex(f, typ)
	for m, prefix := range facetPrefixes {
		if prefix == "" {
			continue
		}
		for _, v := range vals[m] {
			f = append(f, prefix...)
			f = appendHex(f, v)
		}
	}
	return body, string(f), true
}

// facetPrefixes are the facet tokens' prefixes of the members that have
// them, in the order searchColumnsJSONB writes them.
var facetPrefixes = [...]string{sLabels: " L", sMarkingRefs: " M", sGranular: " M", sSourceRef: " R", sTargetRef: " R",
	sSightingOf: " R", sObjectRefs: " R", sWhereSighted: " R", sObservedData: " R"}

// appendHex appends s as SQLite's hex() writes it: upper-case, two digits
// a byte.
func appendHex(b []byte, s string) []byte {
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		b = append(b, digits[s[i]>>4], digits[s[i]&15])
	}
	return b
}

// searchScan is a strict RFC 8259 scanner over one object's JSON. Where it
// is unsure SQLite would read a value the same way it reports false.
type searchScan struct {
	b []byte
	i int
}

// maxSearchDepth bounds nesting well below SQLite's own limit (1,000).
const maxSearchDepth = 64

func (p *searchScan) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *searchScan) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string. With escapes false a string holding any escape is
// refused (member names); with it true the simple escapes and \u of a
// character other than NUL and the surrogates are decoded.
func (p *searchScan) str(escapes bool) (string, bool) {
	start, end, escaped, ok := p.scanStr()
	if !ok || escaped && !escapes {
		return "", false
	}
	if !escaped {
		return string(p.b[start:end]), true
	}
	return unescape(p.b[start:end]), true
}

// scanStr reads a string, checking it as RFC 8259 requires (and refusing
// \u0000 and lone surrogates, as this scanner always has), and returns
// the bounds of its contents and whether they hold an escape. It builds nothing: most strings are
// skipped or compared, and only kept ones are copied (str).
func (p *searchScan) scanStr() (start, end int, escaped, ok bool) {
	if !p.eat('"') {
		return 0, 0, false, false
	}
	start = p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return start, p.i - 1, escaped, true
		case c < 0x20:
			return 0, 0, false, false
		case c != '\\':
			p.i++
			continue
		}
		escaped = true
		if p.i+1 >= len(p.b) {
			return 0, 0, false, false
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if p.i+4 > len(p.b) {
				return 0, 0, false, false
			}
			r, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
			if err != nil || r == 0 || (r >= 0xD800 && r <= 0xDFFF) {
				return 0, 0, false, false
			}
			p.i += 4
		default:
			return 0, 0, false, false
		}
	}
	return 0, 0, false, false
}

// unescape decodes the contents of a string scanStr has checked.
func unescape(b []byte) string {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch b[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, _ := strconv.ParseUint(string(b[i+1:i+5]), 16, 32)
			out = utf8.AppendRune(out, rune(r))
			i += 4
		default: // '"', '\\', '/'
			out = append(out, b[i])
		}
	}
	return string(out)
}

// name reads a member name, refusing one with any escape, as str(false)
// does, but returns it in place: most names are looked up and dropped.
func (p *searchScan) name() ([]byte, bool) {
	start, end, escaped, ok := p.scanStr()
	if !ok || escaped {
		return nil, false
	}
	return p.b[start:end], true
}

// skipStr reads a string that is not kept, accepting what str(true)
// accepts, without building it.
func (p *searchScan) skipStr() bool {
	_, _, _, ok := p.scanStr()
	return ok
}

// strings reads a string (one value) or an array of strings.
func (p *searchScan) strings() ([]string, bool) {
	if p.i < len(p.b) && p.b[p.i] == '"' {
		s, ok := p.str(true)
		return []string{s}, ok
	}
	if !p.eat('[') {
		return nil, false
	}
	var out []string
	p.ws()
	if p.eat(']') {
		return out, true
	}
	for {
		p.ws()
		s, ok := p.str(true)
		if !ok {
			return nil, false
		}
		out = append(out, s)
		p.ws()
		if p.eat(']') {
			return out, true
		}
		if !p.eat(',') {
			return nil, false
		}
	}
}

// markingRefs reads granular_markings, an array of objects, into each
// one's marking_ref ("" where it has none, as SQLite's hex(NULL)).
func (p *searchScan) markingRefs() ([]string, bool) {
	if !p.eat('[') {
		return nil, false
	}
	var out []string
	p.ws()
	if p.eat(']') {
		return out, true
	}
	for {
		p.ws()
		if !p.eat('{') {
			return nil, false
		}
		ref, seen := "", false
		p.ws()
		if !p.eat('}') {
			for {
				p.ws()
				key, ok := p.name()
				if !ok {
					return nil, false
				}
				p.ws()
				if !p.eat(':') {
					return nil, false
				}
				p.ws()
				if string(key) == "marking_ref" {
					if seen {
						return nil, false
					}
					seen = true
					if ref, ok = p.str(true); !ok {
						return nil, false
					}
				} else if !p.skip(3) {
					return nil, false
				}
				p.ws()
				if p.eat('}') {
					break
				}
				if !p.eat(',') {
					return nil, false
				}
			}
		}
		out = append(out, ref)
		p.ws()
		if p.eat(']') {
			return out, true
		}
		if !p.eat(',') {
			return nil, false
		}
	}
}

// skip reads any value at nesting depth.
func (p *searchScan) skip(depth int) bool {
	if depth > maxSearchDepth || p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.skipStr()
	case c == '{':
		p.i++
		p.ws()
		if p.eat('}') {
			return true
		}
		for {
			p.ws()
			if !p.skipStr() {
				return false
			}
			p.ws()
			if !p.eat(':') {
				return false
			}
			p.ws()
			if !p.skip(depth + 1) {
				return false
			}
			p.ws()
			if p.eat('}') {
				return true
			}
			if !p.eat(',') {
				return false
			}
		}
	case c == '[':
		p.i++
		p.ws()
		if p.eat(']') {
			return true
		}
		for {
			p.ws()
			if !p.skip(depth + 1) {
				return false
			}
			p.ws()
			if p.eat(']') {
				return true
			}
			if !p.eat(',') {
				return false
			}
		}
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	default:
		return p.number()
	}
}

func (p *searchScan) literal(lit string) bool {
	if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
		p.i += len(lit)
		return true
	}
	return false
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *searchScan) number() bool {
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	p.eat('-')
	if p.eat('0') {
		// no further integer digits
	} else if digits() == 0 {
		return false
	}
	if p.eat('.') && digits() == 0 {
		return false
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if !p.eat('+') {
			p.eat('-')
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
