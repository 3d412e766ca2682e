package match

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"filippo.io/edwards25519"
	"github.com/cloudflare/circl/group"
)

// RFC 9496 appendix A.1: encodings of B·0 … B·3.
var generatorMultiples = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
	"6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919",
	"94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259",
}

func TestEncodeGeneratorMultiples(t *testing.T) {
	p := edwards25519.NewIdentityPoint()
	g := edwards25519.NewGeneratorPoint()
	for i, want := range generatorMultiples {
		var out [32]byte
		encodeElement(&out, p)
		if got := hex.EncodeToString(out[:]); got != want {
			t.Errorf("B·%d: encoded %s, want %s", i, got, want)
		}
		var q edwards25519.Point
		err := decodeElement(&q, out[:])
		if err != nil {
			t.Fatalf("B·%d: decode: %v", i, err)
		}
		var again [32]byte
		encodeElement(&again, &q)
		if again != out {
			t.Errorf("B·%d: decode/encode round trip changed the encoding", i)
		}
		if (i == 0) != isIdentity(&q) {
			t.Errorf("B·%d: isIdentity = %v", i, isIdentity(&q))
		}
		p.Add(p, g)
	}
}

// RFC 9496 appendix A.2 (a selection): encodings that must be refused.
func TestDecodeRefusesBadEncodings(t *testing.T) {
	bad := []string{
		// non-canonical field encodings
		"00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		// negative field elements
		"0100000000000000000000000000000000000000000000000000000000000000",
		"01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
		// non-square x^2
		"26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
		"4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
		// negative xy value
		"3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
		// s = -1, causing y = 0
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		// wrong length
		"e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d",
	}
	for _, h := range bad {
		b, _ := hex.DecodeString(h)
		var p edwards25519.Point
		if err := decodeElement(&p, b); err == nil {
			t.Errorf("decodeElement(%s) accepted a bad encoding", h)
		}
	}
}

// TestHashToGroupMatchesCircl cross-checks expand_message_xmd, the elligator
// map and the encoding against circl, an independent implementation of the
// same RFCs.
func TestHashToGroupMatchesCircl(t *testing.T) {
	dsts := [][]byte{[]byte("QUUX-V01-CS02-with-ristretto255_XMD:SHA-512_R255MAP_RO_"), []byte("parley-psi-v1|test")}
	msgs := [][]byte{nil, []byte("abc"), []byte("parley-psi-v1|email|foo@example.com"), bytes.Repeat([]byte("a"), 300)}
	for i := 0; i < 64; i++ {
		m := make([]byte, i*7)
		rand.Read(m)
		msgs = append(msgs, m)
	}
	for _, dst := range dsts {
		for _, msg := range msgs {
			var p edwards25519.Point
			hashToGroup(&p, msg, dst)
			var got [32]byte
			encodeElement(&got, &p)
			want, err := group.Ristretto255.HashToElement(msg, dst).MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:], want) {
				t.Fatalf("hashToGroup(%q, %q) = %x, circl says %x", msg, dst, got, want)
			}
		}
	}
}

func TestScalarMultMatchesCircl(t *testing.T) {
	for i := 0; i < 32; i++ {
		var seed [64]byte
		rand.Read(seed[:])
		s, err := newScalar(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		var p edwards25519.Point
		hashToGroup(&p, seed[:8], []byte("dst"))
		var pEnc [32]byte
		encodeElement(&pEnc, &p)
		p.ScalarMult(s, &p)
		var got [32]byte
		encodeElement(&got, &p)

		ce := group.Ristretto255.NewElement()
		if err := ce.UnmarshalBinary(pEnc[:]); err != nil {
			t.Fatal(err)
		}
		cs := group.Ristretto255.NewScalar()
		if err := cs.UnmarshalBinary(s.Bytes()); err != nil {
			t.Fatal(err)
		}
		want, _ := group.Ristretto255.NewElement().Mul(ce, cs).MarshalBinary()
		if !bytes.Equal(got[:], want) {
			t.Fatalf("scalar mult mismatch: %x vs circl %x", got, want)
		}
	}
}

// TestTagIgnoresTorsion: representatives of one ristretto255 element get the
// same tag (else the two sides, whose decodings pick representatives
// independently, would miss matches); different elements get different ones.
func TestTagIgnoresTorsion(t *testing.T) {
	s, _ := pair(t, 10)
	var pts []edwards25519.Point
	for i := range 8 {
		var p, q, r edwards25519.Point
		hashToGroup(&p, []byte{byte(i)}, []byte("torsion"))
		var enc [32]byte
		encodeElement(&enc, &p)
		if err := decodeElement(&q, enc[:]); err != nil {
			t.Fatal(err)
		}
		// r = p + (0, -1), the point of order 2.
		x, y, z, tt := p.ExtendedCoordinates()
		x.Negate(x)
		y.Negate(y)
		if _, err := r.SetExtendedCoordinates(x, y, z, tt); err != nil {
			t.Fatal(err)
		}
		pts = append(pts, p, q, r)
	}
	out := make([]byte, len(pts)*tagSize)
	s.tagBatch(out, pts)
	tag := func(i int) string { return string(out[i*tagSize : (i+1)*tagSize]) }
	seen := map[string]int{}
	for i := 0; i < len(pts); i += 3 {
		if tag(i) != tag(i+1) || tag(i) != tag(i+2) {
			t.Errorf("element %d: representatives got different tags", i/3)
		}
		if j, ok := seen[tag(i)]; ok {
			t.Errorf("elements %d and %d share a tag", j, i/3)
		}
		seen[tag(i)] = i / 3
	}
}
