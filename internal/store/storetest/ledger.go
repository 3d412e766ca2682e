package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/ledger/ledgertest"
	"github.com/parley-cti/parley/internal/store"
)

// RunLedger runs the ledger conformance suite on the backend's ledger,
// directly on the database (each store method in its own transaction).
func RunLedger(t *testing.T, open Opener) {
	ledgertest.Run(t, func() ledger.Store {
		st := open(t)
		t.Cleanup(func() { st.Close() })
		return st.Ledger()
	})
}

// testLedgerConcurrentAppend has several goroutines append inside Update,
// each together with a state change, as the domain does: afterwards the log
// is one sequence (every entry exactly once, no gaps) and each committed
// change's entry sits at the index Append returned.
func testLedgerConcurrentAppend(t *testing.T, st store.Store) {
	const workers, each = 4, 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	at := map[int64]string{} // index -> subject
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				subject := fmt.Sprintf("w%d-%d", w, i)
				var idx int64
				err := st.Update(ctx, func(tx store.Handle) error {
					if _, err := tx.Settings().PutIfAbsent(ctx, subject, []byte("x")); err != nil {
						return err
					}
					var err error
					idx, err = ledger.Append(ctx, tx.Ledger(), ledger.Entry{Kind: ledger.KindFeedBatch, Subject: subject, Time: t0})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := at[idx]; dup {
					errs <- fmt.Errorf("index %d handed to %s and %s", idx, prev, subject)
				}
				at[idx] = subject
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := st.Ledger().Size(ctx)
	if err != nil || n != workers*each {
		t.Fatalf("ledger size = %d, %v; want %d", n, err, workers*each)
	}
	entries, err := st.Ledger().ReadEntries(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, raw := range entries {
		e, err := ledger.DecodeEntry(raw)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if seen[e.Subject] {
			t.Fatalf("entry %d: %s appended twice", i, e.Subject)
		}
		seen[e.Subject] = true
		if at[int64(i)] != e.Subject {
			t.Fatalf("entry %d is %s, but Append returned %d to %s", i, e.Subject, i, at[int64(i)])
		}
	}
	// The stored hashes make one tree whose root the records alone give.
	root, err := tlog.TreeHash(n, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		return st.Ledger().ReadHashes(ctx, idx)
	}))
	if err != nil {
		t.Fatal(err)
	}
	var hashes []tlog.Hash
	mem := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, raw := range entries {
		hs, err := tlog.StoredHashes(int64(i), raw, mem)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	if want, _ := tlog.TreeHash(n, mem); want != root {
		t.Fatalf("stored tree hash %v, recomputed %v", root, want)
	}
}

// testLedgerRollback: an entry appended in an Update that fails is gone,
// and the next append takes its index.
func testLedgerRollback(t *testing.T, st store.Store) {
	boom := errors.New("boom")
	err := st.Update(ctx, func(tx store.Handle) error {
		if _, err := ledger.Append(ctx, tx.Ledger(), ledger.Entry{Kind: ledger.KindFeedBatch, Subject: "lost", Time: t0}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if n, err := st.Ledger().Size(ctx); err != nil || n != 0 {
		t.Fatalf("size after rollback = %d, %v", n, err)
	}
	var idx int64
	if err := st.Update(ctx, func(tx store.Handle) error {
		var err error
		idx, err = ledger.Append(ctx, tx.Ledger(), ledger.Entry{Kind: ledger.KindFeedBatch, Subject: "kept", Time: t0})
		return err
	}); err != nil || idx != 0 {
		t.Fatalf("append after rollback = %d, %v", idx, err)
	}
}

// testAgreementLockSerializes has contributors of both parties add objects
// concurrently, each in an Update holding the agreement's lock, as the
// exchange does: ordinals come out 1..n per party with no gap or repeat.
func testAgreementLockSerializes(t *testing.T, st store.Store) {
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	ag := "agreement--lock"
	if err := st.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		p := []string{a.ID, b.ID}[w%2]
		wg.Go(func() {
			for i := range each {
				err := st.Update(ctx, func(tx store.Handle) error {
					if err := tx.Agreements().Lock(ctx, ag); err != nil {
						return err
					}
					_, err := tx.Credits().Contribute(ctx, ag, p, []store.Contribution{{ObjectID: uid("indicator", w*1000+i), Weight: 1}}, t0.Add(time.Duration(i)*time.Second))
					if err != nil {
						return err
					}
					// Released moves only up, whatever order these land in.
					return tx.Credits().SetReleased(ctx, ag, p, int64(i))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, p := range []string{a.ID, b.ID} {
		ids, err := st.Credits().Range(ctx, ag, p, 1, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != workers/2*each {
			t.Fatalf("%s: %d contributions, want %d", p, len(ids), workers/2*each)
		}
		sorted := slices.Clone(ids)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(ids) {
			t.Fatalf("%s: an object counted twice: %v", p, ids)
		}
		bal, err := st.Credits().Balance(ctx, ag, p, time.Time{})
		if err != nil || bal.Contributed != int64(len(ids)) || bal.Credits != float64(len(ids)) || bal.Released != each-1 {
			t.Fatalf("%s balance = %+v, %v", p, bal, err)
		}
	}
}
