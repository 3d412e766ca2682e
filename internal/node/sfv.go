package node

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file reads and writes the few Structured Field Values (RFC 8941)
// that HTTP Message Signatures need: dictionaries whose members are items
// or inner lists, with parameters. Signature-Input, Signature and
// Content-Digest are all dictionaries. Parsing is strict, as RFC 8941 asks
// of parsers: anything it does not grammatically accept is an error, so
// two readers can never disagree about what a signed header says.

// errSyntax: a structured field that does not parse.
var errSyntax = errors.New("structured field syntax")

// sfToken is a Token bare item; a Go string is a String bare item.
type sfToken string

// sfDecimal is a Decimal bare item kept as its canonical text.
type sfDecimal string

// sfParam is one parameter of an item or inner list.
type sfParam struct {
	Key   string
	Value any // int64, sfDecimal, string, sfToken, []byte or bool
}

type sfParams []sfParam

// get returns the value of the parameter named key.
func (ps sfParams) get(key string) (any, bool) {
	for _, p := range ps {
		if p.Key == key {
			return p.Value, true
		}
	}
	return nil, false
}

// set replaces or appends (RFC 8941: a repeated key keeps its first place
// and takes the last value).
func (ps sfParams) set(key string, v any) sfParams {
	for i := range ps {
		if ps[i].Key == key {
			ps[i].Value = v
			return ps
		}
	}
	return append(ps, sfParam{key, v})
}

// sfItem is a bare item with its parameters.
type sfItem struct {
	Value  any
	Params sfParams
}

// sfInnerList is a parenthesised list of items with its own parameters.
type sfInnerList struct {
	Items  []sfItem
	Params sfParams
}

// sfMember is one dictionary member: exactly one of Item and List is set.
type sfMember struct {
	Key  string
	Item *sfItem
	List *sfInnerList
}

type sfDict []sfMember

func (d sfDict) get(key string) (sfMember, bool) {
	for _, m := range d {
		if m.Key == key {
			return m, true
		}
	}
	return sfMember{}, false
}

// parseDict parses a whole field value as a Dictionary.
func parseDict(s string) (sfDict, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var d sfDict
	for !p.eof() {
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		m := sfMember{Key: key}
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				l, err := p.innerList()
				if err != nil {
					return nil, err
				}
				m.List = &l
			} else {
				it, err := p.item()
				if err != nil {
					return nil, err
				}
				m.Item = &it
			}
		} else {
			ps, err := p.params()
			if err != nil {
				return nil, err
			}
			m.Item = &sfItem{Value: true, Params: ps}
		}
		replaced := false
		for i := range d {
			if d[i].Key == key {
				d[i], replaced = m, true
			}
		}
		if !replaced {
			d = append(d, m)
		}
		p.skipOWS()
		if p.eof() {
			return d, nil
		}
		if p.peek() != ',' {
			return nil, p.fail("want ',' between members")
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return nil, p.fail("trailing ','")
		}
	}
	return d, nil
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *sfParser) fail(why string) error {
	return fmt.Errorf("%w at byte %d: %s", errSyntax, p.i, why)
}

func (p *sfParser) skipSP() {
	for p.peek() == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for c := p.peek(); c == ' ' || c == '\t'; c = p.peek() {
		p.i++
	}
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

// isTChar is RFC 9110's tchar.
func isTChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *sfParser) key() (string, error) {
	c := p.peek()
	if !isLCAlpha(c) && c != '*' {
		return "", p.fail("a key starts with a lowercase letter or '*'")
	}
	start := p.i
	for c := p.peek(); isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*'; c = p.peek() {
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) params() (sfParams, error) {
	var ps sfParams
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		var v any = true
		if p.peek() == '=' {
			p.i++
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		ps = ps.set(k, v)
	}
	return ps, nil
}

func (p *sfParser) item() (sfItem, error) {
	v, err := p.bareItem()
	if err != nil {
		return sfItem{}, err
	}
	ps, err := p.params()
	if err != nil {
		return sfItem{}, err
	}
	return sfItem{Value: v, Params: ps}, nil
}

func (p *sfParser) innerList() (sfInnerList, error) {
	p.i++ // '('
	var l sfInnerList
	for !p.eof() {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			ps, err := p.params()
			if err != nil {
				return sfInnerList{}, err
			}
			l.Params = ps
			return l, nil
		}
		it, err := p.item()
		if err != nil {
			return sfInnerList{}, err
		}
		l.Items = append(l.Items, it)
		if c := p.peek(); c != ' ' && c != ')' {
			return sfInnerList{}, p.fail("want ' ' or ')' after an inner list item")
		}
	}
	return sfInnerList{}, p.fail("unterminated inner list")
}

func (p *sfParser) bareItem() (any, error) {
	switch c := p.peek(); {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == ':':
		return p.bytes()
	case c == '?':
		p.i++
		switch p.peek() {
		case '1':
			p.i++
			return true, nil
		case '0':
			p.i++
			return false, nil
		}
		return nil, p.fail("a boolean is ?0 or ?1")
	case isAlpha(c) || c == '*':
		start := p.i
		p.i++
		for c := p.peek(); isTChar(c) || c == ':' || c == '/'; c = p.peek() {
			p.i++
		}
		return sfToken(p.s[start:p.i]), nil
	}
	return nil, p.fail("not a bare item")
}

func (p *sfParser) number() (any, error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	if !isDigit(p.peek()) {
		return nil, p.fail("a number needs a digit")
	}
	digits, dot := 0, -1
	for c := p.peek(); isDigit(c) || c == '.'; c = p.peek() {
		if c == '.' {
			if dot >= 0 || digits > 12 {
				return nil, p.fail("malformed decimal")
			}
			dot = digits
		} else {
			digits++
		}
		p.i++
		if dot < 0 && digits > 15 || dot >= 0 && digits > 15 {
			return nil, p.fail("number too long")
		}
	}
	text := p.s[start:p.i]
	if dot < 0 {
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, p.fail("malformed integer")
		}
		return n, nil
	}
	if frac := digits - dot; frac < 1 || frac > 3 {
		return nil, p.fail("a decimal has one to three fractional digits")
	}
	// Canonical text: no trailing zeros past the first fractional digit,
	// no "-0.0" distinct from "0.0".
	t := strings.TrimRight(text, "0")
	if strings.HasSuffix(t, ".") {
		t += "0"
	}
	if strings.Trim(t, "-0.") == "" {
		t = "0.0"
	}
	return sfDecimal(t), nil
}

func (p *sfParser) str() (any, error) {
	p.i++ // '"'
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if n := p.peek(); n == '"' || n == '\\' {
				b.WriteByte(n)
				p.i++
				continue
			}
			return nil, p.fail("a string escapes only '\"' and '\\'")
		case c == '"':
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return nil, p.fail("a string holds printable ASCII only")
		}
		b.WriteByte(c)
	}
	return nil, p.fail("unterminated string")
}

func (p *sfParser) bytes() (any, error) {
	p.i++ // ':'
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return nil, p.fail("unterminated byte sequence")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(p.s[p.i : p.i+end])
	if err != nil {
		return nil, p.fail("a byte sequence is standard base64 with padding")
	}
	p.i += end + 1
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// Serialization (RFC 8941 section 4.1). Values the parser cannot produce
// are not written, so serialize never fails on parsed input; values built
// by this package are all valid.

func serializeDict(d sfDict) string {
	var b strings.Builder
	for i, m := range d {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.Key)
		switch {
		case m.List != nil:
			b.WriteByte('=')
			writeInnerList(&b, *m.List)
		case m.Item.Value == true:
			writeParams(&b, m.Item.Params)
		default:
			b.WriteByte('=')
			writeItem(&b, *m.Item)
		}
	}
	return b.String()
}

// serializeMemberValue writes a member's value as RFC 9421's key parameter
// takes it: the item or inner list, never its key.
func serializeMemberValue(m sfMember) string {
	var b strings.Builder
	if m.List != nil {
		writeInnerList(&b, *m.List)
	} else {
		writeItem(&b, *m.Item)
	}
	return b.String()
}

func serializeInnerList(l sfInnerList) string {
	var b strings.Builder
	writeInnerList(&b, l)
	return b.String()
}

func serializeItem(it sfItem) string {
	var b strings.Builder
	writeItem(&b, it)
	return b.String()
}

func writeInnerList(b *strings.Builder, l sfInnerList) {
	b.WriteByte('(')
	for i, it := range l.Items {
		if i > 0 {
			b.WriteByte(' ')
		}
		writeItem(b, it)
	}
	b.WriteByte(')')
	writeParams(b, l.Params)
}

func writeItem(b *strings.Builder, it sfItem) {
	writeBare(b, it.Value)
	writeParams(b, it.Params)
}

func writeParams(b *strings.Builder, ps sfParams) {
	for _, p := range ps {
		b.WriteByte(';')
		b.WriteString(p.Key)
		if p.Value != true {
			b.WriteByte('=')
			writeBare(b, p.Value)
		}
	}
}

func writeBare(b *strings.Builder, v any) {
	switch v := v.(type) {
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case sfDecimal:
		b.WriteString(string(v))
	case string:
		b.WriteByte('"')
		for i := 0; i < len(v); i++ {
			if v[i] == '"' || v[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(v[i])
		}
		b.WriteByte('"')
	case sfToken:
		b.WriteString(string(v))
	case []byte:
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(v))
		b.WriteByte(':')
	case bool:
		if v {
			b.WriteString("?1")
		} else {
			b.WriteString("?0")
		}
	}
}
