package match

const ifmaLanes = 8

var useIFMA = false

func (b *blinder) mulBatchIFMA(out, in []byte) int { panic("match: no IFMA path on this platform") }
