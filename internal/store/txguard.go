package store

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
)

// ErrSecondConnection: code running inside a transaction asked the store
// for another connection (a method of the Store itself rather than of the
// Handle Update gave it, or a nested Update). With a bounded pool that
// waits forever once every other connection is queued on a lock the
// transaction holds, so the backends refuse it instead: everything a
// transaction reads or writes goes through its own Handle.
var ErrSecondConnection = errors.New("store: a transaction asked for a second database connection; use the transaction's handle")

// TxGuard lets a backend refuse a second connection to a goroutine that
// already holds a transaction. Begin is called when a transaction starts
// and Check before anything that takes a connection from the pool.
//
// A transaction is known by the context its Update was called with (code
// inside the function passes the same context on), confirmed by the
// goroutine's id, so a context shared by concurrent goroutines (the
// server's root context, context.Background in tests) never trips it.
// Check reads the id only when the context matches, which makes the common
// case one map lookup; Begin always reads it, which on amd64 and arm64 is
// one instruction (goid_g.go) and elsewhere a stack trace (goid_stack.go).
type TxGuard struct {
	open atomic.Int64 // transactions in progress, for a lock-free fast path
	mu   sync.Mutex
	txs  map[context.Context]map[uint64]int // context → goroutine → depth
}

// Begin records that the calling goroutine opens a transaction with ctx;
// it returns ErrSecondConnection if it already holds one with ctx. Call
// the returned function when the transaction ends.
func (g *TxGuard) Begin(ctx context.Context) (end func(), err error) {
	if !comparable(ctx) {
		return func() {}, nil
	}
	if err := g.Check(ctx); err != nil {
		return nil, err
	}
	id := goroutineID()
	g.mu.Lock()
	if g.txs == nil {
		g.txs = map[context.Context]map[uint64]int{}
	}
	m := g.txs[ctx]
	if m == nil {
		m = map[uint64]int{}
		g.txs[ctx] = m
	}
	m[id]++
	g.mu.Unlock()
	g.open.Add(1)
	return func() {
		g.open.Add(-1)
		g.mu.Lock()
		if m[id]--; m[id] == 0 {
			delete(m, id)
		}
		if len(m) == 0 {
			delete(g.txs, ctx)
		}
		g.mu.Unlock()
	}, nil
}

// Check returns ErrSecondConnection if the calling goroutine holds a
// transaction opened with ctx.
func (g *TxGuard) Check(ctx context.Context) error {
	if g.open.Load() == 0 || !comparable(ctx) {
		return nil
	}
	g.mu.Lock()
	_, suspect := g.txs[ctx]
	g.mu.Unlock()
	if !suspect {
		return nil
	}
	id := goroutineID()
	g.mu.Lock()
	held := g.txs[ctx][id] > 0
	g.mu.Unlock()
	if held {
		return ErrSecondConnection
	}
	return nil
}

// comparable reports whether ctx can be a map key (every context of the
// standard library can; a struct holding a slice could not).
func comparable(ctx context.Context) bool {
	return ctx != nil && reflect.TypeOf(ctx).Comparable()
}
