package stix

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small strict JSON parser. encoding/json neither rejects duplicate keys
// nor bounds nesting cheaply, and decoding into map[string]any costs more
// than the whole validation budget; this one builds an ordered tree in one
// pass and reports byte offsets.

const (
	// MaxDepth bounds the nesting of arrays and objects in one object.
	MaxDepth = 64
	// MaxObjectSize bounds the bytes of one object given to ParseObject.
	MaxObjectSize = 8 << 20
)

type jsonKind uint8

const (
	jNull jsonKind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jsonKind) String() string {
	switch k {
	case jNull:
		return "null"
	case jBool:
		return "boolean"
	case jNumber:
		return "number"
	case jString:
		return "string"
	case jArray:
		return "array"
	default:
		return "object"
	}
}

// jvalue is one parsed JSON value. s holds a decoded string or the raw text
// of a number.
type jvalue struct {
	kind jsonKind
	b    bool
	s    string
	arr  []jvalue
	obj  []jmember
}

type jmember struct {
	key string
	val jvalue
}

// get returns the member named key of an object value.
func (v *jvalue) get(key string) (*jvalue, bool) {
	for i := range v.obj {
		if v.obj[i].key == key {
			return &v.obj[i].val, true
		}
	}
	return nil, false
}

type jsonError struct {
	off int
	msg string
}

func (e *jsonError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.off) }

type jparser struct {
	data []byte
	// src is one immutable copy of data: unescaped strings and numbers are
	// substrings of it, which saves an allocation per string.
	src string
	pos int
}

// parseJSON parses exactly one JSON value filling all of data (surrounding
// whitespace allowed).
func parseJSON(data []byte) (jvalue, error) {
	p := jparser{data: data, src: string(data)}
	p.skipWS()
	v, err := p.value(0)
	if err != nil {
		return jvalue{}, err
	}
	p.skipWS()
	if p.pos != len(p.data) {
		return jvalue{}, p.errf("unexpected data after the value")
	}
	return v, nil
}

func (p *jparser) errf(format string, args ...any) error {
	return &jsonError{off: p.pos, msg: fmt.Sprintf(format, args...)}
}

func (p *jparser) skipWS() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jparser) value(depth int) (jvalue, error) {
	if p.pos >= len(p.data) {
		return jvalue{}, p.errf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		return jvalue{kind: jString, s: s}, err
	case c == 't':
		return jvalue{kind: jBool, b: true}, p.literal("true")
	case c == 'f':
		return jvalue{kind: jBool}, p.literal("false")
	case c == 'n':
		return jvalue{kind: jNull}, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return jvalue{}, p.errf("invalid character %q looking for a value", rune(c))
	}
}

func (p *jparser) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return p.errf("invalid literal, expected %s", lit)
	}
	p.pos += len(lit)
	return nil
}

func (p *jparser) object(depth int) (jvalue, error) {
	if depth > MaxDepth {
		return jvalue{}, p.errf("nesting deeper than %d", MaxDepth)
	}
	p.pos++ // '{'
	v := jvalue{kind: jObject, obj: make([]jmember, 0, 12)}
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	var seen map[string]struct{} // only for large objects; small ones scan
	for {
		p.skipWS()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return jvalue{}, p.errf("expected a property name in double quotes")
		}
		keyOff := p.pos
		key, err := p.str()
		if err != nil {
			return jvalue{}, err
		}
		if len(v.obj) >= 16 {
			if seen == nil {
				seen = make(map[string]struct{}, 32)
				for _, m := range v.obj {
					seen[m.key] = struct{}{}
				}
			}
			if _, dup := seen[key]; dup {
				return jvalue{}, &jsonError{off: keyOff, msg: fmt.Sprintf("duplicate key %q", key)}
			}
			seen[key] = struct{}{}
		} else {
			for i := range v.obj {
				if v.obj[i].key == key {
					return jvalue{}, &jsonError{off: keyOff, msg: fmt.Sprintf("duplicate key %q", key)}
				}
			}
		}
		p.skipWS()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return jvalue{}, p.errf("expected ':' after a property name")
		}
		p.pos++
		p.skipWS()
		val, err := p.value(depth)
		if err != nil {
			return jvalue{}, err
		}
		v.obj = append(v.obj, jmember{key: key, val: val})
		p.skipWS()
		if p.pos >= len(p.data) {
			return jvalue{}, p.errf("unexpected end of input in an object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return jvalue{}, p.errf("expected ',' or '}' in an object")
		}
	}
}

func (p *jparser) array(depth int) (jvalue, error) {
	if depth > MaxDepth {
		return jvalue{}, p.errf("nesting deeper than %d", MaxDepth)
	}
	p.pos++ // '['
	v := jvalue{kind: jArray}
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		v.arr = []jvalue{}
		return v, nil
	}
	for {
		p.skipWS()
		val, err := p.value(depth)
		if err != nil {
			return jvalue{}, err
		}
		v.arr = append(v.arr, val)
		p.skipWS()
		if p.pos >= len(p.data) {
			return jvalue{}, p.errf("unexpected end of input in an array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return jvalue{}, p.errf("expected ',' or ']' in an array")
		}
	}
}

func (p *jparser) number() (jvalue, error) {
	start := p.pos
	d := p.data
	if p.pos < len(d) && d[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(d) && d[p.pos] == '0':
		p.pos++
	case p.pos < len(d) && d[p.pos] >= '1' && d[p.pos] <= '9':
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
	default:
		return jvalue{}, p.errf("invalid number")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		n := p.pos
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == n {
			return jvalue{}, p.errf("invalid number: no digits after '.'")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		n := p.pos
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == n {
			return jvalue{}, p.errf("invalid number: no digits in exponent")
		}
	}
	return jvalue{kind: jNumber, s: p.src[start:p.pos]}, nil
}

// str parses a JSON string starting at the opening quote and returns it
// decoded. Invalid UTF-8, control characters and lone surrogates are errors.
func (p *jparser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	d := p.data
	// Fast path: no escapes, ASCII only.
	for p.pos < len(d) {
		c := d[p.pos]
		if c == '"' {
			s := p.src[start:p.pos]
			p.pos++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
		p.pos++
	}
	buf := make([]byte, 0, p.pos-start+16)
	buf = append(buf, d[start:p.pos]...)
	for {
		if p.pos >= len(d) {
			return "", p.errf("unterminated string")
		}
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.errf("control character in string")
		case c == '\\':
			if p.pos+1 >= len(d) {
				return "", p.errf("unterminated string")
			}
			e := d[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.errf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					// A high surrogate must be followed by an escaped low one.
					if r >= 0xDC00 || p.pos+1 >= len(d) || d[p.pos] != '\\' || d[p.pos+1] != 'u' {
						return "", p.errf("lone surrogate in \\u escape")
					}
					p.pos += 2
					r2, ok := p.hex4()
					if !ok {
						return "", p.errf("invalid \\u escape")
					}
					r = utf16.DecodeRune(r, r2)
					if r == utf8.RuneError {
						return "", p.errf("lone surrogate in \\u escape")
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", p.errf("invalid escape \\%c", e)
			}
		case c < 0x80:
			buf = append(buf, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(d[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", p.errf("invalid UTF-8 in string")
			}
			buf = append(buf, d[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
}

func (p *jparser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.pos += 4
	return rune(n), true
}
