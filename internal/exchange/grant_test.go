package exchange_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/store"
)

// countingStore counts reads of agreements (and of keys, which a status
// computation reads), inside transactions and out.
type countingStore struct {
	store.Store
	n *atomic.Int64
}

func (c countingStore) Agreements() store.Agreements {
	return countingAgreements{c.Store.Agreements(), c.n}
}
func (c countingStore) Keys() store.Keys { return countingKeys{c.Store.Keys(), c.n} }
func (c countingStore) Update(ctx context.Context, fn func(store.Handle) error) error {
	return c.Store.Update(ctx, func(tx store.Handle) error { return fn(countingHandle{tx, c.n}) })
}

type countingHandle struct {
	store.Handle
	n *atomic.Int64
}

func (h countingHandle) Agreements() store.Agreements {
	return countingAgreements{h.Handle.Agreements(), h.n}
}
func (h countingHandle) Keys() store.Keys { return countingKeys{h.Handle.Keys(), h.n} }

type countingAgreements struct {
	store.Agreements
	n *atomic.Int64
}

func (a countingAgreements) Get(ctx context.Context, id string) (store.AgreementRecord, error) {
	a.n.Add(1)
	return a.Agreements.Get(ctx, id)
}
func (a countingAgreements) Lock(ctx context.Context, id string) error {
	a.n.Add(1)
	return a.Agreements.Lock(ctx, id)
}
func (a countingAgreements) Versions(ctx context.Context, id string) ([]store.AgreementVersion, error) {
	a.n.Add(1)
	return a.Agreements.Versions(ctx, id)
}
func (a countingAgreements) Signatures(ctx context.Context, id string) ([]store.AgreementSignature, error) {
	a.n.Add(1)
	return a.Agreements.Signatures(ctx, id)
}

type countingKeys struct {
	store.Keys
	n *atomic.Int64
}

func (k countingKeys) ListByParty(ctx context.Context, partyID string) ([]store.PartyKey, error) {
	k.n.Add(1)
	return k.Keys.ListByParty(ctx, partyID)
}

// TestIngestDecidesOnce: a write under an agreement decides access once
// (Writable) and, under the lock, reads only the agreement's state again:
// the lock and one status read (record, versions, signatures).
func TestIngestDecidesOnce(t *testing.T) {
	f := newFixture(t)
	ag := f.activate(nil)
	id := ag.Record.ID
	own, _ := f.collections(f.a, id)
	var n atomic.Int64
	ex := exchange.New(countingStore{f.st, &n})
	ex.SetClock(func() time.Time { return f.now })
	// Warm the status cache, as any earlier request of the server has.
	if _, err := ex.Ingest(ctx, f.a.p, id, own, batch(1, 1)); err != nil {
		t.Fatal(err)
	}

	n.Store(0)
	g, err := ex.Writable(ctx, f.a.p, id, own)
	if err != nil {
		t.Fatal(err)
	}
	decide := n.Swap(0)
	if _, err := ex.IngestGranted(ctx, f.a.p, g, batch(2, 3)); err != nil {
		t.Fatal(err)
	}
	underLock := n.Swap(0)
	// What TAXII did before: decide, then Ingest deciding again.
	if _, _, err := ex.Collection(ctx, f.a.p, id, own); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Ingest(ctx, f.a.p, id, own, batch(5, 3)); err != nil {
		t.Fatal(err)
	}
	twice := n.Swap(0)
	t.Logf("agreement reads per POST: %d to decide + %d under the lock = %d; deciding twice costs %d", decide, underLock, decide+underLock, twice)
	if underLock > 4 {
		t.Errorf("IngestGranted read agreements %d times; under the lock only the lock and the agreement's status (3 reads) are due", underLock)
	}
	if decide+underLock >= twice {
		t.Errorf("deciding once costs %d agreement reads, no fewer than deciding twice (%d)", decide+underLock, twice)
	}
}

// TestIngestGrantHostile: a grant is for its party and its moment; what
// may change before the lock is checked again under it.
func TestIngestGrantHostile(t *testing.T) {
	f := newFixture(t)
	ag := f.activate(nil)
	id := ag.Record.ID
	own, _ := f.collections(f.a, id)
	g, err := f.ex.Writable(ctx, f.a.p, id, own)
	if err != nil {
		t.Fatal(err)
	}
	if g.Collection().ID != own {
		t.Fatalf("grant for %s, want %s", g.Collection().ID, own)
	}
	if _, err := f.ex.Writable(ctx, f.b.p, id, own); !errors.Is(err, exchange.ErrForbidden) {
		t.Fatalf("the counterpart asks to write alpha's collection: %v, want ErrForbidden", err)
	}
	if _, err := f.ex.Writable(ctx, f.a.p, id, "no-such-collection"); !errors.Is(err, exchange.ErrNotFound) {
		t.Fatalf("a missing collection: %v, want ErrNotFound", err)
	}
	for name, tc := range map[string]struct {
		g exchange.Grant
		m member
	}{"another party's grant": {g, f.b}, "a grant never decided": {exchange.Grant{}, f.a}} {
		if _, err := f.ex.IngestGranted(ctx, tc.m.p, tc.g, batch(1, 1)); !errors.Is(err, exchange.ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", name, err)
		}
	}
	size, err := f.st.Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Suspended between the decision and the write: refused under the lock.
	f.now = f.now.Add(time.Second)
	if _, _, err := f.ex.Sign(ctx, f.b.p, id, f.signDoc(f.b, ag.Status.Document, agreement.ActionSuspend)); err != nil {
		t.Fatal(err)
	}
	after, err := f.st.Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ex.IngestGranted(ctx, f.a.p, g, batch(1, 1)); !errors.Is(err, exchange.ErrForbidden) {
		t.Fatalf("write after a suspension, on a grant made before it: %v, want ErrForbidden", err)
	}
	if got := f.readAll(f.a, id, own); len(got) != 0 {
		t.Fatalf("refused write stored %v", got)
	}
	if now, err := f.st.Ledger().Size(ctx); err != nil || now != after || after != size+1 {
		t.Fatalf("ledger %d → %d (suspension) → %d, %v; want only the suspension's entry", size, after, now, err)
	}
}
