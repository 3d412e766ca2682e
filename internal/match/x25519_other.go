//go:build !amd64 || purego

package match

const ifmaLanes = 8

// useIFMA is false: there is no vector path on this platform.
const useIFMA = false

func (b *blinder) mulBatchIFMA(out, in []byte) int { panic("match: no IFMA path on this platform") }
