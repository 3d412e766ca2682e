package match

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// This file implements the ristretto255 group (RFC 9496) on top of
// filippo.io/edwards25519 and hash_to_ristretto255 (RFC 9380, appendix B).
// It is the faster of the two backends measured (see bench_test.go and the
// package comment); the other, circl's group.Ristretto255, is kept in the
// tests as an independent cross-check.

// elementSize is the length of a canonical ristretto255 encoding.
const elementSize = 32

// feFromDecimal parses a field constant; only called at init with literals.
func feFromDecimal(s string) *field.Element {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("match: bad field constant " + s)
	}
	le := make([]byte, 32)
	be := n.FillBytes(make([]byte, 32))
	for i := range be {
		le[31-i] = be[i]
	}
	fe, err := new(field.Element).SetBytes(le)
	if err != nil {
		panic(err)
	}
	return fe
}

// Constants of RFC 9496, section 4.1.
var (
	feOne            = new(field.Element).One()
	feMinusOne       = new(field.Element).Negate(feOne)
	feD              = feFromDecimal("37095705934669439343138083508754565189542113879843219016388785533085940283555")
	feSqrtM1         = feFromDecimal("19681161376707505956807079304988542015446066515923890162744021073123829784752")
	feSqrtADMinusOne = feFromDecimal("25063068953384623474111414158702152701244531502492656460079210482610430750235")
	feInvSqrtAMinusD = feFromDecimal("54469307008909316920995813868745141605393597292927456921205312896311721017578")
	feOneMinusDSq    = feFromDecimal("1159843021668779879193775521855586647937357759715417654439879720876111806838")
	feDMinusOneSq    = feFromDecimal("40440834346308536858101042469323190826248399146238708352240133220865137265952")
)

// errNotCanonical is wrapped into ErrMalformedElement by callers.
var errNotCanonical = errors.New("not a canonical ristretto255 encoding")

// decodeElement implements RFC 9496 section 4.3.1 DECODE, refusing
// non-canonical field encodings, negative s and points off the group.
func decodeElement(p *edwards25519.Point, b []byte) error {
	if len(b) != elementSize {
		return errNotCanonical
	}
	s, err := new(field.Element).SetBytes(b)
	if err != nil {
		return errNotCanonical
	}
	// SetBytes reduces values ≥ p and drops bit 255; re-encoding catches both.
	var enc [32]byte
	copy(enc[:], s.Bytes())
	if enc != [32]byte(b) || s.IsNegative() == 1 {
		return errNotCanonical
	}
	var ss, u1, u2, u2sq, v, t0 field.Element
	ss.Square(s)
	u1.Subtract(feOne, &ss)
	u2.Add(feOne, &ss)
	u2sq.Square(&u2)
	// v = -(D * u1^2) - u2^2
	v.Square(&u1)
	v.Multiply(&v, feD)
	v.Negate(&v)
	v.Subtract(&v, &u2sq)
	var invsqrt field.Element
	_, wasSquare := invsqrt.SqrtRatio(feOne, t0.Multiply(&v, &u2sq))
	var denX, denY, x, y, t field.Element
	denX.Multiply(&invsqrt, &u2)
	denY.Multiply(&invsqrt, &denX)
	denY.Multiply(&denY, &v)
	x.Multiply(s, &denX)
	x.Add(&x, &x)
	x.Absolute(&x)
	y.Multiply(&u1, &denY)
	t.Multiply(&x, &y)
	var zero field.Element
	if wasSquare == 0 || t.IsNegative() == 1 || y.Equal(&zero) == 1 {
		return errNotCanonical
	}
	if _, err := p.SetExtendedCoordinates(&x, &y, feOne, &t); err != nil {
		return errNotCanonical
	}
	return nil
}

// encodeElement implements RFC 9496 section 4.3.2 ENCODE.
func encodeElement(out *[32]byte, p *edwards25519.Point) {
	x0, y0, z0, t0 := p.ExtendedCoordinates()
	var u1, u2, tmp, invsqrt field.Element
	u1.Add(z0, y0)
	u1.Multiply(&u1, tmp.Subtract(z0, y0))
	u2.Multiply(x0, y0)
	tmp.Square(&u2)
	tmp.Multiply(&tmp, &u1)
	invsqrt.SqrtRatio(feOne, &tmp)
	var den1, den2, zInv, ix0, iy0, ench field.Element
	den1.Multiply(&invsqrt, &u1)
	den2.Multiply(&invsqrt, &u2)
	zInv.Multiply(&den1, &den2)
	zInv.Multiply(&zInv, t0)
	ix0.Multiply(x0, feSqrtM1)
	iy0.Multiply(y0, feSqrtM1)
	ench.Multiply(&den1, feInvSqrtAMinusD)
	rotate := tmp.Multiply(t0, &zInv).IsNegative()
	var x, y, denInv field.Element
	x.Select(&iy0, x0, rotate)
	y.Select(&ix0, y0, rotate)
	denInv.Select(&ench, &den2, rotate)
	var negY field.Element
	negY.Negate(&y)
	y.Select(&negY, &y, tmp.Multiply(&x, &zInv).IsNegative())
	var s field.Element
	s.Subtract(z0, &y)
	s.Multiply(&denInv, &s)
	s.Absolute(&s)
	copy(out[:], s.Bytes())
}

// isIdentity reports whether p is the ristretto255 identity, i.e. any of the
// four points of the torsion coset of the curve identity (RFC 9496 EQUALS
// against (0:1:1:0): X == 0 or Y == 0).
func isIdentity(p *edwards25519.Point) bool {
	x, y, _, _ := p.ExtendedCoordinates()
	var zero field.Element
	return x.Equal(&zero) == 1 || y.Equal(&zero) == 1
}

// elligatorMap is RFC 9496 section 4.3.4 MAP.
func elligatorMap(p *edwards25519.Point, t *field.Element) {
	var r, u, v, tmp field.Element
	r.Square(t)
	r.Multiply(&r, feSqrtM1)
	u.Add(&r, feOne)
	u.Multiply(&u, feOneMinusDSq)
	// v = (-1 - r*D) * (r + D)
	v.Multiply(&r, feD)
	v.Subtract(feMinusOne, &v)
	v.Multiply(&v, tmp.Add(&r, feD))
	var s field.Element
	_, wasSquare := s.SqrtRatio(&u, &v)
	var sPrime field.Element
	sPrime.Multiply(&s, t)
	sPrime.Absolute(&sPrime)
	sPrime.Negate(&sPrime)
	s.Select(&s, &sPrime, wasSquare)
	var c field.Element
	c.Select(feMinusOne, &r, wasSquare)
	// N = c * (r - 1) * D_MINUS_ONE_SQ - v
	var n field.Element
	n.Subtract(&r, feOne)
	n.Multiply(&n, &c)
	n.Multiply(&n, feDMinusOneSq)
	n.Subtract(&n, &v)
	var w0, w1, w2, w3, ss field.Element
	w0.Multiply(&s, &v)
	w0.Add(&w0, &w0)
	w1.Multiply(&n, feSqrtADMinusOne)
	ss.Square(&s)
	w2.Subtract(feOne, &ss)
	w3.Add(feOne, &ss)
	var X, Y, Z, T field.Element
	X.Multiply(&w0, &w3)
	Y.Multiply(&w2, &w1)
	Z.Multiply(&w1, &w3)
	T.Multiply(&w0, &w2)
	if _, err := p.SetExtendedCoordinates(&X, &Y, &Z, &T); err != nil {
		// The map always lands on the curve; failing here is a bug.
		panic("match: elligator produced an invalid point")
	}
}

// fromUniformBytes is the one-way map of RFC 9496 section 4.3.4.
func fromUniformBytes(p *edwards25519.Point, b *[64]byte) {
	var t1, t2 field.Element
	// SetBytes masks bit 255 and reduces, exactly as the RFC asks.
	if _, err := t1.SetBytes(b[:32]); err != nil {
		panic(err)
	}
	if _, err := t2.SetBytes(b[32:]); err != nil {
		panic(err)
	}
	var p2 edwards25519.Point
	elligatorMap(p, &t1)
	elligatorMap(&p2, &t2)
	p.Add(p, &p2)
}

// expandMessageXMD512 is RFC 9380 section 5.3.1 expand_message_xmd with
// SHA-512 for len_in_bytes = 64 (one output block), all hash_to_ristretto255
// needs.
func expandMessageXMD512(out *[64]byte, msg, dst []byte) {
	if len(dst) > 255 {
		panic("match: DST longer than 255 bytes")
	}
	var zpad [sha512.BlockSize]byte
	h := sha512.New()
	h.Write(zpad[:])
	h.Write(msg)
	h.Write([]byte{0, 64, 0}) // I2OSP(64, 2) || I2OSP(0, 1)
	h.Write(dst)
	h.Write([]byte{byte(len(dst))})
	var b0 [64]byte
	h.Sum(b0[:0])
	h.Reset()
	h.Write(b0[:])
	h.Write([]byte{1})
	h.Write(dst)
	h.Write([]byte{byte(len(dst))})
	h.Sum(out[:0])
}

// hashToGroup is hash_to_ristretto255 (RFC 9380 appendix B) with
// expand_message_xmd over SHA-512.
func hashToGroup(p *edwards25519.Point, msg, dst []byte) {
	var u [64]byte
	expandMessageXMD512(&u, msg, dst)
	fromUniformBytes(p, &u)
}

// newScalar turns 64 uniformly random bytes into a non-zero scalar.
func newScalar(random []byte) (*edwards25519.Scalar, error) {
	s, err := edwards25519.NewScalar().SetUniformBytes(random)
	if err != nil {
		return nil, fmt.Errorf("match: scalar: %w", err)
	}
	if s.Equal(edwards25519.NewScalar()) == 1 {
		return nil, errors.New("match: zero scalar")
	}
	return s, nil
}
