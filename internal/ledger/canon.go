package ledger

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// appendCanonical appends e's RFC 8785 encoding. It is a hand-written
// encoder for Entry's few value types, equal byte for byte to
// canonjson.Marshal (a fuzz test checks this) but several times faster,
// which matters because every state change appends an entry.
// e must be validated (valid UTF-8) and have a UTC time.
func appendCanonical(b []byte, e *Entry) []byte {
	b = append(b, '{')
	comma := false
	key := func(k string) {
		if comma {
			b = append(b, ',')
		}
		comma = true
		b = appendJSONString(b, k)
		b = append(b, ':')
	}
	// Keys in sorted order; all are ASCII so byte order is UTF-16 order.
	if e.Actor != "" {
		key("actor")
		b = appendJSONString(b, e.Actor)
	}
	if e.Agreement != "" {
		key("agreement")
		b = appendJSONString(b, e.Agreement)
	}
	if len(e.Attrs) > 0 {
		key("attrs")
		b = appendStringMap(b, e.Attrs)
	}
	if len(e.Digests) > 0 {
		key("digests")
		b = appendStringMap(b, e.Digests)
	}
	key("kind")
	b = appendJSONString(b, string(e.Kind))
	if e.Nonce != "" {
		key("nonce")
		b = appendJSONString(b, e.Nonce)
	}
	if len(e.Parties) > 0 {
		key("parties")
		b = append(b, '[')
		for i, p := range e.Parties {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, p)
		}
		b = append(b, ']')
	}
	key("subject")
	b = appendJSONString(b, e.Subject)
	key("time")
	b = append(b, '"')
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	key("v")
	b = strconv.AppendInt(b, int64(e.V), 10)
	return append(b, '}')
}

func appendStringMap(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareUTF16)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// compareUTF16 orders strings by UTF-16 code units, as RFC 8785 sorts keys.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := utf16Units(ra), utf16Units(rb)
			if ua[0] != ub[0] {
				return int(ua[0]) - int(ub[0])
			}
			return int(ua[1]) - int(ub[1])
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

func utf16Units(r rune) [2]uint16 {
	if r < 0x10000 {
		return [2]uint16{uint16(r), 0}
	}
	r1, r2 := utf16.EncodeRune(r)
	return [2]uint16{uint16(r1), uint16(r2)}
}

const hexDigits = "0123456789abcdef"

// appendJSONString escapes as RFC 8785 requires: only '"', '\\' and
// control characters, with the short forms where JSON has them.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
