package jsonscan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// valid is json.Valid as Value decides it: the whole of b is one value
// with white space around it. A space is appended because a number at the
// end of b is short (more digits could follow) and JSON allows it there.
func valid(b []byte, maxDepth int) (bool, error) {
	b = append(b[:len(b):len(b)], ' ')
	end, err := Value(b, SkipSpace(b, 0), maxDepth)
	if err != nil {
		return false, err
	}
	return SkipSpace(b, end) == len(b), nil
}

// depth is the nesting depth of valid JSON.
func depth(b []byte) int {
	d, most, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			most = max(most, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return most
}

// FuzzValue holds Value to json.Valid: the same verdict on every input, at
// encoding/json's nesting limit and at smaller ones (where the fuzzer
// reaches the limit; TestValueDepthLimit tries encoding/json's own). Every prefix of the
// input, as a stream cut there would hand it over, is either ErrShort or
// already the answer for the whole: a reader that scans again after
// reading more never sees an error that more input would have undone.
func FuzzValue(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,{"b":null}],"c":"\u00e9\n"}`, `[]`, `{}`, ` [ 1 , 2 ] `, `{"a":1,}`, `[1,]`, `[,1]`, `{"a" 1}`, `{"a":}`,
		`{1:2}`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"a\x01\"", "\"\xff\"", `01`, `-`, `-0.5e+10`, `1.`, `1e`, `.5`, `tru`, `nulll`,
		`[[[[]]]]`, `[[]`, `[]]`, `{"a":[}`, `"`, `"\`, `[1 2]`, `{"a":1 "b":2}`, `truefalse`, `1`, `-12.5E-3`, `{"a":{"b":[]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want := json.Valid(data)
		if got, err := valid(data, MaxDepth); got != want {
			t.Fatalf("Value says %v (%v), json.Valid %v, for %q", got, err, want, data)
		}
		limit := len(data) % 7
		got, err := valid(data, limit)
		if ok := want && depth(data) <= limit; got != ok {
			t.Fatalf("limit %d: Value says %v (%v), want %v, for %q", limit, got, err, ok, data)
		}
		if want && !got && err.Error() != "invalid JSON: exceeded max depth" {
			t.Fatalf("limit %d: valid %q refused with %v", limit, data, err)
		}

		// Prefixes, of the input with a space after it (so that a number
		// at its end has ended); every one of a short input, 100 or so of
		// a long one.
		whole := append(data[:len(data):len(data)], ' ')
		start := SkipSpace(whole, 0)
		end, err := Value(whole, start, MaxDepth)
		for k := start; k <= len(data); k += 1 + len(data)/100 {
			e, perr := Value(whole[:k], start, MaxDepth)
			switch {
			case perr == ErrShort && (err != nil || k <= end):
			case perr == nil && err == nil && e == end:
			case perr != nil && err != nil && perr != ErrShort && perr.Error() == err.Error():
			default:
				t.Fatalf("prefix %q: %d, %v; the whole %q: %d, %v", whole[:k], e, perr, whole, end, err)
			}
		}
	})
}

// Each failure has its own message (the client's errors show them), and a
// value that runs off the end is ErrShort, never a syntax error.
func TestValueErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`x`, `invalid JSON: unexpected 'x'`},
		{`{1:2}`, `invalid JSON: object key: unexpected '1'`},
		{`{"a",1}`, `invalid JSON: after object key: unexpected ','`},
		{`{"a":1]`, `invalid JSON: after object value: unexpected ']'`},
		{`[1}`, `invalid JSON: after array element: unexpected '}'`},
		{"\"a\x01\"", `invalid JSON: control character 0x1 in string`},
		{`"\u12G4"`, `invalid JSON: bad \u escape`},
		{`"\x"`, `invalid JSON: bad escape \x`},
		{`-x`, `invalid JSON: bad number`},
		{`1.x`, `invalid JSON: bad number`},
		{`1e+x`, `invalid JSON: bad number`},
		{`nul1`, `invalid JSON: bad literal`},
		{`[[[]]]`, `invalid JSON: exceeded max depth`},
	} {
		_, err := Value([]byte(tc.in), 0, 2)
		var se *SyntaxError
		if !errors.As(err, &se) || err.Error() != tc.want {
			t.Errorf("%s: %v, want %s", tc.in, err, tc.want)
		}
	}
	for _, in := range []string{``, `{`, `{"a"`, `{"a":`, `{"a":1,`, `[`, `[1,`, `"ab`, `"\`, `"\u12`, `-`, `1`, `1.`, `1.5`, `1e`, `1e-`, `tr`, `nul`} {
		if _, err := Value([]byte(in), 0, MaxDepth); err != ErrShort {
			t.Errorf("%q: %v, want ErrShort", in, err)
		}
	}
}

// The nesting limit counts containers from the value scanned: MaxDepth of
// them is what json.Valid accepts, one more is refused by both.
func TestValueDepthLimit(t *testing.T) {
	for _, n := range []int{MaxDepth, MaxDepth + 1} {
		in := []byte(strings.Repeat(`{"a":[`, n/2) + strings.Repeat("[", n%2) + strings.Repeat("]", n%2) + strings.Repeat(`]}`, n/2))
		got, err := valid(in, MaxDepth)
		if want := json.Valid(in); got != want || want != (n <= MaxDepth) {
			t.Errorf("depth %d: Value %v (%v), json.Valid %v", n, got, err, want)
		}
	}
}

// String reads eight bytes at a time where it can: a quote, a backslash, a
// control character or a byte above 0x7f at any place in a string of any
// length near a multiple of eight gets json.Valid's verdict, and the end
// of the string is found where it is.
func TestStringEveryOffset(t *testing.T) {
	for n := 0; n <= 26; n++ {
		for at := 0; at <= n; at++ {
			for _, c := range []string{`"`, `\`, `\n`, `\u00e9`, `\x`, "\x00", "\x1f", " ", "\x7f", "\x80", "\xff", "\xe9"} {
				in := []byte(`"` + strings.Repeat("a", at) + c + strings.Repeat("b", n-at) + `"`)
				got, err := valid(in, MaxDepth)
				if want := json.Valid(in); got != want {
					t.Fatalf("%q: Value %v (%v), json.Valid %v", in, got, err, want)
				}
				wantEnd := len(in)
				if c == `"` {
					wantEnd = at + 2
				}
				if end, err := String(in, 0); err == nil && end != wantEnd {
					t.Fatalf("%q: the string ends at %d, not %d", in, end, wantEnd)
				}
			}
		}
	}
}
