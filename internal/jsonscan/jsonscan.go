// Package jsonscan finds where one JSON value ends in a byte slice, checking
// on the way that it is exactly what encoding/json.Valid accepts: one pass,
// nothing decoded, copied or allocated (unless the value nests deeper than
// 64 containers). The TAXII server splits request envelopes with it and the
// client streams response pages with it.
//
// It must never accept what encoding/json refuses, nor refuse what it
// accepts within the caller's nesting limit (FuzzValue holds it to
// json.Valid). Like encoding/json it lets invalid UTF-8 in strings through.
//
// It reads a prefix of a stream too: when b ends inside a value, the answer
// is ErrShort, never a syntax error, so a caller may read more and scan
// again from the value's start.
package jsonscan

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxDepth is encoding/json's nesting limit: with it as the limit, Value's
// verdict is json.Valid's, deep nesting included.
const MaxDepth = 10000

// ErrShort: b ends inside the value, or right after a number (which more
// digits might continue). More input may complete it.
var ErrShort = errors.New("jsonscan: the input ends inside the value")

// SyntaxError is a malformed value: no continuation of b makes it valid.
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return "invalid JSON: " + e.Msg }

func bad(format string, args ...any) error { return &SyntaxError{fmt.Sprintf(format, args...)} }

// SkipSpace returns the index of the first byte at or after b[i] that is
// not JSON white space (len(b) if there is none).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// Value returns the index just past the JSON value that starts at b[i] (no
// white space before it). The value may hold containers nested maxDepth
// deep and no deeper: MaxDepth for json.Valid's verdict, less for a value
// that sits inside containers of the caller's, or for a caller that leaves
// deep values to a slower path. It fails with ErrShort or a *SyntaxError.
func Value(b []byte, i, maxDepth int) (end int, err error) {
	var buf [64]byte
	open := buf[:0] // the '{' or '[' of each container the value is inside
	member := false // a member's name and colon come first
	for {
		if member {
			if i >= len(b) {
				return 0, ErrShort
			}
			if b[i] != '"' {
				return 0, bad("object key: unexpected %q", b[i])
			}
			if i, err = String(b, i); err != nil {
				return 0, err
			}
			if i = SkipSpace(b, i); i >= len(b) {
				return 0, ErrShort
			}
			if b[i] != ':' {
				return 0, bad("after object key: unexpected %q", b[i])
			}
			i = SkipSpace(b, i+1)
			member = false
		}
		// A value starts at b[i].
		if i >= len(b) {
			return 0, ErrShort
		}
		switch c := b[i]; c {
		case '{', '[':
			if len(open) >= maxDepth {
				return 0, bad("exceeded max depth")
			}
			close := byte(']')
			if c == '{' {
				close = '}'
			}
			if i = SkipSpace(b, i+1); i >= len(b) {
				return 0, ErrShort
			}
			if b[i] == close {
				i++
				break
			}
			open = append(open, c)
			member = c == '{'
			continue
		case '"':
			if i, err = String(b, i); err != nil {
				return 0, err
			}
		case 't':
			if i, err = literal(b, i, "true"); err != nil {
				return 0, err
			}
		case 'f':
			if i, err = literal(b, i, "false"); err != nil {
				return 0, err
			}
		case 'n':
			if i, err = literal(b, i, "null"); err != nil {
				return 0, err
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if i, err = number(b, i); err != nil {
				return 0, err
			}
		default:
			return 0, bad("unexpected %q", c)
		}
		// A value ended at i: close containers until one goes on.
		for {
			if len(open) == 0 {
				return i, nil
			}
			if i = SkipSpace(b, i); i >= len(b) {
				return 0, ErrShort
			}
			top := open[len(open)-1]
			if b[i] == ',' {
				i = SkipSpace(b, i+1)
				member = top == '{'
				break
			}
			if top == '{' && b[i] != '}' {
				return 0, bad("after object value: unexpected %q", b[i])
			}
			if top == '[' && b[i] != ']' {
				return 0, bad("after array element: unexpected %q", b[i])
			}
			open = open[:len(open)-1]
			i++
		}
	}
}

// String returns the index just past the string that starts at
// b[i] == '"'. Like encoding/json it refuses control characters and bad
// escapes and lets invalid UTF-8 through (decoding replaces it). It steps
// over eight plain bytes at a time: strings are most of what it reads.
func String(b []byte, i int) (end int, err error) {
	i++
	for {
		// Eight bytes at a time while none of them is a quote, a
		// backslash or a control character.
		for i+8 <= len(b) && !special(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for ; ; i++ {
			if i >= len(b) {
				return 0, ErrShort
			}
			c := b[i]
			if c == '"' {
				return i + 1, nil
			}
			if c < 0x20 {
				return 0, bad("control character %#x in string", c)
			}
			if c == '\\' {
				break
			}
		}
		i++
		if i >= len(b) {
			return 0, ErrShort
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			for range 4 {
				i++
				if i >= len(b) {
					return 0, ErrShort
				}
				if !isHex(b[i]) {
					return 0, bad("bad \\u escape")
				}
			}
		default:
			return 0, bad("bad escape \\%c", b[i])
		}
		i++
	}
}

const ones, highs = 0x0101010101010101, 0x8080808080808080

// special reports whether any byte of w may be '"', '\\' or below 0x20
// (never false when one is): (x-ones)&^x&highs is non-zero when a byte of
// x is zero, and x^(ones*c) has a zero byte where x has c; (w-ones*0x20)&^w
// likewise finds a byte below 0x20.
func special(w uint64) bool {
	quote, backslash := w^(ones*'"'), w^(ones*'\\')
	return ((quote-ones)&^quote|(backslash-ones)&^backslash|(w-ones*0x20)&^w)&highs != 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	for k := range len(lit) {
		if i+k >= len(b) {
			break
		}
		if b[i+k] != lit[k] {
			return 0, bad("bad literal")
		}
	}
	return 0, ErrShort
}

// number returns the index just past the number that starts at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, ErrShort
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return 0, bad("bad number")
	}
	if i < len(b) && b[i] == '.' {
		n := digits(b, i+1)
		if n == i+1 {
			return 0, noDigit(b, n)
		}
		i = n
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		n := digits(b, i)
		if n == i {
			return 0, noDigit(b, n)
		}
		i = n
	}
	if i >= len(b) {
		return 0, ErrShort // more digits may follow
	}
	return i, nil
}

// noDigit is the failure where a digit must be at b[i].
func noDigit(b []byte, i int) error {
	if i >= len(b) {
		return ErrShort
	}
	return bad("bad number")
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
