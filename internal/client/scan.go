package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/parley-cti/parley/internal/jsonscan"
)

// The envelope reader below finds each object of a page in one pass over
// the bytes (jsonscan's) and hands it on as a slice of the buffer it was
// read into, without copying: encoding/json's Decoder scanned every object
// twice (to find its end, then to check it) and copied it, and with a
// caller that looks at each object again that was most of a reader's CPU
// (a client reading a million-object collection spent 40 % in Decode
// alone, docs/BENCHMARKS.md). What it accepts is exactly what
// encoding/json accepts (FuzzDecodeEnvelope holds the two side by side),
// including its nesting limit.

// bad is a malformed document, in the words of jsonscan's errors.
func bad(format string, args ...any) error {
	return &jsonscan.SyntaxError{Msg: fmt.Sprintf(format, args...)}
}

// scanValue returns the end of the JSON value that starts at b[i] (no
// leading whitespace), depth being the number of containers around it:
// together they nest no deeper than encoding/json allows.
func scanValue(b []byte, i, depth int) (int, error) {
	return jsonscan.Value(b, i, jsonscan.MaxDepth-depth)
}

// stringValue decodes a scanned JSON string (quotes included) as
// encoding/json does. Plain ASCII without escapes is the common case.
func stringValue(raw []byte) (string, error) {
	plain := true
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// reader reads a document from r in chunks. Every chunk is a new buffer,
// never reused: the slices handed out of it (objects) stay valid, and a
// page is held once, in the buffers its objects point into.
type reader struct {
	r   io.Reader
	buf []byte // buf[off:] is read and not consumed
	off int
	eof bool
	// chunk is the least a read asks for (tests make it tiny to put
	// chunk boundaries everywhere).
	chunk int
}

const defaultChunk = 64 << 10

// more reads another chunk after what is left unconsumed, into a new
// buffer at least twice as large as that rest (so a value longer than a
// chunk is rescanned a bounded number of times). io.ErrUnexpectedEOF when
// r has ended.
func (rd *reader) more() error {
	if rd.eof {
		return io.ErrUnexpectedEOF
	}
	rest := rd.buf[rd.off:]
	nb := make([]byte, len(rest), max(2*len(rest), rd.chunk))
	copy(nb, rest)
	n, err := io.ReadFull(rd.r, nb[len(rest):cap(nb)])
	rd.buf, rd.off = nb[:len(rest)+n], 0
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		rd.eof = true
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
	case err != nil:
		return err
	}
	return nil
}

// peek skips whitespace and returns the next byte without consuming it;
// io.EOF when the document has ended.
func (rd *reader) peek() (byte, error) {
	for {
		rd.off = jsonscan.SkipSpace(rd.buf, rd.off)
		if rd.off < len(rd.buf) {
			return rd.buf[rd.off], nil
		}
		if err := rd.more(); err != nil {
			if err == io.ErrUnexpectedEOF {
				return 0, io.EOF
			}
			return 0, err
		}
	}
}

// next is peek inside a document, where its end is io.ErrUnexpectedEOF.
func (rd *reader) next() (byte, error) {
	c, err := rd.peek()
	if err == io.EOF {
		return 0, io.ErrUnexpectedEOF
	}
	return c, err
}

// expect consumes c after whitespace.
func (rd *reader) expect(c byte) error {
	got, err := rd.next()
	if err == io.ErrUnexpectedEOF {
		return fmt.Errorf("want %q: %w", c, err)
	}
	if err != nil {
		return err
	}
	if got != c {
		return bad("want %q, got %q", c, got)
	}
	rd.off++
	return nil
}

// value consumes the next value (after whitespace) and returns its bytes,
// depth being the number of containers around it.
func (rd *reader) value(depth int) ([]byte, error) {
	if _, err := rd.next(); err != nil {
		return nil, err
	}
	for {
		end, err := scanValue(rd.buf, rd.off, depth)
		if err == jsonscan.ErrShort {
			if err := rd.more(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		v := rd.buf[rd.off:end:end]
		rd.off = end
		return v, nil
	}
}

// decodeEnvelope reads an envelope, handing each object to each as soon as
// it is read, so a page is never held both as bytes and as objects. It sets
// env.More and env.Next (env.Objects is left to each). Member names are
// matched exactly (after unescaping); unknown members are skipped; a
// repeated "objects" member calls reset first, so that the last one wins as
// in encoding/json. Anything after the envelope but whitespace is an error.
func decodeEnvelope(r io.Reader, env *Envelope, reset func(), each func(json.RawMessage) error) error {
	return decodeEnvelopeChunks(r, defaultChunk, env, reset, each)
}

func decodeEnvelopeChunks(r io.Reader, chunk int, env *Envelope, reset func(), each func(json.RawMessage) error) error {
	rd := &reader{r: r, chunk: chunk}
	if err := rd.expect('{'); err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	for first := true; ; first = false {
		c, err := rd.next()
		if err != nil {
			return fmt.Errorf("envelope: %w", err)
		}
		if c == '}' {
			rd.off++
			break
		}
		if !first {
			if c != ',' {
				return fmt.Errorf("envelope: %w", bad("want ',' or '}', got %q", c))
			}
			rd.off++
		}
		if c, err := rd.peek(); err == nil && c != '"' {
			return fmt.Errorf("envelope: %w", bad("want a member name, got %q", c))
		}
		rawKey, err := rd.value(1)
		if err != nil {
			return fmt.Errorf("envelope: %w", err)
		}
		key, err := stringValue(rawKey)
		if err != nil {
			return fmt.Errorf("envelope: %w", err)
		}
		if err := rd.expect(':'); err != nil {
			return fmt.Errorf("envelope: %w", err)
		}
		if key == "objects" {
			reset()
			if err := rd.objects(each); err != nil {
				return err
			}
			continue
		}
		v, err := rd.value(1)
		if err != nil {
			return fmt.Errorf("envelope: %q: %w", key, err)
		}
		switch key {
		case "more":
			switch string(v) {
			case "true":
				env.More = true
			case "false", "null":
				env.More = false
			default:
				return fmt.Errorf("envelope: more: want a boolean, got %.20s", v)
			}
		case "next":
			env.Next = ""
			if string(v) == "null" {
				continue
			}
			if v[0] != '"' {
				return fmt.Errorf("envelope: next: want a string, got %.20s", v)
			}
			if env.Next, err = stringValue(v); err != nil {
				return fmt.Errorf("envelope: next: %w", err)
			}
		}
	}
	if _, err := rd.peek(); err != io.EOF {
		if err != nil {
			return fmt.Errorf("envelope: %w", err)
		}
		return errors.New("envelope: trailing data after the envelope")
	}
	return nil
}

// objects reads the "objects" member's value: null (an empty page) or an
// array of JSON objects, each handed to each.
func (rd *reader) objects(each func(json.RawMessage) error) error {
	c, err := rd.next()
	if err != nil {
		return fmt.Errorf("envelope: objects: %w", err)
	}
	if c == 'n' {
		if _, err := rd.value(1); err != nil {
			return fmt.Errorf("envelope: objects: %w", err)
		}
		return nil
	}
	if c != '[' {
		return fmt.Errorf("envelope: objects: want an array, got %q", c)
	}
	rd.off++
	for i := 0; ; i++ {
		c, err := rd.next()
		if err != nil {
			return fmt.Errorf("envelope: objects: %w", err)
		}
		if c == ']' {
			rd.off++
			return nil
		}
		if i > 0 {
			if c != ',' {
				return fmt.Errorf("envelope: objects: %w", bad("want ',' or ']', got %q", c))
			}
			rd.off++
		}
		obj, err := rd.value(2)
		if err != nil {
			return fmt.Errorf("envelope: object %d: %w", i, err)
		}
		if obj[0] != '{' {
			return fmt.Errorf("envelope: object %d is not a JSON object", i)
		}
		if err := each(obj); err != nil {
			return err
		}
	}
}

// ObjectID returns the top-level "id" member of a JSON object as a
// string, or "" when the object has no string id or is not well formed.
// It reads the object once without building anything else of it, for
// callers that look at the id of every object of a large read.
func ObjectID(obj []byte) string {
	i := jsonscan.SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return ""
	}
	i = jsonscan.SkipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return ""
	}
	id := ""
	for i < len(obj) {
		if obj[i] != '"' {
			return ""
		}
		j, err := jsonscan.String(obj, i)
		if err != nil {
			return ""
		}
		key := obj[i:j]
		if i = jsonscan.SkipSpace(obj, j); i >= len(obj) || obj[i] != ':' {
			return ""
		}
		i = jsonscan.SkipSpace(obj, i+1)
		k, err := scanValue(obj, i, 1)
		if err != nil {
			return ""
		}
		if string(key) == `"id"` {
			id = ""
			if obj[i] == '"' {
				id, _ = stringValue(obj[i:k])
			}
		}
		if i = jsonscan.SkipSpace(obj, k); i >= len(obj) {
			return ""
		}
		switch obj[i] {
		case '}':
			if jsonscan.SkipSpace(obj, i+1) != len(obj) {
				return ""
			}
			return id
		case ',':
			i = jsonscan.SkipSpace(obj, i+1)
		default:
			return ""
		}
	}
	return ""
}
