//go:build unix

package stix

import "syscall"

// processCPU returns the user+system CPU time this process has used, so
// benchmarks can report throughput per CPU-second, which a machine shared
// with other jobs distorts far less than wall time.
func processCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
