package taxii

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// A cursor is the TAXII `next` value. It is stateless: it carries the
// position of the last object returned, and an HMAC binds that position to
// the query it came from — the party, API root, collection, endpoint and
// filters. It works after a restart and on any instance sharing the
// database (the key lives there), and editing it, or presenting it with
// another token, collection or filter, gets a 400 instead of data.
//
// Layout (base64url): version(1) | date_added µs(8) | seq(8) | mac(16).
// mac = HMAC-SHA256(key, version | date_added | seq | SHA-256(binding))[:16].

const cursorVersion = 1

var errBadCursor = errors.New("taxii: bad cursor")

type cursorCodec struct{ key []byte }

func (c cursorCodec) mac(head []byte, binding string) []byte {
	bh := sha256.Sum256([]byte(binding))
	m := hmac.New(sha256.New, c.key)
	m.Write(head)
	m.Write(bh[:])
	return m.Sum(nil)[:16]
}

func (c cursorCodec) encode(pos store.Position, binding string) string {
	b := make([]byte, 17, 33)
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(pos.DateAdded.UnixMicro()))
	binary.BigEndian.PutUint64(b[9:], uint64(pos.Seq))
	b = append(b, c.mac(b, binding)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// cursorLen is the length of every encoded cursor: 33 bytes in base64.
var cursorLen = base64.RawURLEncoding.EncodedLen(33)

func (c cursorCodec) decode(s, binding string) (store.Position, error) {
	// Exactly one spelling decodes: the base64 decoder skips '\r' and '\n',
	// so without the length check a cursor with a line break inserted
	// would be accepted too.
	if len(s) != cursorLen {
		return store.Position{}, errBadCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 33 || b[0] != cursorVersion {
		return store.Position{}, errBadCursor
	}
	if !hmac.Equal(b[17:], c.mac(b[:17], binding)) {
		return store.Position{}, errBadCursor
	}
	us := int64(binary.BigEndian.Uint64(b[1:]))
	seq := int64(binary.BigEndian.Uint64(b[9:]))
	if us <= 0 || seq <= 0 {
		return store.Position{}, errBadCursor
	}
	return store.Position{DateAdded: time.UnixMicro(us).UTC(), Seq: seq}, nil
}
