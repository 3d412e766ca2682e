package e2e

import (
	"context"
	"flag"
	"fmt"
	"iter"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/psi"
)

var (
	matchLarge = flag.Bool("match.large", false, "run TestMatchScale at -match.n elements a side (1,000,000 by default; minutes of CPU)")
	matchN     = flag.Int("match.n", 1_000_000, "set size a side for TestMatchScale with -match.large")
)

// generatedItems yields e-mail addresses prefix<lo>... prefix<hi-1> without
// holding them: 1,000,000 items never sit in memory as strings.
func generatedItems(prefix string, lo, hi int) func() iter.Seq[psi.Item] {
	return func() iter.Seq[psi.Item] {
		return func(yield func(psi.Item) bool) {
			for i := lo; i < hi; i++ {
				if !yield(psi.Item{Kind: psi.KindEmail, Value: fmt.Sprintf("%s%d@example.org", prefix, i)}) {
					return
				}
			}
		}
	}
}

// vmHWM reads the process's peak resident set size in bytes (-1 if
// unknown): server and both clients share this process.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
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

// TestMatchScale runs one mutual N × N session with both parties and the
// server (SQLite) in this process, 10% overlap, and reports wall time, peak
// memory and when each side reached each step. It asserts the result, never
// the time. Without -match.large it runs N = 2,000.
//
//	go test -run TestMatchScale -match.large -timeout 60m -v ./internal/tests/e2e
func TestMatchScale(t *testing.T) {
	n := 2000
	if *matchLarge {
		n = *matchN
	}
	w := newMatchWorld(t, n)
	overlap := n / 10
	xs := generatedItems("x", 0, n)
	ys := func() iter.Seq[psi.Item] {
		return func(yield func(psi.Item) bool) {
			for it := range generatedItems("x", 0, overlap)() {
				if !yield(it) {
					return
				}
			}
			for it := range generatedItems("y", overlap, n)() {
				if !yield(it) {
					return
				}
			}
		}
	}
	type mark struct {
		side, step string
		at         time.Duration
	}
	var mu sync.Mutex
	var marks []mark
	start := time.Now()
	progress := func(side string) func(string) {
		return func(step string) {
			mu.Lock()
			marks = append(marks, mark{side, step, time.Since(start)})
			mu.Unlock()
		}
	}
	c, cancel := context.WithTimeout(ctx, 55*time.Minute)
	defer cancel()
	started := make(chan string, 1)
	var wg sync.WaitGroup
	var ra, rb *client.MatchOutcome
	var errA, errB error
	wg.Go(func() {
		ra, errA = w.a.C.RunMatch(c, client.MatchOptions{Agreement: w.agreement, Items: xs, Identity: w.a.Keys.Sealing, Poll: 100 * time.Millisecond,
			Progress: progress("alpha"), OnSession: func(m client.Match) { started <- m.ID }})
		if errA != nil {
			cancel()
		}
	})
	wg.Go(func() {
		select {
		case id := <-started:
			rb, errB = w.b.C.RunMatch(c, client.MatchOptions{Session: id, Items: ys, Identity: w.b.Keys.Sealing, Poll: 100 * time.Millisecond, Progress: progress("bravo")})
		case <-c.Done():
			errB = c.Err()
		}
		if errB != nil {
			cancel()
		}
	})
	wg.Wait()
	wall := time.Since(start)
	if errA != nil || errB != nil {
		t.Fatalf("alpha: %v; bravo: %v", errA, errB)
	}
	if len(ra.Matched) != overlap || len(rb.Matched) != overlap {
		t.Fatalf("matched %d and %d, want %d", len(ra.Matched), len(rb.Matched), overlap)
	}
	for i, it := range ra.Matched {
		if want := fmt.Sprintf("x%d@example.org", i); it.Value != want {
			t.Fatalf("alpha's match %d is %q, want %q", i, it.Value, want)
		}
	}
	for _, m := range marks {
		t.Logf("%8.1fs  %-5s  %s", m.at.Seconds(), m.side, m.step)
	}
	t.Logf("%d × %d (overlap %d) on %d CPUs (GOMAXPROCS %d), %s: wall %.1fs, peak RSS %d MiB",
		n, n, overlap, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), wall.Seconds(), vmHWM()>>20)
}
