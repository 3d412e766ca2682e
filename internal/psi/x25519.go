package psi

import (
	"crypto/ecdh"
	"errors"

	"filippo.io/edwards25519/field"
	"github.com/cloudflare/circl/dh/x25519"
	"github.com/parley-cti/parley/internal/fault"
)

// This file raises curve25519 u-coordinates to the session scalar: X25519
// (RFC 7748). The portable path is circl's X25519 (MULX/ADX assembly on
// amd64, 1.7 times as fast as crypto/ecdh here); x25519_amd64.go adds a
// path that runs eight ladders at once in AVX-512 IFMA registers when the
// CPU has them, about four times as fast again. Both are constant-time in
// the scalar and compute the same function; the tests check them against
// each other and against crypto/ecdh.

// elementSize is the length of a round-1 element: a canonical
// little-endian u-coordinate.
const elementSize = 32

// errLowOrder reports an element whose product with the clamped scalar is
// the identity: a point of small order, which no honest party sends.
var errLowOrder = errors.New("low-order point")

// errNotCanonical reports a u-coordinate that is not reduced modulo p or
// has the unused top bit set.
var errNotCanonical = errors.New("not a canonical curve25519 u-coordinate")

// blinder holds one session's secret X25519 scalar.
type blinder struct {
	secret  x25519.Key
	clamped [32]byte // the scalar as the ladder uses it (RFC 7748 decodeScalar25519)
}

func newBlinder(random []byte) (*blinder, error) {
	// crypto/ecdh checks the length and that the key is usable.
	if _, err := ecdh.X25519().NewPrivateKey(random); err != nil {
		return nil, fault.Errorf("match: scalar: %w", err)
	}
	b := &blinder{}
	copy(b.secret[:], random)
	copy(b.clamped[:], random)
	b.clamped[0] &= 248
	b.clamped[31] &= 127
	b.clamped[31] |= 64
	return b, nil
}

// checkCanonical refuses encodings of u that are not the canonical one:
// X25519 itself would silently reduce them, and two encodings of one
// element would slip past the duplicate check.
func checkCanonical(u []byte) error {
	if len(u) != elementSize || u[31]&0x80 != 0 {
		return errNotCanonical
	}
	var e field.Element
	if _, err := e.SetBytes(u); err != nil {
		return errNotCanonical
	}
	if [32]byte(e.Bytes()) != [32]byte(u) {
		return errNotCanonical
	}
	return nil
}

// mulBatch sets out[32i:] = X25519(scalar, in[32i:]) for every element of
// in, which must be canonical. It returns the index of the first element of
// low order, or -1.
func (b *blinder) mulBatch(out, in []byte) int {
	n := len(in) / elementSize
	done := 0
	if useIFMA {
		done = n - n%ifmaLanes
		if bad := b.mulBatchIFMA(out[:done*elementSize], in[:done*elementSize]); bad >= 0 {
			return bad
		}
	}
	for i := done; i < n; i++ {
		var pub, shared x25519.Key
		copy(pub[:], in[i*elementSize:])
		ok := x25519.Shared(&shared, &b.secret, &pub)
		copy(out[i*elementSize:], shared[:])
		if !ok {
			return i // all-zero result: a low-order point
		}
	}
	return -1
}
