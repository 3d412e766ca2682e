package psi

import (
	"crypto/sha512"
	"math/big"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// This file implements hash_to_curve for the suite
// curve25519_XMD:SHA-512_ELL2_RO_ of RFC 9380 (section 8.5), returning the
// Montgomery u-coordinate of the point: the input X25519 needs. The map is
// Elligator 2 (section 6.7.1) with one square root per field element; the
// two mapped points are added and the cofactor cleared on edwards25519
// (filippo.io/edwards25519) through the rational map of appendix D.

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

var (
	feOne = new(field.Element).One()
	// feSqrtM1 is the square root of -1 that SqrtRatio multiplies by
	// (RFC 9496 SQRT_M1).
	feSqrtM1 = feFromDecimal("19681161376707505956807079304988542015446066515923890162744021073123829784752")
)

// montgomeryA is J, the A coefficient of curve25519: v² = u³ + J·u² + u.
const montgomeryA = 486662

var (
	feJ   = new(field.Element).Mult32(feOne, montgomeryA)
	feJSq = new(field.Element).Square(feJ)
	// feSqrtMinusTwoI is a square root of Z/SQRT_M1 = -2·SQRT_M1. SqrtRatio
	// returns sqrt(SQRT_M1·g) when g is not a square; multiplying by this
	// turns it into sqrt(Z·g), so one square root serves both candidates of
	// Elligator 2 (g(x2) = Z·u²·g(x1)).
	feSqrtMinusTwoI = mustSqrt(new(field.Element).Negate(new(field.Element).Add(feSqrtM1, feSqrtM1)))
	// feSqrtMinus486664 scales the Montgomery v to the Edwards x in the
	// rational map (RFC 9380 appendix D); its sign does not change the
	// u-coordinate this file returns.
	feSqrtMinus486664 = mustSqrt(new(field.Element).Negate(new(field.Element).Mult32(feOne, montgomeryA+2)))
)

func mustSqrt(x *field.Element) *field.Element {
	r, ok := new(field.Element).SqrtRatio(x, feOne)
	if ok != 1 {
		panic("match: constant is not a square")
	}
	return r
}

// expandMessageXMD is RFC 9380 section 5.3.1 with SHA-512, for outputs of
// at most 255·64 bytes.
func expandMessageXMD(out []byte, msg, dst []byte) {
	if len(dst) > 255 {
		panic("match: DST longer than 255 bytes")
	}
	n := len(out)
	ell := (n + sha512.Size - 1) / sha512.Size
	if ell > 255 || n > 65535 {
		panic("match: expand_message_xmd output too long")
	}
	var zpad [sha512.BlockSize]byte
	h := sha512.New()
	h.Write(zpad[:])
	h.Write(msg)
	h.Write([]byte{byte(n >> 8), byte(n), 0})
	h.Write(dst)
	h.Write([]byte{byte(len(dst))})
	var b0, bi [sha512.Size]byte
	h.Sum(b0[:0])
	for i := 1; i <= ell; i++ {
		h.Reset()
		if i == 1 {
			h.Write(b0[:])
		} else {
			var x [sha512.Size]byte
			for k := range x {
				x[k] = b0[k] ^ bi[k]
			}
			h.Write(x[:])
		}
		h.Write([]byte{byte(i)})
		h.Write(dst)
		h.Write([]byte{byte(len(dst))})
		h.Sum(bi[:0])
		copy(out[(i-1)*sha512.Size:], bi[:])
	}
}

// fieldFromBigEndian48 reduces a 48-byte big-endian integer modulo p
// (hash_to_field's OS2IP(tv) mod p with L = 48).
func fieldFromBigEndian48(e *field.Element, b []byte) {
	var wide [64]byte
	for i := range 48 {
		wide[i] = b[47-i]
	}
	if _, err := e.SetWideBytes(wide[:]); err != nil {
		panic(err)
	}
}

// hashToFieldCurve25519 is hash_to_field with count 2 for the suite.
func hashToFieldCurve25519(u0, u1 *field.Element, msg, dst []byte) {
	var uniform [96]byte
	expandMessageXMD(uniform[:], msg, dst)
	fieldFromBigEndian48(u0, uniform[:48])
	fieldFromBigEndian48(u1, uniform[48:])
}

// elligator2 maps u to a point of curve25519 (RFC 9380 section 6.7.1 with
// J = 486662, K = 1, Z = 2) and returns it projectively as (sN/d, t): the
// affine point is s = sN/d, t. d = 1 + 2u² is never zero because -1/2 is
// not a square modulo p.
func elligator2(sN, d, t *field.Element, u *field.Element) {
	var n, d3, uv3, uv7, r field.Element
	elligator2Pre(d, &n, &d3, &uv3, &uv7, u)
	_, isSquare := r.SqrtRatio(&n, &d3)
	elligator2Post(sN, t, u, &r, isSquare)
}

// elligator2Pre computes d, and g(x1) = n/d3 for x1 = -J/d, then the
// inputs of SqrtRatio(n, d3)'s exponentiation: uv3 = n·d3³ and uv7 = n·d3⁷
// (pow22523Batch raises uv7 for many elements at once).
func elligator2Pre(d, n, d3, uv3, uv7 *field.Element, u *field.Element) {
	var u2, tmp field.Element
	u2.Square(u)
	d.Add(&u2, &u2)
	d.Add(feOne, d)
	// g(x1) = x1³ + J·x1² + x1 = -J·(J² - J²·d + d²) / d³.
	n.Multiply(feJSq, d)
	n.Subtract(feJSq, n)
	n.Add(n, tmp.Square(d))
	n.Multiply(n, feJ)
	n.Negate(n)
	d3.Square(d)
	d3.Multiply(d3, d)
	// As field.Element.SqrtRatio: uv3 = u·v³, uv7 = uv3·v⁴ with u = n, v = d3.
	var v2 field.Element
	v2.Square(d3)
	uv3.Multiply(n, tmp.Multiply(&v2, d3))
	uv7.Multiply(uv3, tmp.Square(&v2))
}

// sqrtRatioFinish completes SqrtRatio(u, v) from uv3 = u·v³ and
// pw = (u·v⁷)^((p-5)/8), with the same steps and result as
// field.Element.SqrtRatio (RFC 9496 SQRT_RATIO_M1).
func sqrtRatioFinish(r, u, v, uv3, pw *field.Element) (wasSquare int) {
	var rr, check, uNeg, t0, rPrime field.Element
	rr.Multiply(uv3, pw)
	check.Multiply(v, t0.Square(&rr))
	uNeg.Negate(u)
	correct := check.Equal(u)
	flipped := check.Equal(&uNeg)
	flippedI := check.Equal(t0.Multiply(&uNeg, feSqrtM1))
	rPrime.Multiply(&rr, feSqrtM1)
	rr.Select(&rPrime, &rr, flipped|flippedI)
	r.Absolute(&rr)
	return correct | flipped
}

// elligator2Post picks the candidate: r is SqrtRatio(g(x1)) and isSquare
// whether g(x1) was a square.
func elligator2Post(sN, t, u, r *field.Element, isSquare int) {
	// Square: x = x1, t = the root with sgn0 = 1. Otherwise x = x2 = Z·u²·x1
	// and t = sqrt(Z·u²·g(x1)) = u·sqrt(-2i)·r with sgn0 = 0.
	var t1, t2, u2 field.Element
	t1.Negate(r) // r is non-negative, so -r has sgn0 = 1 (or is 0)
	t2.Multiply(u, feSqrtMinusTwoI)
	t2.Multiply(&t2, r)
	t2.Absolute(&t2)
	t.Select(&t1, &t2, isSquare)
	var x2N field.Element
	u2.Square(u)
	x2N.Add(&u2, &u2)
	x2N.Multiply(&x2N, feJ)
	x2N.Negate(&x2N)
	var x1N field.Element
	x1N.Negate(feJ)
	sN.Select(&x1N, &x2N, isSquare)
}

// montgomeryToEdwards is the rational map of RFC 9380 appendix D from
// curve25519 (s = sN/d, t) to edwards25519, sending the exceptional cases
// (t = 0 or s = -1) to the identity.
func montgomeryToEdwards(p *edwards25519.Point, sN, d, t *field.Element) {
	// x = c·s/t = (c·sN)/(d·t), y = (s-1)/(s+1) = (sN-d)/(sN+d).
	var a, b, yN, yD field.Element
	a.Multiply(feSqrtMinus486664, sN)
	b.Multiply(d, t)
	yN.Subtract(sN, d)
	yD.Add(sN, d)
	var X, Y, Z, T field.Element
	X.Multiply(&a, &yD)
	Y.Multiply(&yN, &b)
	Z.Multiply(&b, &yD)
	T.Multiply(&a, &yN)
	var zero field.Element
	exceptional := Z.Equal(&zero)
	X.Select(&zero, &X, exceptional)
	Y.Select(feOne, &Y, exceptional)
	Z.Select(feOne, &Z, exceptional)
	T.Select(&zero, &T, exceptional)
	if _, err := p.SetExtendedCoordinates(&X, &Y, &Z, &T); err != nil {
		panic("match: elligator 2 produced a point off the curve")
	}
}

// hashToCurve25519 is hash_to_curve for curve25519_XMD:SHA-512_ELL2_RO_,
// leaving the result as an edwards25519 point in the prime-order subgroup.
func hashToCurve25519(p *edwards25519.Point, msg, dst []byte) {
	var u0, u1 field.Element
	hashToFieldCurve25519(&u0, &u1, msg, dst)
	var sN, d, t field.Element
	var q edwards25519.Point
	elligator2(&sN, &d, &t, &u0)
	montgomeryToEdwards(p, &sN, &d, &t)
	elligator2(&sN, &d, &t, &u1)
	montgomeryToEdwards(&q, &sN, &d, &t)
	p.Add(p, &q)
	p.MultByCofactor(p)
}

// montgomeryNumDen returns the u-coordinate of p as a fraction (Z+Y)/(Z-Y);
// the denominator is zero only for the identity, whose u is 0.
func montgomeryNumDen(num, den *field.Element, p *edwards25519.Point) {
	_, y, z, _ := p.ExtendedCoordinates()
	num.Add(z, y)
	den.Subtract(z, y)
}

// hashToCurve25519Batch is hashToCurve25519 for many messages, returning
// each point's u-coordinate as nums[i]/dens[i]. The four square roots per
// message are the costly part; their exponentiations run together through
// pow22523Batch.
func hashToCurve25519Batch(nums, dens []field.Element, msgs [][]byte, dst []byte) {
	m := len(msgs)
	us := make([]field.Element, 2*m)
	for i, msg := range msgs {
		hashToFieldCurve25519(&us[2*i], &us[2*i+1], msg, dst)
	}
	type pre struct{ d, n, d3, uv3 field.Element }
	pres := make([]pre, 2*m)
	pws := make([]field.Element, 2*m)
	for j := range us {
		p := &pres[j]
		elligator2Pre(&p.d, &p.n, &p.d3, &p.uv3, &pws[j], &us[j])
	}
	pow22523Batch(pws)
	var q [2]edwards25519.Point
	for i := range m {
		for k := range 2 {
			j := 2*i + k
			p := &pres[j]
			var r, sN, t field.Element
			isSquare := sqrtRatioFinish(&r, &p.n, &p.d3, &p.uv3, &pws[j])
			elligator2Post(&sN, &t, &us[j], &r, isSquare)
			montgomeryToEdwards(&q[k], &sN, &p.d, &t)
		}
		q[0].Add(&q[0], &q[1])
		q[0].MultByCofactor(&q[0])
		montgomeryNumDen(&nums[i], &dens[i], &q[0])
	}
}

// batchInvert replaces each of xs by its inverse, zeros staying zero, with
// one field inversion for the whole batch (Montgomery's trick).
func batchInvert(xs []field.Element) {
	if len(xs) == 0 {
		return
	}
	var zero field.Element
	prefix := make([]field.Element, len(xs))
	var acc field.Element
	acc.One()
	for i := range xs {
		// A zero would zero the product: multiply by one instead, then
		// map its inverse back to zero.
		var x field.Element
		x.Select(feOne, &xs[i], xs[i].Equal(&zero))
		prefix[i] = acc
		acc.Multiply(&acc, &x)
	}
	var inv field.Element
	inv.Invert(&acc)
	for i := len(xs) - 1; i >= 0; i-- {
		isZero := xs[i].Equal(&zero)
		var x field.Element
		x.Select(feOne, &xs[i], isZero)
		var xi field.Element
		xi.Multiply(&inv, &prefix[i])
		inv.Multiply(&inv, &x)
		xs[i].Select(&zero, &xi, isZero)
	}
}
