//go:build !unix

package stix

// processCPU is unavailable here; the objects/cpu-s metric reads 0.
func processCPU() float64 { return 0 }
