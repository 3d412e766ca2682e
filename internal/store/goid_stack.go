//go:build !amd64 && !arm64

package store

import (
	"bytes"
	"runtime"
	"strconv"
)

// goroutineID parses the calling goroutine's id from the first line of its
// stack trace ("goroutine 42 [running]:"): a few microseconds, on the
// architectures without goid_*.s.
func goroutineID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	s := bytes.TrimPrefix(buf[:n], []byte("goroutine "))
	if i := bytes.IndexByte(s, ' '); i > 0 {
		s = s[:i]
	}
	id, _ := strconv.ParseUint(string(s), 10, 64)
	return id
}
