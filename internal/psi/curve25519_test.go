package psi

import (
	"encoding/hex"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// RFC 9380 appendix J.4.1, curve25519_XMD:SHA-512_ELL2_RO_: the field
// elements, both mapped points' u-coordinates and the result's, as
// big-endian hexadecimal.
var curve25519ROVectors = []struct {
	msg, u0, u1, q0x, q1x, px string
}{
	{"",
		"005fe8a7b8fef0a16c105e6cadf5a6740b3365e18692a9c05bfbb4d97f645a6a",
		"1347edbec6a2b5d8c02e058819819bee177077c9d10a4ce165aab0fd0252261a",
		"36b4df0c864c64707cbf6cf36e9ee2c09a6cb93b28313c169be29561bb904f98",
		"3fa114783a505c0b2b2fbeef0102853c0b494e7757f2a089d0daae7ed9a0db2b",
		"2de3780abb67e861289f5749d16d3e217ffa722192d16bbd9d1bfb9d112b98c0"},
	{"abc",
		"49bed021c7a3748f09fa8cdfcac044089f7829d3531066ac9e74e0994e05bc7d",
		"5c36525b663e63389d886105cee7ed712325d5a97e60e140aba7e2ce5ae851b6",
		"16b3d86e056b7970fa00165f6f48d90b619ad618791661b7b5e1ec78be10eac1",
		"7ec29ddbf34539c40adfa98fcb39ec36368f47f30e8f888cc7e86f4d46e0c264",
		"2b4419f1f2d48f5872de692b0aca72cc7b0a60915dd70bde432e826b6abc526d"},
	{"abcdef0123456789",
		"6412b7485ba26d3d1b6c290a8e1435b2959f03721874939b21782df17323d160",
		"24c7b46c1c6d9a21d32f5707be1380ab82db1054fde82865d5c9e3d968f287b2",
		"71de3dadfe268872326c35ac512164850860567aea0e7325e6b91a98f86533ad",
		"5704069021f61e41779e2ba6b932268316d6d2a6f064f997a22fef16d1eaeaca",
		"68ca1ea5a6acf4e9956daa101709b1eee6c1bb0df1de3b90d4602382a104c036"},
	{"q128_" + strings.Repeat("q", 128),
		"5e123990f11bbb5586613ffabdb58d47f64bb5f2fa115f8ea8df0188e0c9e1b5",
		"5e8553eb00438a0bb1e7faa59dec6d8087f9c8011e5fb8ed9df31cb6c0d4ac19",
		"7a94d45a198fb5daa381f45f2619ab279744efdd8bd8ed587fc5b65d6cea1df0",
		"30506fb7a32136694abd61b6113770270debe593027a968a01f271e146e60c18",
		"096e9c8bae6c06b554c1ee69383bb0e82267e064236b3a30608d4ed20b73ac5a"},
	{"a512_" + strings.Repeat("a", 512),
		"20f481e85da7a3bf60ac0fb11ed1d0558fc6f941b3ac5469aa8b56ec883d6d7d",
		"017d57fd257e9a78913999a23b52ca988157a81b09c5442501d07fed20869465",
		"02d606e2699b918ee36f2818f2bc5013e437e673c9f9b9cdc15fd0c5ee913970",
		"38920e9b988d1ab7449c0fa9a6058192c0c797bb3d42ac345724341a1aa98745",
		"1bc61845a138e912f047b5e70ba9606ba2a447a4dade024c8ef3dd42b7bbc5fe"},
}

// beHex is the canonical value of e as big-endian hexadecimal.
func beHex(e *field.Element) string {
	b := e.Bytes()
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return hex.EncodeToString(b)
}

func TestHashToCurve25519Vectors(t *testing.T) {
	dst := []byte("QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_RO_")
	for _, v := range curve25519ROVectors {
		name := v.msg
		if len(name) > 16 {
			name = name[:16]
		}
		t.Run(name, func(t *testing.T) {
			var u0, u1 field.Element
			hashToFieldCurve25519(&u0, &u1, []byte(v.msg), dst)
			if beHex(&u0) != v.u0 || beHex(&u1) != v.u1 {
				t.Fatalf("hash_to_field = %s, %s; want %s, %s", beHex(&u0), beHex(&u1), v.u0, v.u1)
			}
			for i, u := range []*field.Element{&u0, &u1} {
				var sN, d, tt, x field.Element
				elligator2(&sN, &d, &tt, u)
				x.Multiply(&sN, new(field.Element).Invert(&d))
				want := []string{v.q0x, v.q1x}[i]
				if beHex(&x) != want {
					t.Errorf("Q%d.x = %s, want %s", i, beHex(&x), want)
				}
				// The mapped point is on curve25519: t² = s³ + J·s² + s.
				var rhs, lhs, s2 field.Element
				s2.Square(&x)
				rhs.Multiply(&s2, &x)
				rhs.Add(&rhs, new(field.Element).Multiply(&s2, feJ))
				rhs.Add(&rhs, &x)
				if lhs.Square(&tt).Equal(&rhs) != 1 {
					t.Errorf("Q%d is not on curve25519", i)
				}
			}
			var p edwards25519.Point
			hashToCurve25519(&p, []byte(v.msg), dst)
			var num, den field.Element
			montgomeryNumDen(&num, &den, &p)
			num.Multiply(&num, den.Invert(&den))
			if beHex(&num) != v.px {
				t.Errorf("P.x = %s, want %s", beHex(&num), v.px)
			}
			// Agrees with the library's own Montgomery encoding.
			if got := beHex(new(field.Element).Set(mustFE(t, p.BytesMontgomery()))); got != v.px {
				t.Errorf("BytesMontgomery = %s, want %s", got, v.px)
			}
		})
	}
}

func mustFE(t *testing.T, b []byte) *field.Element {
	t.Helper()
	e, err := new(field.Element).SetBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestBatchInvert(t *testing.T) {
	xs := make([]field.Element, 9)
	for i := range xs {
		xs[i].Mult32(feOne, uint32(i*i+3*i)) // xs[0] is zero
	}
	want := make([]field.Element, len(xs))
	for i := range xs {
		want[i].Invert(&xs[i])
	}
	batchInvert(xs)
	for i := range xs {
		if xs[i].Equal(&want[i]) != 1 {
			t.Errorf("element %d: got %s, want %s", i, beHex(&xs[i]), beHex(&want[i]))
		}
	}
}

// TestHashToCurve25519Batch: the batched hash (vector exponentiations
// where the CPU has them) gives the scalar one's points, for batch sizes
// around the lane count, and the RFC vectors through the batch path.
func TestHashToCurve25519Batch(t *testing.T) {
	dst := []byte("QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_RO_")
	var msgs [][]byte
	var want []string
	for _, v := range curve25519ROVectors {
		msgs = append(msgs, []byte(v.msg))
		want = append(want, v.px)
	}
	for i := range 40 {
		m := []byte{byte(i), 'm'}
		msgs = append(msgs, m)
		var p edwards25519.Point
		hashToCurve25519(&p, m, dst)
		want = append(want, beHex(mustFE(t, p.BytesMontgomery())))
	}
	for _, n := range []int{1, 3, 8, 9, 16, len(msgs)} {
		nums := make([]field.Element, n)
		dens := make([]field.Element, n)
		hashToCurve25519Batch(nums, dens, msgs[:n], dst)
		for i := range n {
			var u field.Element
			u.Multiply(&nums[i], new(field.Element).Invert(&dens[i]))
			if beHex(&u) != want[i] {
				t.Errorf("n=%d message %d: u = %s, want %s", n, i, beHex(&u), want[i])
			}
		}
	}
}

// TestSqrtRatioFinish: split into its parts, with the exponentiations
// batched, SqrtRatio gives the library's answer on squares, non-squares
// and zero.
func TestSqrtRatioFinish(t *testing.T) {
	const n = 67
	us, vs := make([]field.Element, n), make([]field.Element, n)
	uv3s, pws := make([]field.Element, n), make([]field.Element, n)
	for i := range n {
		us[i].Mult32(feOne, uint32(i*7919+i*i))
		vs[i].Mult32(feOne, uint32(i*104729+3))
		if i%5 == 0 {
			us[i].Negate(&us[i])
		}
		var v2, tmp field.Element
		v2.Square(&vs[i])
		uv3s[i].Multiply(&us[i], tmp.Multiply(&v2, &vs[i]))
		pws[i].Multiply(&uv3s[i], tmp.Square(&v2))
	}
	pow22523Batch(pws)
	squares := 0
	for i := range n {
		var want, got field.Element
		_, wantSq := want.SqrtRatio(&us[i], &vs[i])
		gotSq := sqrtRatioFinish(&got, &us[i], &vs[i], &uv3s[i], &pws[i])
		if got.Equal(&want) != 1 || gotSq != wantSq {
			t.Errorf("u=%s v=%s: got %s %d, want %s %d", beHex(&us[i]), beHex(&vs[i]), beHex(&got), gotSq, beHex(&want), wantSq)
		}
		squares += wantSq
	}
	if squares == 0 || squares == n {
		t.Fatalf("%d of %d ratios were squares: the test needs both kinds", squares, n)
	}
}
