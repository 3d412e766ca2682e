package store

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// grow uses n frames of stack, so the runtime has to move the goroutine's
// stack to a larger one before it returns.
func grow(n int) uint64 {
	var pad [256]byte
	if n == 0 {
		return goroutineID() + uint64(pad[0])
	}
	return grow(n-1) + uint64(pad[n%len(pad)])
}

// TestGoroutineID: one goroutine keeps its identity, even across a move of
// its stack; live goroutines never share one.
func TestGoroutineID(t *testing.T) {
	id := goroutineID()
	if id == 0 {
		t.Fatal("goroutine id 0")
	}
	if deep := grow(2000); deep != id {
		t.Fatalf("identity %x after its stack grew, %x before", deep, id)
	}
	const n = 64
	ids := make([]uint64, n)
	var started, release sync.WaitGroup
	started.Add(n)
	release.Add(1)
	var done sync.WaitGroup
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			ids[i] = goroutineID()
			started.Done()
			release.Wait() // all alive at once
		}()
	}
	started.Wait()
	release.Done()
	done.Wait()
	seen := map[uint64]bool{id: true}
	for _, g := range ids {
		if seen[g] {
			t.Fatalf("two live goroutines share identity %x", g)
		}
		seen[g] = true
	}
}

// TestTxGuard: the goroutine holding a transaction is refused a second
// connection with the transaction's context; another goroutine with the
// same context is not, and nobody is once the transaction ended.
func TestTxGuard(t *testing.T) {
	var g TxGuard
	ctx := context.Background()
	end, err := g.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check(ctx); !errors.Is(err, ErrSecondConnection) {
		t.Fatalf("Check inside the transaction: %v", err)
	}
	if _, err := g.Begin(ctx); !errors.Is(err, ErrSecondConnection) {
		t.Fatalf("nested Begin: %v", err)
	}
	var beside error
	done := make(chan struct{})
	go func() { defer close(done); beside = g.Check(ctx) }()
	<-done
	if beside != nil {
		t.Fatalf("another goroutine with the same context: %v", beside)
	}
	if err := g.Check(context.TODO()); err != nil {
		t.Fatalf("another context: %v", err)
	}
	end()
	if err := g.Check(ctx); err != nil {
		t.Fatalf("after the transaction: %v", err)
	}
}

// BenchmarkTxGuardBegin: what every Update pays for the guard.
func BenchmarkTxGuardBegin(b *testing.B) {
	var g TxGuard
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for b.Loop() {
		end, err := g.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		end()
	}
}
