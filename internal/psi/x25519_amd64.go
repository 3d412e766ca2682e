//go:build amd64 && !purego

package psi

import (
	"encoding/binary"

	"filippo.io/edwards25519/field"
	"golang.org/x/sys/cpu"
)

// ifmaLanes is how many ladders run side by side: eight 64-bit lanes of
// a 512-bit register.
const ifmaLanes = 8

// useIFMA selects the vector ladder. x/sys/cpu reports AVX-512 features
// only when the operating system saves the 512-bit registers.
var useIFMA = cpu.X86.HasAVX512F && cpu.X86.HasAVX512IFMA && cpu.X86.HasAVX512DQ

// fe8 is eight field elements, limb-major (see x25519_amd64.s).
type fe8 [5][ifmaLanes]uint64

//go:noescape
func fe8Mul(out, a, b *fe8)

//go:noescape
func fe8Add(out, a, b *fe8)

//go:noescape
func fe8Sub(out, a, b *fe8)

//go:noescape
func fe8Cswap(a, b *fe8, bit uint64)

//go:noescape
func fe8AddSub(sum, diff, a, b *fe8)

//go:noescape
func fe8MulA24Add(out, e, aa *fe8)

const mask51 = 1<<51 - 1

// setBytes loads lane k from a canonical little-endian u-coordinate.
func (v *fe8) setBytes(k int, b []byte) {
	v[0][k] = binary.LittleEndian.Uint64(b[0:8]) & mask51
	v[1][k] = binary.LittleEndian.Uint64(b[6:14]) >> 3 & mask51
	v[2][k] = binary.LittleEndian.Uint64(b[12:20]) >> 6 & mask51
	v[3][k] = binary.LittleEndian.Uint64(b[19:27]) >> 1 & mask51
	v[4][k] = binary.LittleEndian.Uint64(b[24:32]) >> 12 & mask51
}

// bytes writes lane k in canonical form.
func (v *fe8) bytes(k int, out []byte) {
	l := [5]uint64{v[0][k], v[1][k], v[2][k], v[3][k], v[4][k]}
	// Two carry passes bring every limb below 2^51 (the value below
	// 2^255); field.SetBytes then reduces modulo p for the canonical form.
	for range 2 {
		for j := range 4 {
			l[j+1] += l[j] >> 51
			l[j] &= mask51
		}
		c := l[4] >> 51
		l[4] &= mask51
		l[0] += 19 * c
	}
	var b [32]byte
	binary.LittleEndian.PutUint64(b[0:], l[0]|l[1]<<51)
	binary.LittleEndian.PutUint64(b[8:], l[1]>>13|l[2]<<38)
	binary.LittleEndian.PutUint64(b[16:], l[2]>>26|l[3]<<25)
	binary.LittleEndian.PutUint64(b[24:], l[3]>>39|l[4]<<12)
	var e field.Element
	if _, err := e.SetBytes(b[:]); err != nil {
		panic(err)
	}
	copy(out, e.Bytes())
}

func (v *fe8) setSmall(c uint64) {
	*v = fe8{}
	for k := range ifmaLanes {
		v[0][k] = c
	}
}

//go:noescape
func fe8Square(out, a *fe8)

// fe8SquareN sets out = a^(2^n), n ≥ 1.
func fe8SquareN(out, a *fe8, n int) {
	fe8Square(out, a)
	for range n - 1 {
		fe8Square(out, out)
	}
}

// fe8Pow2250 sets out = z^(2^250 - 1) and z11 = z^11, the common part of
// inversion and of the square root's exponent.
func fe8Pow2250(out, z11, z *fe8) {
	var z2, z9, z2_5_0, z2_10_0, z2_20_0, z2_50_0, z2_100_0, t fe8
	fe8Square(&z2, z)             // 2
	fe8SquareN(&t, &z2, 2)        // 8
	fe8Mul(&z9, &t, z)            // 9
	fe8Mul(z11, &z9, &z2)         // 11
	fe8Square(&t, z11)            // 22
	fe8Mul(&z2_5_0, &t, &z9)      // 2^5 - 1
	fe8SquareN(&t, &z2_5_0, 5)    // 2^10 - 2^5
	fe8Mul(&z2_10_0, &t, &z2_5_0) // 2^10 - 1
	fe8SquareN(&t, &z2_10_0, 10)
	fe8Mul(&z2_20_0, &t, &z2_10_0) // 2^20 - 1
	fe8SquareN(&t, &z2_20_0, 20)
	fe8Mul(&t, &t, &z2_20_0) // 2^40 - 1
	fe8SquareN(&t, &t, 10)
	fe8Mul(&z2_50_0, &t, &z2_10_0) // 2^50 - 1
	fe8SquareN(&t, &z2_50_0, 50)
	fe8Mul(&z2_100_0, &t, &z2_50_0) // 2^100 - 1
	fe8SquareN(&t, &z2_100_0, 100)
	fe8Mul(&t, &t, &z2_100_0) // 2^200 - 1
	fe8SquareN(&t, &t, 50)
	fe8Mul(out, &t, &z2_50_0) // 2^250 - 1
}

// fe8Invert sets out = z^(p-2), which is 1/z, or 0 for z = 0.
func fe8Invert(out, z *fe8) {
	var t, z11 fe8
	fe8Pow2250(&t, &z11, z)
	fe8SquareN(&t, &t, 5) // 2^255 - 2^5
	fe8Mul(out, &t, &z11) // 2^255 - 21 = p - 2
}

// fe8Pow22523 sets out = z^((p-5)/8) = z^(2^252 - 3).
func fe8Pow22523(out, z *fe8) {
	var t, z11 fe8
	fe8Pow2250(&t, &z11, z)
	fe8SquareN(&t, &t, 2) // 2^252 - 4
	fe8Mul(out, &t, z)    // 2^252 - 3
}

// pow22523Batch replaces each x of xs by x^((p-5)/8), eight at a time in
// vector registers when the CPU allows.
func pow22523Batch(xs []field.Element) {
	n := len(xs)
	done := 0
	if useIFMA {
		done = n - n%ifmaLanes
		var v, r fe8
		var b [32]byte
		for g := 0; g < done; g += ifmaLanes {
			for k := range ifmaLanes {
				copy(b[:], xs[g+k].Bytes())
				v.setBytes(k, b[:])
			}
			fe8Pow22523(&r, &v)
			for k := range ifmaLanes {
				r.bytes(k, b[:])
				if _, err := xs[g+k].SetBytes(b[:]); err != nil {
					panic(err)
				}
			}
		}
	}
	for i := done; i < n; i++ {
		xs[i].Pow22523(&xs[i])
	}
}

// ladder8 computes X25519(scalar, u) for eight u-coordinates at once:
// RFC 7748's Montgomery ladder, every lane taking the same steps since the
// scalar is the same. The conditional swaps are masked, not branched.
func ladder8(x2 *fe8, scalar *[32]byte, x1 *fe8) {
	var z2, x3, z3, a, aa, b, bb, e, c, d, da, cb, t fe8
	x2.setSmall(1)
	z2 = fe8{}
	x3 = *x1
	z3.setSmall(1)
	var swap uint64
	for i := 254; i >= 0; i-- {
		bit := uint64(scalar[i>>3]>>(i&7)) & 1
		swap ^= bit
		fe8Cswap(x2, &x3, swap)
		fe8Cswap(&z2, &z3, swap)
		swap = bit
		fe8AddSub(&a, &b, x2, &z2)
		fe8AddSub(&c, &d, &x3, &z3)
		fe8Square(&aa, &a)
		fe8Square(&bb, &b)
		fe8Sub(&e, &aa, &bb)
		fe8Mul(&da, &d, &a)
		fe8Mul(&cb, &c, &b)
		fe8AddSub(&x3, &t, &da, &cb)
		fe8Square(&x3, &x3)
		fe8Square(&t, &t)
		fe8Mul(&z3, x1, &t)
		fe8Mul(x2, &aa, &bb)
		fe8MulA24Add(&t, &e, &aa)
		fe8Mul(&z2, &e, &t)
	}
	fe8Cswap(x2, &x3, swap)
	fe8Cswap(&z2, &z3, swap)
	fe8Invert(&z2, &z2)
	fe8Mul(x2, x2, &z2)
}

// mulBatchIFMA is mulBatch for a multiple of ifmaLanes elements.
func (bl *blinder) mulBatchIFMA(out, in []byte) int {
	n := len(in) / elementSize
	bad := -1
	var x1, x2 fe8
	for g := 0; g < n; g += ifmaLanes {
		for k := range ifmaLanes {
			x1.setBytes(k, in[(g+k)*elementSize:])
		}
		ladder8(&x2, &bl.clamped, &x1)
		for k := range ifmaLanes {
			o := out[(g+k)*elementSize : (g+k+1)*elementSize]
			x2.bytes(k, o)
			if bad < 0 && [32]byte(o) == [32]byte{} {
				bad = g + k
			}
		}
	}
	return bad
}
