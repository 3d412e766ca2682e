//go:build amd64 && !purego

package psi

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

var bigP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// laneValue is lane k of v as an integer modulo p.
func laneValue(v *fe8, k int) *big.Int {
	x := new(big.Int)
	for j := 4; j >= 0; j-- {
		x.Lsh(x, 51)
		x.Add(x, new(big.Int).SetUint64(v[j][k]))
	}
	return x.Mod(x, bigP)
}

// TestFe8Ops checks every vector operation lane by lane against math/big,
// on inputs at the edge of what the operations accept (limbs just below
// 2^52) as well as random ones, and checks that outputs stay below 2^52.
func TestFe8Ops(t *testing.T) {
	if !useIFMA {
		t.Skip("this CPU has no AVX-512 IFMA; the vector path is not used")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	limb := func(i int) uint64 {
		switch i % 4 {
		case 0:
			return 1<<52 - 1 - rng.Uint64N(4)
		case 1:
			return rng.Uint64N(1 << 52)
		case 2:
			return rng.Uint64N(1 << 51)
		}
		return rng.Uint64N(3)
	}
	for iter := range 200 {
		var a, b fe8
		for j := range 5 {
			for k := range ifmaLanes {
				a[j][k] = limb(iter + j + k)
				b[j][k] = limb(iter*3 + j + 2*k)
			}
		}
		var mul, sq, add, sub, inv, add2, sub2, a24 fe8
		fe8Mul(&mul, &a, &b)
		fe8Square(&sq, &a)
		fe8Add(&add, &a, &b)
		fe8Sub(&sub, &a, &b)
		fe8AddSub(&add2, &sub2, &a, &b)
		fe8MulA24Add(&a24, &a, &b)
		if iter%20 == 0 {
			fe8Invert(&inv, &a)
		}
		for k := range ifmaLanes {
			x, y := laneValue(&a, k), laneValue(&b, k)
			check := func(name string, got *fe8, want *big.Int) {
				t.Helper()
				want.Mod(want, bigP)
				if laneValue(got, k).Cmp(want) != 0 {
					t.Fatalf("%s lane %d: got %x, want %x", name, k, laneValue(got, k), want)
				}
				for j := range 5 {
					if got[j][k] >= 1<<52 {
						t.Fatalf("%s lane %d limb %d = %#x, not below 2^52", name, k, j, got[j][k])
					}
				}
			}
			check("mul", &mul, new(big.Int).Mul(x, y))
			check("square", &sq, new(big.Int).Mul(x, x))
			check("add", &add, new(big.Int).Add(x, y))
			check("sub", &sub, new(big.Int).Sub(x, y))
			check("addsub/sum", &add2, new(big.Int).Add(x, y))
			check("addsub/diff", &sub2, new(big.Int).Sub(x, y))
			check("a24", &a24, new(big.Int).Add(y, new(big.Int).Mul(x, big.NewInt(121665))))
			if iter%20 == 0 {
				check("invert", &inv, new(big.Int).Exp(x, new(big.Int).Sub(bigP, big.NewInt(2)), bigP))
			}
		}
		c := a
		d := b
		fe8Cswap(&c, &d, 0)
		if c != a || d != b {
			t.Fatal("cswap with 0 changed its operands")
		}
		fe8Cswap(&c, &d, 1)
		if c != b || d != a {
			t.Fatal("cswap with 1 did not swap")
		}
	}
}
