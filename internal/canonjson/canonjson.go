// Package canonjson implements the JSON Canonicalization Scheme (JCS, RFC 8785):
// the one byte encoding of a JSON value that parley signs and hashes.
//
// # What it owns
//
// Canonicalize parses untrusted JSON strictly (RFC 8259 grammar plus the I-JSON
// rules RFC 8785 relies on) and writes it back with object members sorted by
// their UTF-16 code units, numbers in ECMAScript Number.prototype.toString form
// and strings escaped exactly as ECMAScript JSON.stringify does.
//
// # What it must never do
//
// It never repairs input: duplicate member names, invalid UTF-8, lone
// surrogates and numbers a IEEE-754 double cannot hold are refused, because two
// signers that "repaired" the same bytes differently would sign different
// documents while believing they agree. It imports nothing of parley.
package canonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every error Canonicalize returns. The more specific
// sentinels below wrap it too, so errors.Is(err, ErrInvalid) holds for all.
var ErrInvalid = errors.New("invalid JSON for canonicalization")

var (
	// ErrDuplicateKey: an object names the same member twice.
	ErrDuplicateKey = fmt.Errorf("%w: duplicate member name", ErrInvalid)
	// ErrInvalidUTF8: a string holds bytes that are not UTF-8.
	ErrInvalidUTF8 = fmt.Errorf("%w: invalid UTF-8", ErrInvalid)
	// ErrLoneSurrogate: a \u escape names half of a surrogate pair.
	ErrLoneSurrogate = fmt.Errorf("%w: lone surrogate", ErrInvalid)
	// ErrNumberRange: a number lies outside what an IEEE-754 double can hold.
	ErrNumberRange = fmt.Errorf("%w: number outside IEEE-754 double range", ErrInvalid)
	// ErrTooDeep: nesting exceeds MaxDepth.
	ErrTooDeep = fmt.Errorf("%w: nesting too deep", ErrInvalid)
)

// MaxDepth bounds nesting so hostile input cannot exhaust the stack.
const MaxDepth = 512

// Canonicalize returns the RFC 8785 canonical form of the JSON text in data.
// Errors wrap ErrInvalid (and one of the more specific sentinels when one
// applies) and name the byte offset of the problem.
func Canonicalize(data []byte) ([]byte, error) {
	p := parser{data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf(ErrInvalid, "unexpected data after the top-level value")
	}
	out := make([]byte, 0, len(data))
	return v.write(out), nil
}

// Marshal encodes v with encoding/json and canonicalizes the result: a
// convenience for signing Go values.
func Marshal(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonjson: marshal: %w", err)
	}
	return Canonicalize(raw)
}

// FormatNumber writes f the way ECMAScript Number.prototype.toString does
// (RFC 8785 section 3.2.2.3). It reports an error for NaN and infinities,
// which JSON cannot carry.
func FormatNumber(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("%w: %v", ErrNumberRange, f)
	}
	return string(AppendNumber(nil, f)), nil
}

// kind of a parsed value.
type kind uint8

const (
	kindLiteral kind = iota // null, true, false: kept as written
	kindNumber
	kindString
	kindArray
	kindObject
)

type value struct {
	kind    kind
	literal string
	num     float64
	str     string
	items   []value
	members []member
}

type member struct {
	name  string
	key16 []uint16 // the name in UTF-16 code units: the RFC 8785 sort key
	val   value
}

func (v value) write(out []byte) []byte {
	switch v.kind {
	case kindLiteral:
		return append(out, v.literal...)
	case kindNumber:
		return AppendNumber(out, v.num)
	case kindString:
		return AppendString(out, v.str)
	case kindArray:
		out = append(out, '[')
		for i, it := range v.items {
			if i > 0 {
				out = append(out, ',')
			}
			out = it.write(out)
		}
		return append(out, ']')
	default:
		out = append(out, '{')
		for i, m := range v.members {
			if i > 0 {
				out = append(out, ',')
			}
			out = AppendString(out, m.name)
			out = append(out, ':')
			out = m.val.write(out)
		}
		return append(out, '}')
	}
}

// AppendNumber appends finite f as ECMAScript Number::toString writes it
// (RFC 8785 section 3.2.2.3); stix's content fingerprint uses it too.
func AppendNumber(out []byte, f float64) []byte {
	if f == 0 {
		return append(out, '0') // also -0
	}
	if f < 0 {
		out = append(out, '-')
		f = -f
	}
	// Shortest round-trip digits, as ECMAScript requires; 'e' form gives
	// d.ddddde±XX from which we read the digits and the exponent.
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	ePos := bytes.IndexByte(e, 'e')
	digits := make([]byte, 0, 17)
	digits = append(digits, e[0])
	if ePos > 1 {
		digits = append(digits, e[2:ePos]...)
	}
	exp, _ := strconv.Atoi(string(e[ePos+1:]))
	k := len(digits)
	n := exp + 1 // value = digits × 10^(n-k)
	switch {
	case k <= n && n <= 21:
		out = append(out, digits...)
		for range n - k {
			out = append(out, '0')
		}
	case 0 < n && n <= 21:
		out = append(out, digits[:n]...)
		out = append(out, '.')
		out = append(out, digits[n:]...)
	case -6 < n && n <= 0:
		out = append(out, '0', '.')
		for range -n {
			out = append(out, '0')
		}
		out = append(out, digits...)
	default:
		out = append(out, digits[0])
		if k > 1 {
			out = append(out, '.')
			out = append(out, digits[1:]...)
		}
		out = append(out, 'e')
		if n-1 >= 0 {
			out = append(out, '+')
		}
		out = strconv.AppendInt(out, int64(n-1), 10)
	}
	return out
}

const hexDigits = "0123456789abcdef"

// AppendString appends s quoted as ECMAScript JSON.stringify does: only the
// quote, the backslash and control characters are escaped; everything else
// is literal UTF-8 (RFC 8785 section 3.2.2.2).
func AppendString(out []byte, s string) []byte {
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			out = append(out, '\\', '"')
		case '\\':
			out = append(out, '\\', '\\')
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			if c < 0x20 {
				out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			} else {
				out = append(out, c)
			}
		}
	}
	return append(out, '"')
}

type parser struct {
	data []byte
	pos  int
}

func (p *parser) errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", sentinel, p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (value, error) {
	if depth > MaxDepth {
		return value{}, p.errorf(ErrTooDeep, "more than %d levels", MaxDepth)
	}
	if p.pos >= len(p.data) {
		return value{}, p.errorf(ErrInvalid, "unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		return value{kind: kindString, str: s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		for _, lit := range [...]string{"null", "true", "false"} {
			if bytes.HasPrefix(p.data[p.pos:], []byte(lit)) {
				p.pos += len(lit)
				return value{kind: kindLiteral, literal: lit}, nil
			}
		}
		return value{}, p.errorf(ErrInvalid, "unexpected character %q", c)
	}
}

func (p *parser) object(depth int) (value, error) {
	p.pos++ // '{'
	v := value{kind: kindObject}
	seen := map[string]struct{}{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return value{}, p.errorf(ErrInvalid, "expected a member name")
		}
		start := p.pos
		name, err := p.string()
		if err != nil {
			return value{}, err
		}
		if _, dup := seen[name]; dup {
			p.pos = start
			return value{}, p.errorf(ErrDuplicateKey, "%q", name)
		}
		seen[name] = struct{}{}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return value{}, p.errorf(ErrInvalid, "expected ':' after member name")
		}
		p.pos++
		p.skipSpace()
		val, err := p.value(depth + 1)
		if err != nil {
			return value{}, err
		}
		v.members = append(v.members, member{name: name, key16: utf16.Encode([]rune(name)), val: val})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return value{}, p.errorf(ErrInvalid, "unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			slices.SortFunc(v.members, func(a, b member) int { return slices.Compare(a.key16, b.key16) })
			return v, nil
		default:
			return value{}, p.errorf(ErrInvalid, "expected ',' or '}' in object")
		}
	}
}

func (p *parser) array(depth int) (value, error) {
	p.pos++ // '['
	v := value{kind: kindArray}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		it, err := p.value(depth + 1)
		if err != nil {
			return value{}, err
		}
		v.items = append(v.items, it)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return value{}, p.errorf(ErrInvalid, "unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return value{}, p.errorf(ErrInvalid, "expected ',' or ']' in array")
		}
	}
}

// number scans an RFC 8259 number and converts it to a double.
func (p *parser) number() (value, error) {
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
		return value{}, p.errorf(ErrInvalid, "malformed number")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if !p.digits() {
			return value{}, p.errorf(ErrInvalid, "malformed number: digits expected after '.'")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if !p.digits() {
			return value{}, p.errorf(ErrInvalid, "malformed number: digits expected in exponent")
		}
	}
	text := string(d[start:p.pos])
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		p.pos = start
		return value{}, p.errorf(ErrNumberRange, "%s", text)
	}
	return value{kind: kindNumber, num: f}, nil
}

func (p *parser) digits() bool {
	start := p.pos
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
	}
	return p.pos > start
}

// string scans a JSON string starting at the opening quote and returns its
// decoded value.
func (p *parser) string() (string, error) {
	p.pos++ // opening quote
	var sb []byte
	for {
		if p.pos >= len(p.data) {
			return "", p.errorf(ErrInvalid, "unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(sb), nil
		case c == '\\':
			r, err := p.escape()
			if err != nil {
				return "", err
			}
			sb = utf8.AppendRune(sb, r)
		case c < 0x20:
			return "", p.errorf(ErrInvalid, "control character %#02x in string", c)
		case c < utf8.RuneSelf:
			sb = append(sb, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", p.errorf(ErrInvalidUTF8, "byte %#02x", c)
			}
			sb = append(sb, p.data[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
}

var simpleEscapes = map[byte]rune{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// escape decodes one backslash escape (a surrogate pair counts as one).
func (p *parser) escape() (rune, error) {
	if p.pos+1 >= len(p.data) {
		return 0, p.errorf(ErrInvalid, "unterminated escape")
	}
	c := p.data[p.pos+1]
	if r, ok := simpleEscapes[c]; ok {
		p.pos += 2
		return r, nil
	}
	if c != 'u' {
		return 0, p.errorf(ErrInvalid, "invalid escape \\%c", c)
	}
	r1, err := p.hex4()
	if err != nil {
		return 0, err
	}
	switch {
	case utf16.IsSurrogate(r1) && r1 < 0xdc00:
		if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
			at := p.pos
			r2, err := p.hex4()
			if err != nil {
				return 0, err
			}
			if r2 >= 0xdc00 && r2 <= 0xdfff {
				return utf16.DecodeRune(r1, r2), nil
			}
			p.pos = at
		}
		return 0, p.errorf(ErrLoneSurrogate, "high surrogate \\u%04x without a low one", r1)
	case utf16.IsSurrogate(r1):
		return 0, p.errorf(ErrLoneSurrogate, "low surrogate \\u%04x without a high one", r1)
	}
	return r1, nil
}

// hex4 reads "\uXXXX" at p.pos.
func (p *parser) hex4() (rune, error) {
	if p.pos+6 > len(p.data) {
		return 0, p.errorf(ErrInvalid, "truncated \\u escape")
	}
	n, err := strconv.ParseUint(string(p.data[p.pos+2:p.pos+6]), 16, 16)
	if err != nil {
		return 0, p.errorf(ErrInvalid, "invalid \\u escape %q", p.data[p.pos:p.pos+6])
	}
	p.pos += 6
	return rune(n), nil
}
