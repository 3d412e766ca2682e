package sqlite

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The search index's columns. The indexer (searchdb.go) computes each
// object's two columns of object_search in Go, for every object whose JSON
// is plain — an object whose indexed members are strings or lists of
// strings, strict RFC 8259, valid UTF-8, no escape SQLite might decode
// differently — and with SQLite's JSON functions (searchColumnsJSONB, the
// SQL of the trigger that once kept the index) for any other, so the index
// holds exactly what that trigger wrote (TestSearchColumnsGoMatchSQL,
// FuzzSearchColumns).

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
