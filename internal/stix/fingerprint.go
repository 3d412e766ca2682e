package stix

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"

	"github.com/parley-cti/parley/internal/canonjson"
)

// Fingerprint identifies what an object says, whatever it is called and
// whoever says it: the SHA-256 of its content in canonical form. Two objects
// with the same fingerprint carry the same intelligence, so give-to-get
// counts it once.
//
// The content is the object without the properties that describe the
// record rather than the intelligence, normalized so that trivial edits do
// not make a copy look new:
//
//   - dropped: id, spec_version, created, modified, created_by_ref,
//     revoked, labels, confidence, lang, external_references,
//     object_marking_refs, granular_markings, extensions, and every
//     top-level custom property (x_…). They are bookkeeping, or free for
//     anyone to vary (a nonce in x_note or a label would otherwise mint a
//     new fingerprint for the same content);
//   - every string: surrounding white space trimmed, inner runs of white
//     space made one space, lower case;
//   - every list: a set — members sorted by their canonical encoding,
//     repeats dropped;
//   - the result: canonical JSON (RFC 8785), hashed with SHA-256 after the
//     prefix "parley-stix-content-v1\n".
//
// An indicator is its pattern: its content is only type, pattern_type and
// the pattern (a STIX pattern in the normalized form Pattern.String gives),
// so a pattern already given under another name, description or validity
// is no new intelligence.
type Fingerprint [sha256.Size]byte

// fingerprintDomain separates these hashes from every other SHA-256 parley
// computes, and versions the normalization.
const fingerprintDomain = "parley-stix-content-v1\n"

// bookkeeping are the top-level properties a fingerprint leaves out.
var bookkeeping = map[string]bool{
	"id": true, "spec_version": true, "created": true, "modified": true, "created_by_ref": true,
	"revoked": true, "labels": true, "confidence": true, "lang": true, "external_references": true,
	"object_marking_refs": true, "granular_markings": true, "extensions": true,
}

// ContentFingerprint parses raw (one JSON object) and returns its
// fingerprint. It checks only that raw is one JSON object with a string
// type; ParseObject validates and sets Object.Fingerprint too.
func ContentFingerprint(raw []byte) (Fingerprint, error) {
	root, err := parseJSON(raw)
	if err != nil {
		return Fingerprint{}, &ValidationError{Reason: "not JSON: " + err.Error(), kind: ErrNotJSON}
	}
	if root.kind != jObject {
		return Fingerprint{}, &ValidationError{Reason: "expected a JSON object, got " + root.kind.String()}
	}
	if t, ok := root.get("type"); !ok || t.kind != jString {
		return Fingerprint{}, &ValidationError{Reason: "object has no string type"}
	}
	return fingerprintOf(&root, nil), nil
}

// fingerprintOf computes the fingerprint of a parsed object; pattern, when
// not nil, is its STIX pattern already parsed by validation.
func fingerprintOf(root *jvalue, pattern *Pattern) Fingerprint {
	typ, _ := root.get("type")
	content := jvalue{kind: jObject}
	if typ.s == "indicator" {
		content.obj = append(content.obj, jmember{"type", *typ})
		pt, _ := root.get("pattern_type")
		pat, _ := root.get("pattern")
		if pt != nil && pat != nil && pt.kind == jString && pat.kind == jString {
			p := pat.s
			if pt.s == "stix" {
				if pattern == nil {
					pattern, _ = ParsePattern(p)
				}
				if pattern != nil {
					p = pattern.String()
				}
			}
			content.obj = append(content.obj, jmember{"pattern_type", *pt}, jmember{"pattern", jvalue{kind: jString, s: p}})
		}
	} else {
		for _, m := range root.obj {
			if bookkeeping[m.key] || strings.HasPrefix(m.key, "x_") {
				continue
			}
			content.obj = append(content.obj, m)
		}
	}
	norm := normalizeContent(content)
	buf := make([]byte, 0, 512)
	buf = append(buf, fingerprintDomain...)
	buf = appendCanonical(buf, &norm)
	return sha256.Sum256(buf)
}

// normalizeContent returns v with strings normalized and lists made sets.
// The patterns inside indicators are normalized by the pattern grammar
// before this, so lower-casing them is harmless: it only merges spellings.
func normalizeContent(v jvalue) jvalue {
	switch v.kind {
	case jString:
		return jvalue{kind: jString, s: normalizeString(v.s)}
	case jArray:
		items := make([]jvalue, len(v.arr))
		enc := make([][]byte, len(v.arr))
		for i := range v.arr {
			items[i] = normalizeContent(v.arr[i])
			enc[i] = appendCanonical(nil, &items[i])
		}
		idx := make([]int, len(items))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return bytes.Compare(enc[a], enc[b]) })
		out := jvalue{kind: jArray}
		for k, i := range idx {
			if k > 0 && bytes.Equal(enc[i], enc[idx[k-1]]) {
				continue
			}
			out.arr = append(out.arr, items[i])
		}
		return out
	case jObject:
		out := jvalue{kind: jObject, obj: make([]jmember, len(v.obj))}
		for i, m := range v.obj {
			out.obj[i] = jmember{m.key, normalizeContent(m.val)}
		}
		return out
	}
	return v
}

// normalizeString trims, collapses white space and lower-cases s. Most
// strings a fingerprint sees (types, patterns, vocabulary values) are
// ASCII and already so: they are returned as they are, without the three
// copies of the general case.
func normalizeString(s string) string {
	if isNormalASCII(s) {
		return s
	}
	return strings.ToLower(strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " "))
}

// isNormalASCII reports whether s is ASCII without upper-case letters,
// white space other than single spaces between words, or a space at
// either end: what normalizeString would return unchanged. (Every
// character unicode.IsSpace knows outside ASCII, U+0085 and U+00A0 among
// them, is not ASCII.)
func isNormalASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 0x80, 'A' <= c && c <= 'Z', c == '\t', c == '\n', c == '\v', c == '\f', c == '\r':
			return false
		case c == ' ' && (i == 0 || i == len(s)-1 || s[i-1] == ' '):
			return false
		}
	}
	return true
}

// appendCanonical writes v in the JSON Canonicalization Scheme (RFC 8785):
// members sorted by their names' UTF-16 code units, numbers as ECMAScript
// prints them, strings escaped as JSON.stringify does. (package canonjson
// does the same for parley's signed documents; stix may import nothing of
// parley, and its tests check the two agree.)
func appendCanonical(out []byte, v *jvalue) []byte {
	switch v.kind {
	case jNull:
		return append(out, "null"...)
	case jBool:
		if v.b {
			return append(out, "true"...)
		}
		return append(out, "false"...)
	case jNumber:
		f, err := strconv.ParseFloat(v.s, 64)
		if err != nil {
			// The parser accepted the number's syntax; only its range can
			// fail, and a number no double holds is kept as written.
			return append(out, v.s...)
		}
		return canonjson.AppendNumber(out, f)
	case jString:
		return canonjson.AppendString(out, v.s)
	case jArray:
		out = append(out, '[')
		for i := range v.arr {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendCanonical(out, &v.arr[i])
		}
		return append(out, ']')
	}
	var small [16]int // most objects' members: no allocation
	idx := small[:0]
	if len(v.obj) > len(small) {
		idx = make([]int, 0, len(v.obj))
	}
	for i := range v.obj {
		idx = append(idx, i)
	}
	slices.SortFunc(idx, func(a, b int) int { return compareUTF16(v.obj[a].key, v.obj[b].key) })
	out = append(out, '{')
	for k, i := range idx {
		if k > 0 {
			out = append(out, ',')
		}
		out = canonjson.AppendString(out, v.obj[i].key)
		out = append(out, ':')
		out = appendCanonical(out, &v.obj[i].val)
	}
	return append(out, '}')
}

// compareUTF16 orders strings by UTF-16 code units, as RFC 8785 sorts
// member names. For the ASCII names STIX uses it is byte order.
func compareUTF16(a, b string) int {
	ascii := true
	for i := 0; i < len(a) && ascii; i++ {
		ascii = a[i] < 0x80
	}
	for i := 0; i < len(b) && ascii; i++ {
		ascii = b[i] < 0x80
	}
	if ascii {
		return strings.Compare(a, b)
	}
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}
