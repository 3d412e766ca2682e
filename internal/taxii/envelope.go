package taxii

import (
	"bytes"
	"encoding/json"
)

// splitEnvelope is parseEnvelope's fast path for the common, well-formed
// envelope: one validity pass over the body, then a structural scan that
// returns each object as a subslice of body, without decoding or copying
// anything. Whenever the body is anything but a valid envelope whose keys
// are objects (a non-empty array), more and next, each once and without
// escapes, it reports ok=false and the careful path decides, with its
// error messages; the two paths agree on everything the fast one accepts
// (FuzzSplitEnvelope checks it).
func splitEnvelope(body []byte) (objs []json.RawMessage, ok bool) {
	if !json.Valid(body) {
		return nil, false
	}
	// From here on body is valid JSON, so the scan cannot run off its end
	// inside a value.
	i := skipWS(body, 0)
	if body[i] != '{' {
		return nil, false
	}
	i++
	var seenObjects, seenMore, seenNext bool
	for {
		i = skipWS(body, i)
		switch body[i] {
		case '}':
			if !seenObjects || len(objs) == 0 || skipWS(body, i+1) != len(body) {
				return nil, false
			}
			return objs, true
		case ',':
			i = skipWS(body, i+1)
		}
		if body[i] != '"' {
			return nil, false
		}
		end := stringEnd(body, i)
		key := body[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return nil, false
		}
		i = skipWS(body, end) + 1 // past ':'
		i = skipWS(body, i)
		switch string(key) {
		case "objects":
			if seenObjects || body[i] != '[' {
				return nil, false
			}
			seenObjects = true
			i++
			for {
				i = skipWS(body, i)
				if body[i] == ']' {
					i++
					break
				}
				if body[i] == ',' {
					i = skipWS(body, i+1)
				}
				end := valueEnd(body, i)
				objs = append(objs, body[i:end:end])
				i = end
			}
		case "more":
			if seenMore {
				return nil, false
			}
			seenMore = true
			i = valueEnd(body, i)
		case "next":
			if seenNext {
				return nil, false
			}
			seenNext = true
			i = valueEnd(body, i)
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

// stringEnd returns the index just past the string starting at b[i] == '"'.
func stringEnd(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) && b[i] != ',' && b[i] != ']' && b[i] != '}' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
