package match

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"

	"filippo.io/edwards25519"
	"github.com/cloudflare/circl/group"
)

// Backends compared (2-core Xeon, Go 1.26.8; see the package report):
// "edwards25519" is this package's ristretto255 over filippo.io/edwards25519,
// "circl" is github.com/cloudflare/circl/group.Ristretto255.

var benchDST = []byte("parley-psi-v1:ristretto255_XMD:SHA-512_R255MAP_RO_:bench")

func BenchmarkHashToGroup(b *testing.B) {
	msg := []byte("parley-psi-v1|email|someone.with.a.long.name@example.org")
	b.Run("edwards25519", func(b *testing.B) {
		var p edwards25519.Point
		for b.Loop() {
			hashToGroup(&p, msg, benchDST)
		}
	})
	b.Run("circl", func(b *testing.B) {
		for b.Loop() {
			group.Ristretto255.HashToElement(msg, benchDST)
		}
	})
}

func benchScalar(b *testing.B) *edwards25519.Scalar {
	var seed [64]byte
	rand.Read(seed[:])
	s, err := newScalar(seed[:])
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkScalarMult(b *testing.B) {
	s := benchScalar(b)
	b.Run("edwards25519", func(b *testing.B) {
		var p edwards25519.Point
		hashToGroup(&p, []byte("x"), benchDST)
		for b.Loop() {
			p.ScalarMult(s, &p)
		}
	})
	b.Run("circl", func(b *testing.B) {
		cs := group.Ristretto255.NewScalar()
		if err := cs.UnmarshalBinary(s.Bytes()); err != nil {
			b.Fatal(err)
		}
		e := group.Ristretto255.HashToElement([]byte("x"), benchDST)
		for b.Loop() {
			e.Mul(e, cs)
		}
	})
}

func BenchmarkEncodeDecode(b *testing.B) {
	var p edwards25519.Point
	hashToGroup(&p, []byte("x"), benchDST)
	var enc [32]byte
	encodeElement(&enc, &p)
	b.Run("encode/edwards25519", func(b *testing.B) {
		for b.Loop() {
			encodeElement(&enc, &p)
		}
	})
	b.Run("decode/edwards25519", func(b *testing.B) {
		var q edwards25519.Point
		for b.Loop() {
			if err := decodeElement(&q, enc[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	ce := group.Ristretto255.NewElement()
	b.Run("encode/circl", func(b *testing.B) {
		e := group.Ristretto255.HashToElement([]byte("x"), benchDST)
		for b.Loop() {
			e.MarshalBinary()
		}
	})
	b.Run("decode/circl", func(b *testing.B) {
		for b.Loop() {
			if err := ce.UnmarshalBinary(enc[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSession measures a whole mutual match of n × n items; the
// reported elements/s counts both parties' elements.
func BenchmarkSession(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		xs := aliases("x", n)
		ys := slices.Concat(aliases("x", n/10), aliases("y", n-n/10))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				a, bb := pair(b, n)
				gotA, _, _ := run(b, a, bb, xs, ys)
				if len(gotA) != n/10 {
					b.Fatalf("matched %d", len(gotA))
				}
			}
			b.ReportMetric(float64(2*n*b.N)/b.Elapsed().Seconds(), "elements/s")
		})
	}
}

// BenchmarkRound2 isolates the peer-facing round on n elements.
func BenchmarkRound2(b *testing.B) {
	const n = 512
	a, bb := pair(b, n)
	var a1, b1 bytes.Buffer
	if _, err := a.Round1(context.Background(), slices.Values(aliases("x", n)), &a1); err != nil {
		b.Fatal(err)
	}
	if _, err := bb.Round1(context.Background(), slices.Values(aliases("y", n)), &b1); err != nil {
		b.Fatal(err)
	}
	msg := b1.Bytes()
	for b.Loop() {
		a.step = 1
		if err := a.Round2(context.Background(), bytes.NewReader(msg), &bytes.Buffer{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "elements/s")
}
