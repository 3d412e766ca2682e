package escrow

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/parley-cti/parley/internal/fault"
)

// ErrNotAgeFile: a sealed deposit is not a well-formed age file. The server
// cannot read a sealed deposit, but it can refuse what no age encryptor
// produces: a header that does not parse, no X25519 recipient stanza, no
// header MAC, or a payload whose length the STREAM chunking rules out
// (header only, truncated, or padded with junk).
var ErrNotAgeFile = fault.Errorf("%w: the sealed deposit is not a well-formed age file", ErrInvalid)

// age v1 format constants (c2sp.org/age).
const (
	ageVersionLine  = "age-encryption.org/v1\n"
	ageStanzaPrefix = "-> "
	ageMACPrefix    = "---"
	ageColumns      = 64                 // stanza bodies wrap here
	ageMACChars     = 43                 // base64 of the 32-byte HMAC-SHA-256
	ageNonceSize    = 16                 // payload nonce
	ageChunkPlain   = 64 << 10           // plaintext per full chunk
	ageChunkSize    = ageChunkPlain + 16 // with its Poly1305 tag
	ageTagSize      = 16
	x25519Size      = 32
	x25519BodySize  = 32 // the 16-byte file key and its tag
	// maxStanzas bounds the work spent on a header; parley seals to one.
	maxStanzas = 64
	// zeroRun: ChaCha20-Poly1305 output is indistinguishable from random,
	// so a run this long of zero bytes (probability about n/2^256) means
	// the payload was never encrypted.
	zeroRun = 32
)

// CheckAgeFile reports whether b is a well-formed age v1 file (binary, not
// armored) with at least one X25519 recipient stanza, judged without any
// key: the header parses as the ABNF of c2sp.org/age; every X25519 stanza
// has exactly two arguments, a canonical 32-byte ephemeral share that is
// not a low-order point and a 32-byte body; the MAC line is "--- " and 43
// canonical base64 characters; the payload is a 16-byte nonce followed by
// 64 KiB+16-byte chunks, the last one no longer and not empty (only an
// empty plaintext gives a single 16-byte chunk); and no run of 32 zero
// bytes appears where ciphertext should be. Errors wrap ErrNotAgeFile and
// say what was wrong.
func CheckAgeFile(b []byte) error {
	bad := func(format string, a ...any) error {
		return fault.Errorf("%w: %s", ErrNotAgeFile, fmt.Sprintf(format, a...))
	}
	if !bytes.HasPrefix(b, []byte(ageVersionLine)) {
		return bad("it must start with the line %q", "age-encryption.org/v1")
	}
	rest := b[len(ageVersionLine):]
	line := func() ([]byte, bool) {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, false
		}
		l := rest[:i]
		rest = rest[i+1:]
		return l, true
	}
	stanzas, x25519 := 0, 0
	for {
		l, ok := line()
		if !ok {
			return bad("the header ends without its MAC line (header only or truncated)")
		}
		if bytes.HasPrefix(l, []byte(ageMACPrefix)) {
			if stanzas == 0 {
				return bad("the header has no recipient stanza")
			}
			mac, ok := bytes.CutPrefix(l, []byte(ageMACPrefix+" "))
			if !ok || len(mac) != ageMACChars {
				return bad("the MAC line must be \"--- \" followed by %d base64 characters", ageMACChars)
			}
			m, err := canonicalBase64(mac)
			if err != nil || len(m) != 32 {
				return bad("the header MAC is not canonical base64 of 32 bytes")
			}
			if allZero(m) {
				return bad("the header MAC is all zeros")
			}
			break
		}
		args, ok := bytes.CutPrefix(l, []byte(ageStanzaPrefix))
		if !ok {
			return bad("header line %q is neither a recipient stanza (\"-> \") nor the MAC line (\"--- \")", clip(l))
		}
		stanzas++
		if stanzas > maxStanzas {
			return bad("the header has more than %d recipient stanzas", maxStanzas)
		}
		fields := bytes.Split(args, []byte(" "))
		for _, f := range fields {
			if len(f) == 0 || !vchars(f) {
				return bad("recipient stanza %d has an empty or non-printable argument", stanzas)
			}
		}
		var body []byte
		for {
			bl, ok := line()
			if !ok {
				return bad("recipient stanza %d is truncated", stanzas)
			}
			if len(bl) > ageColumns {
				return bad("recipient stanza %d has a body line longer than %d columns", stanzas, ageColumns)
			}
			if !base64Chars(bl) {
				return bad("recipient stanza %d has a body line that is not base64", stanzas)
			}
			body = append(body, bl...)
			if len(bl) < ageColumns {
				break
			}
		}
		raw, err := canonicalBase64(body)
		if err != nil {
			return bad("recipient stanza %d's body is not canonical base64", stanzas)
		}
		if string(fields[0]) != "X25519" {
			continue
		}
		if len(fields) != 2 {
			return bad("X25519 stanza %d has %d arguments, want 2", stanzas, len(fields))
		}
		share, err := canonicalBase64(fields[1])
		switch {
		case err != nil || len(share) != x25519Size:
			return bad("X25519 stanza %d's ephemeral share is not canonical base64 of %d bytes", stanzas, x25519Size)
		case lowOrder(share):
			return bad("X25519 stanza %d's ephemeral share is a low-order point (no recipient could decrypt it)", stanzas)
		case len(raw) != x25519BodySize:
			return bad("X25519 stanza %d's body is %d bytes, want %d", stanzas, len(raw), x25519BodySize)
		}
		x25519++
	}
	if x25519 == 0 {
		return bad("the header has no X25519 recipient stanza (parley seals to the counterpart's X25519 key)")
	}
	payload := rest
	if len(payload) < ageNonceSize {
		return bad("the payload is %d bytes, shorter than its %d-byte nonce (header only or truncated)", len(payload), ageNonceSize)
	}
	chunks := len(payload) - ageNonceSize
	last := chunks % ageChunkSize
	switch {
	case chunks == 0:
		return bad("the payload has a nonce but no chunk (truncated)")
	case chunks == ageTagSize:
		// The one chunk of an empty plaintext.
	case last == 0:
		// The last chunk is full.
	case last <= ageTagSize:
		return bad("the payload's last chunk is %d bytes; a chunk holds at least %d bytes of tag and, unless it is the only one, some ciphertext (truncated or padded)", last, ageTagSize)
	}
	if bytes.Contains(payload, make([]byte, zeroRun)) {
		return bad("the payload holds a run of %d zero bytes, which encryption never produces", zeroRun)
	}
	return nil
}

var b64 = base64.RawStdEncoding.Strict()

// canonicalBase64 decodes unpadded standard base64 and refuses
// non-canonical encodings (stray bits in the last character), as the spec
// requires of decoders.
func canonicalBase64(s []byte) ([]byte, error) {
	out := make([]byte, b64.DecodedLen(len(s)))
	n, err := b64.Decode(out, s)
	if err != nil {
		return nil, err
	}
	if b64.EncodeToString(out[:n]) != string(s) {
		return nil, errors.New("non-canonical base64")
	}
	return out[:n], nil
}

func base64Chars(s []byte) bool {
	for _, c := range s {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

func vchars(s []byte) bool {
	for _, c := range s {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// probe is a throwaway X25519 key: an ephemeral share whose product with
// it is all zeros is of low order, and age refuses it for every identity.
var probe, _ = ecdh.X25519().GenerateKey(rand.Reader)

func lowOrder(share []byte) bool {
	pub, err := ecdh.X25519().NewPublicKey(share)
	if err != nil {
		return true
	}
	_, err = probe.ECDH(pub)
	return err != nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// clip shortens a header line for an error message.
func clip(l []byte) string {
	if len(l) > 40 {
		return string(l[:40]) + "…"
	}
	return string(l)
}
