package taxii

import (
	"bytes"
	"encoding/json"
)

// splitEnvelope is parseEnvelope's fast path for the common, well-formed
// envelope: one pass over the body that checks it is valid JSON while it
// finds each object, returned as a subslice of body, without decoding or
// copying anything. Whenever the body is anything but a valid envelope
// whose keys are objects (a non-empty array), more and next, each once and
// without escapes, it reports ok=false and the careful path decides, with
// its error messages; the two paths agree on everything the fast one
// accepts (FuzzSplitEnvelope checks it). The check is json.Valid's grammar
// (what the careful path's json.Unmarshal accepts), made in the same pass
// as the split instead of a pass of its own before it.
func splitEnvelope(body []byte) (objs []json.RawMessage, ok bool) {
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	i++
	var seenObjects, seenMore, seenNext bool
	for first := true; ; first = false {
		i = skipWS(body, i)
		if i >= len(body) {
			return nil, false
		}
		if body[i] == '}' {
			if first || !seenObjects || len(objs) == 0 || skipWS(body, i+1) != len(body) {
				return nil, false
			}
			return objs, true
		}
		if !first {
			if body[i] != ',' {
				return nil, false
			}
			i = skipWS(body, i+1)
		}
		if i >= len(body) || body[i] != '"' {
			return nil, false
		}
		end, ok := scanString(body, i)
		if !ok {
			return nil, false
		}
		key := body[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return nil, false
		}
		i = skipWS(body, end)
		if i >= len(body) || body[i] != ':' {
			return nil, false
		}
		i = skipWS(body, i+1)
		switch string(key) {
		case "objects":
			if seenObjects || i >= len(body) || body[i] != '[' {
				return nil, false
			}
			seenObjects = true
			i++
			for n := 0; ; n++ {
				i = skipWS(body, i)
				if i >= len(body) {
					return nil, false
				}
				if body[i] == ']' {
					i++
					break
				}
				if n > 0 {
					if body[i] != ',' {
						return nil, false
					}
					i = skipWS(body, i+1)
				}
				end, ok := scanValue(body, i)
				if !ok {
					return nil, false
				}
				objs = append(objs, body[i:end:end])
				i = end
			}
		case "more", "next":
			seen := &seenMore
			if key[0] == 'n' {
				seen = &seenNext
			}
			if *seen {
				return nil, false
			}
			*seen = true
			if i, ok = scanValue(body, i); !ok {
				return nil, false
			}
		default:
			return nil, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// maxScanDepth bounds the nesting scanValue follows; deeper JSON goes to
// the careful path (encoding/json refuses nesting beyond 10,000).
const maxScanDepth = 1000

// scanValue returns the index just past the JSON value starting at b[i],
// and false if there is none: exactly json.Valid's grammar (which, like
// encoding/json, does not require strings to be valid UTF-8).
func scanValue(b []byte, i int) (end int, ok bool) {
	var buf [64]byte
	open := buf[:0] // the '{' or '[' of each container the value is inside
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return 0, false
		}
		switch c := b[i]; c {
		case '{', '[':
			if len(open) == maxScanDepth {
				return 0, false
			}
			close := byte(']')
			if c == '{' {
				close = '}'
			}
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == close {
				i++
				break
			}
			open = append(open, c)
			if c == '{' {
				if i, ok = scanKey(b, i); !ok {
					return 0, false
				}
			}
			continue
		case '"':
			if i, ok = scanString(b, i); !ok {
				return 0, false
			}
		case 't':
			if i, ok = scanLiteral(b, i, "true"); !ok {
				return 0, false
			}
		case 'f':
			if i, ok = scanLiteral(b, i, "false"); !ok {
				return 0, false
			}
		case 'n':
			if i, ok = scanLiteral(b, i, "null"); !ok {
				return 0, false
			}
		default:
			if i, ok = scanNumber(b, i); !ok {
				return 0, false
			}
		}
		// A value ended at i: close containers until one goes on.
		for {
			if len(open) == 0 {
				return i, true
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, false
			}
			top := open[len(open)-1]
			if b[i] == ',' {
				i = skipWS(b, i+1)
				if top == '{' {
					if i, ok = scanKey(b, i); !ok {
						return 0, false
					}
				}
				break
			}
			if (top == '{' && b[i] != '}') || (top == '[' && b[i] != ']') {
				return 0, false
			}
			open = open[:len(open)-1]
			i++
		}
	}
}

// scanKey checks a member's key and colon at b[i] and returns the index of
// its value (past any white space).
func scanKey(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	i, ok := scanString(b, i)
	if !ok {
		return 0, false
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return 0, false
	}
	return skipWS(b, i+1), true
}

// scanString returns the index just past the string starting at
// b[i] == '"'.
func scanString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return 0, false
				}
				i += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// scanNumber returns the index just past the number starting at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		n := digits(b, i+1)
		if n == i+1 {
			return 0, false
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
			return 0, false
		}
		i = n
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
