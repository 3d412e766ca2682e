//go:build amd64 || arm64

package store

// getg returns the address of the running goroutine's runtime descriptor
// (goid_amd64.s, goid_arm64.s).
func getg() uintptr

// goroutineID identifies the calling goroutine by its runtime descriptor's
// address: one instruction instead of a stack trace. No two live
// goroutines share one (a descriptor is reused only after its goroutine
// has exited), and TxGuard compares identities only among live ones: a
// transaction's holder is alive until its end function runs.
func goroutineID() uint64 { return uint64(getg()) }
