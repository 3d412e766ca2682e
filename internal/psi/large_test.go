package psi

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"iter"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	largeMatch = flag.Bool("largematch", false, "run TestLargeMatch (1,000,000 × 1,000,000 by default; minutes of CPU)")
	largeN     = flag.Int("largematch.n", 1_000_000, "set size for TestLargeMatch")
)

// peakRSS reads VmHWM, the process's peak resident set size, in bytes.
func peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Logf("no /proc/self/status: %v", err)
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb * 1024
		}
	}
	return -1
}

// generated yields n distinct items without holding them all in memory.
func generated(prefix string, lo, hi int) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		for i := lo; i < hi; i++ {
			if !yield(Item{KindEmail, fmt.Sprintf("%s%d@example.org", prefix, i)}) {
				return
			}
		}
	}
}

// TestLargeMatch runs the target: both parties of an N × N mutual
// match in one process, as the CLI would on one machine; 10% overlap.
//
//	go test -run TestLargeMatch -largematch -timeout 30m ./internal/psi
func TestLargeMatch(t *testing.T) {
	if !*largeMatch {
		t.Skip("set -largematch to run the 1,000,000 × 1,000,000 measurement")
	}
	n := *largeN
	overlap := n / 10
	ctx := context.Background()
	a, b := pair(t, n)
	start := time.Now()
	var a1, b1, a2, b2 bytes.Buffer
	lap := func(what string, t0 time.Time) time.Time {
		now := time.Now()
		t.Logf("%-8s %8.2fs", what, now.Sub(t0).Seconds())
		return now
	}
	t0 := start
	orderA, err := a.Round1(ctx, generated("x", 0, n), &a1)
	if err != nil {
		t.Fatal(err)
	}
	// B's set shares overlap items with A's (A's last ones).
	orderB, err := b.Round1(ctx, generated("x", n-overlap, 2*n-overlap), &b1)
	if err != nil {
		t.Fatal(err)
	}
	t0 = lap("round 1", t0)
	if err := a.Round2(ctx, &b1, &a2); err != nil {
		t.Fatal(err)
	}
	if err := b.Round2(ctx, &a1, &b2); err != nil {
		t.Fatal(err)
	}
	t0 = lap("round 2", t0)
	gotA, err := a.Result(ctx, orderA, bytes.NewReader(a2.Bytes()), bytes.NewReader(b2.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	gotB, err := b.Result(ctx, orderB, bytes.NewReader(b2.Bytes()), bytes.NewReader(a2.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	lap("result", t0)
	wall := time.Since(start)
	if len(gotA) != overlap || len(gotB) != overlap || gotA[0] != n-overlap || gotB[len(gotB)-1] != overlap-1 {
		t.Fatalf("A matched %d, B matched %d; want %d each", len(gotA), len(gotB), overlap)
	}
	rss := peakRSS(t)
	// CPU time tells what the run costs when the machine is shared: wall on
	// an idle machine is about cpu/GOMAXPROCS.
	var ru syscall.Rusage
	cpu := -1.0
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	t.Logf("%d × %d mutual match, GOMAXPROCS=%d, %s: wall %.1fs, CPU %.1fs, peak RSS %d MiB, %.0f elements/s (2N elements through both rounds)",
		n, n, runtime.GOMAXPROCS(0), runtime.Version(), wall.Seconds(), cpu, rss>>20, float64(2*n)/wall.Seconds())
}
