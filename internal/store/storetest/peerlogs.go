package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// testPeerLogs covers migration 23: views of peers' ledgers (created once,
// moved only from the size the caller read), incidents recorded once per
// digest, and receipts that never change their hash.
func testPeerLogs(t *testing.T, st store.Store) {
	p := st.PeerLogs()
	if _, err := p.PeerLog(ctx, "kid-b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PeerLog before any: %v, want ErrNotFound", err)
	}
	first := store.PeerLog{KeyID: "kid-b", Peer: "bravo", LogKey: "parley-b+00000001+AAA", UpdatedAt: t0}
	if err := p.CreatePeerLog(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx store.Handle) error { return tx.PeerLogs().CreatePeerLog(ctx, first) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreatePeerLog twice: %v, want ErrConflict", err)
	}
	got, err := p.PeerLog(ctx, "kid-b")
	if err != nil || got.Size != 0 || got.Checkpoint != nil || got.LogKey != first.LogKey || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("PeerLog = %+v, %v; want %+v", got, err, first)
	}
	next := first
	next.Size, next.Checkpoint, next.WitnessKey, next.UpdatedAt = 7, []byte("origin\n7\nroot\n\n— sig\n"), "parley-b+00000002+BBB", t0.Add(time.Second)
	if err := st.Update(ctx, func(tx store.Handle) error { return tx.PeerLogs().UpdatePeerLog(ctx, next, 0) }); err != nil {
		t.Fatal(err)
	}
	stale := next
	stale.Size = 9
	if err := p.UpdatePeerLog(ctx, stale, 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdatePeerLog from a size that moved: %v, want ErrConflict", err)
	}
	ghost := next
	ghost.KeyID = "kid-none"
	if err := p.UpdatePeerLog(ctx, ghost, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdatePeerLog of no view: %v, want ErrNotFound", err)
	}
	if got, err := p.PeerLog(ctx, "kid-b"); err != nil || got.Size != 7 || !bytes.Equal(got.Checkpoint, next.Checkpoint) || got.WitnessKey != next.WitnessKey {
		t.Fatalf("PeerLog after update = %+v, %v", got, err)
	}
	if err := p.CreatePeerLog(ctx, store.PeerLog{KeyID: "kid-a", Peer: "alpha", LogKey: "k", UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if ls, err := p.PeerLogs(ctx); err != nil || len(ls) != 2 || ls[0].KeyID != "kid-a" || ls[1].KeyID != "kid-b" {
		t.Fatalf("PeerLogs = %+v, %v", ls, err)
	}

	older := store.PeerIncident{KeyID: "kid-b", Peer: "bravo", Kind: "fork", Detail: "two roots at size 7", Ours: []byte("a"), Theirs: []byte("b"), Digest: "d1", At: t0}
	newer := store.PeerIncident{KeyID: "kid-b", Peer: "bravo", Kind: "forged", Detail: "bad signature", Theirs: []byte("c"), Digest: "d2", At: t0.Add(time.Minute)}
	for _, i := range []store.PeerIncident{older, newer} {
		if err := p.AddPeerIncident(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	// Inside a transaction, the duplicate must not spoil what else it did.
	err = st.Update(ctx, func(tx store.Handle) error {
		if err := tx.PeerLogs().AddPeerIncident(ctx, older); !errors.Is(err, store.ErrConflict) {
			t.Errorf("AddPeerIncident twice: %v, want ErrConflict", err)
		}
		return tx.PeerLogs().AddPeerReceipt(ctx, store.PeerReceipt{KeyID: "kid-b", Index: 3, LeafHash: "h3", AddedAt: t0})
	})
	if err != nil {
		t.Fatalf("a transaction that met a recorded incident: %v", err)
	}
	is, err := p.PeerIncidents(ctx, 10)
	if err != nil || len(is) != 2 || is[0].Digest != "d2" || is[1].Digest != "d1" || !bytes.Equal(is[1].Ours, []byte("a")) || is[0].Ours != nil {
		t.Fatalf("PeerIncidents = %+v, %v; want d2 then d1", is, err)
	}
	if is, err := p.PeerIncidents(ctx, 1); err != nil || len(is) != 1 {
		t.Fatalf("PeerIncidents(limit 1) = %d, %v", len(is), err)
	}

	if err := p.AddPeerReceipt(ctx, store.PeerReceipt{KeyID: "kid-b", Index: 3, LeafHash: "h3", AddedAt: t0}); err != nil {
		t.Fatalf("the same receipt again: %v", err)
	}
	if err := p.AddPeerReceipt(ctx, store.PeerReceipt{KeyID: "kid-b", Index: 3, LeafHash: "other", AddedAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("another hash at a recorded index: %v, want ErrConflict", err)
	}
	if err := p.AddPeerReceipt(ctx, store.PeerReceipt{KeyID: "kid-b", Index: 1, LeafHash: "h1", AddedAt: t0}); err != nil {
		t.Fatal(err)
	}
	rs, err := p.PeerReceipts(ctx, "kid-b")
	if err != nil || len(rs) != 2 || rs[0].Index != 1 || rs[1].LeafHash != "h3" {
		t.Fatalf("PeerReceipts = %+v, %v", rs, err)
	}
	if rs, err := p.PeerReceipts(ctx, "kid-a"); err != nil || len(rs) != 0 {
		t.Fatalf("PeerReceipts of a peer with none = %+v, %v", rs, err)
	}
}
