package psi

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"github.com/cloudflare/circl/dh/x25519"
)

// Per-primitive costs of the protocol (docs/BENCHMARKS.md, private
// matching). Each element costs one hash to the curve and two X25519
// multiplications per side. "edwards25519" is the variable-base
// multiplication version 1 used (ristretto255 over filippo.io/edwards25519),
// kept here as the yardstick.

var benchDST = []byte("parley-psi-v2:curve25519_XMD:SHA-512_ELL2_RO_:bench")

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerOp reports, besides ns/op (wall time, which a shared machine
// inflates), the process CPU time per op and per element: the figures that
// carry over between loads. Call it first; it reports when b ends.
func cpuPerOp(b *testing.B, elementsPerOp int) {
	start := processCPU()
	b.Cleanup(func() {
		cpu := float64((processCPU() - start).Nanoseconds())
		b.ReportMetric(cpu/float64(b.N), "cpu-ns/op")
		if elementsPerOp > 1 {
			b.ReportMetric(cpu/float64(b.N*elementsPerOp), "cpu-ns/element")
		}
	})
}

func BenchmarkHashToCurve25519(b *testing.B) {
	msg := []byte("parley-psi-v1|email|someone.with.a.long.name@example.org")
	b.Run("scalar", func(b *testing.B) {
		cpuPerOp(b, 1)
		var p edwards25519.Point
		for b.Loop() {
			hashToCurve25519(&p, msg, benchDST)
		}
	})
	b.Run("batch-1024", func(b *testing.B) {
		cpuPerOp(b, 1024)
		msgs := make([][]byte, 1024)
		for i := range msgs {
			msgs[i] = fmt.Appendf(nil, "parley-psi-v1|email|someone%d@example.org", i)
		}
		nums := make([]field.Element, len(msgs))
		dens := make([]field.Element, len(msgs))
		for b.Loop() {
			hashToCurve25519Batch(nums, dens, msgs, benchDST)
		}
	})
}

func BenchmarkScalarMult(b *testing.B) {
	var seed [64]byte
	rand.Read(seed[:])
	s, err := edwards25519.NewScalar().SetUniformBytes(seed[:])
	if err != nil {
		b.Fatal(err)
	}
	var p edwards25519.Point
	hashToCurve25519(&p, []byte("x"), benchDST)
	b.Run("edwards25519", func(b *testing.B) {
		cpuPerOp(b, 1)
		for b.Loop() {
			p.ScalarMult(s, &p)
		}
	})
	k, _ := ecdh.X25519().GenerateKey(rand.Reader)
	pub, _ := ecdh.X25519().NewPublicKey(p.BytesMontgomery())
	b.Run("x25519/crypto-ecdh", func(b *testing.B) {
		cpuPerOp(b, 1)
		for b.Loop() {
			k.ECDH(pub)
		}
	})
	b.Run("x25519/circl", func(b *testing.B) {
		cpuPerOp(b, 1)
		var sk, pk, sh x25519.Key
		copy(sk[:], seed[:32])
		copy(pk[:], p.BytesMontgomery())
		for b.Loop() {
			x25519.Shared(&sh, &sk, &pk)
		}
	})
	bl, err := newBlinder(seed[:32])
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 8, 64} { // 1 takes the circl path
		in := slices.Repeat(p.BytesMontgomery(), n)
		out := make([]byte, len(in))
		b.Run(fmt.Sprintf("x25519/mulBatch-%d", n), func(b *testing.B) {
			cpuPerOp(b, n)
			for b.Loop() {
				bl.mulBatch(out, in)
			}
		})
	}
}

func BenchmarkBatchInvert(b *testing.B) {
	xs := make([]field.Element, 1024)
	for i := range xs {
		xs[i].Mult32(feOne, uint32(i+1))
	}
	cpuPerOp(b, len(xs))
	for b.Loop() {
		batchInvert(xs)
	}
}

// BenchmarkSession measures a whole mutual match of n × n items; the
// reported elements/s counts both parties' elements.
func BenchmarkSession(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		xs := aliases("x", n)
		ys := slices.Concat(aliases("x", n/10), aliases("y", n-n/10))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cpuPerOp(b, 2*n)
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
	cpuPerOp(b, n)
	for b.Loop() {
		a.step = 1
		if err := a.Round2(context.Background(), bytes.NewReader(msg), &bytes.Buffer{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "elements/s")
}
