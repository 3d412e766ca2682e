package psi

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"filippo.io/edwards25519"
	"github.com/cloudflare/circl/dh/x25519"
)

// testInputs are u-coordinates worth trying: hashed points, random
// canonical values (half of them on the twist), and edge values.
func testInputs(t *testing.T, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n / 2 {
		var p edwards25519.Point
		hashToCurve25519(&p, []byte{byte(i), byte(i >> 8), 'x'}, []byte("test"))
		out = append(out, p.BytesMontgomery())
	}
	for len(out) < n {
		b := make([]byte, 32)
		rand.Read(b)
		b[31] &= 0x7f
		if checkCanonical(b) == nil {
			out = append(out, b)
		}
	}
	for _, h := range []string{
		"0900000000000000000000000000000000000000000000000000000000000000", // base point
		"ebffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p - 2
		"0200000000000000000000000000000000000000000000000000000000000000",
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff3f",
	} {
		out = append(out, mustHex(h))
	}
	return out
}

// TestMulBatchAgrees checks mulBatch (the vector path where the CPU has
// it) against crypto/ecdh and circl's X25519, two independent
// implementations, lane by lane, for batch sizes around the lane count.
func TestMulBatchAgrees(t *testing.T) {
	t.Logf("IFMA path in use: %v", useIFMA)
	for _, n := range []int{1, 7, 8, 9, 16, 35} {
		var seed [32]byte
		rand.Read(seed[:])
		bl, err := newBlinder(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		inputs := testInputs(t, n)
		in := bytes.Join(inputs, nil)
		out := make([]byte, len(in))
		if bad := bl.mulBatch(out, in); bad >= 0 {
			t.Fatalf("n=%d: element %d reported low order", n, bad)
		}
		priv, _ := ecdh.X25519().NewPrivateKey(seed[:])
		for i, u := range inputs {
			pub, err := ecdh.X25519().NewPublicKey(u)
			if err != nil {
				t.Fatal(err)
			}
			want, err := priv.ECDH(pub)
			if err != nil {
				t.Fatal(err)
			}
			var cs, ck, cp x25519.Key
			copy(ck[:], seed[:])
			copy(cp[:], u)
			if !x25519.Shared(&cs, &ck, &cp) {
				t.Fatalf("circl refused %x", u)
			}
			got := out[i*32 : (i+1)*32]
			if !bytes.Equal(got, want) || !bytes.Equal(got, cs[:]) {
				t.Errorf("n=%d element %d (u=%x): got %x, crypto/ecdh %x, circl %x", n, i, u, got, want, cs[:])
			}
		}
	}
}

// TestMulBatchRFC7748 is RFC 7748 section 5.2's first test vector, at
// every lane of a full batch.
func TestMulBatchRFC7748(t *testing.T) {
	scalar := mustHex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
	u := mustHex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
	want := "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
	bl, err := newBlinder(scalar)
	if err != nil {
		t.Fatal(err)
	}
	in := bytes.Repeat(u, ifmaLanes+1)
	out := make([]byte, len(in))
	if bad := bl.mulBatch(out, in); bad >= 0 {
		t.Fatalf("element %d reported low order", bad)
	}
	for i := range ifmaLanes + 1 {
		if got := hex.EncodeToString(out[i*32 : (i+1)*32]); got != want {
			t.Errorf("lane %d: %s, want %s", i, got, want)
		}
	}
}

// TestMulBatchLowOrder: a low-order input in any lane is reported by its
// index.
func TestMulBatchLowOrder(t *testing.T) {
	var seed [32]byte
	rand.Read(seed[:])
	bl, _ := newBlinder(seed[:])
	lowOrder := [][]byte{
		make([]byte, 32), // u = 0, order 2
		mustHex("0100000000000000000000000000000000000000000000000000000000000000"), // order 4
		mustHex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), // u = -1, on the twist, order 4
		mustHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), // order 8
		mustHex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"), // order 8
	}
	for i, pos := range []int{0, 5, 8, 10, 11} {
		inputs := testInputs(t, 12)[:12]
		inputs[pos] = lowOrder[i]
		in := bytes.Join(inputs, nil)
		if bad := bl.mulBatch(make([]byte, len(in)), in); bad != pos {
			t.Errorf("%x at %d: reported %d", lowOrder[i], pos, bad)
		}
	}
}
