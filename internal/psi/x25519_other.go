//go:build !amd64 || purego

package psi

import "filippo.io/edwards25519/field"

const ifmaLanes = 8

// useIFMA is false: there is no vector path on this platform.
const useIFMA = false

func (b *blinder) mulBatchIFMA(out, in []byte) int { panic("match: no IFMA path on this platform") }

// pow22523Batch replaces each x of xs by x^((p-5)/8).
func pow22523Batch(xs []field.Element) {
	for i := range xs {
		xs[i].Pow22523(&xs[i])
	}
}
