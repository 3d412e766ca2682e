package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the collector's pace for `parley serve`: the heap may
// grow to five times the live memory before the next collection, where Go's
// default (100) lets it double. A server's live heap is small (pages and
// envelopes are streamed; SQLite's page cache is not on Go's heap), and at
// the default, collection took 12–13 % of the server's CPU under the
// 64-client load and 6–7 % while two nodes replicated (docs/BENCHMARKS.md,
// "The collector's pace"). GOMEMLIMIT, when set, still caps the heap.
const defaultGCPercent = 400

// setGCPercent applies percent unless the operator set GOGC, which the Go
// runtime has applied already and which wins, as Go documents it.
func setGCPercent(percent int) {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return
	}
	debug.SetGCPercent(percent)
}
