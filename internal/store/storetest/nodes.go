package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// testNodes covers migration 18: the node's public URL (replaced, not
// appended) and its pinned peers, unique by name and by key id.
func testNodes(t *testing.T, st store.Store) {
	n := st.Nodes()
	if _, err := n.PublicURL(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PublicURL before any was set: %v, want ErrNotFound", err)
	}
	for _, u := range []string{"https://a.example", "https://a.example:8443"} {
		if err := n.SetPublicURL(ctx, u, t0); err != nil {
			t.Fatal(err)
		}
		if got, err := n.PublicURL(ctx); err != nil || got != u {
			t.Fatalf("PublicURL = %q, %v; want %q", got, err, u)
		}
	}

	if ps, err := n.Peers(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("Peers on an empty store = %v, %v", ps, err)
	}
	bravo := store.Peer{Name: "bravo", URL: "https://b.example", Key: "node-b+00000001+AAA", KeyID: "kid-b", AddedAt: t0}
	alpha := store.Peer{Name: "Alpha", URL: "http://127.0.0.1:9000", Key: "node-a+00000002+BBB", KeyID: "kid-a", AddedAt: t0.Add(time.Second)}
	for _, p := range []store.Peer{bravo, alpha} {
		if err := n.AddPeer(ctx, p); err != nil {
			t.Fatalf("AddPeer(%s): %v", p.Name, err)
		}
	}
	sameName := bravo
	sameName.KeyID, sameName.Key = "kid-other", "node-o+00000003+CCC"
	if err := n.AddPeer(ctx, sameName); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("AddPeer with a pinned name: %v, want ErrConflict", err)
	}
	sameKey := alpha
	sameKey.Name = "alpha-again"
	if err := n.AddPeer(ctx, sameKey); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("AddPeer with a pinned key: %v, want ErrConflict", err)
	}
	if got, err := n.Peer(ctx, "bravo"); err != nil || got != bravo {
		t.Fatalf("Peer(bravo) = %+v, %v; want %+v", got, err, bravo)
	}
	if got, err := n.PeerByKeyID(ctx, "kid-a"); err != nil || got != alpha {
		t.Fatalf("PeerByKeyID(kid-a) = %+v, %v; want %+v", got, err, alpha)
	}
	if _, err := n.PeerByKeyID(ctx, "kid-none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PeerByKeyID(unknown): %v, want ErrNotFound", err)
	}
	ps, err := n.Peers(ctx)
	if err != nil || len(ps) != 2 || ps[0] != alpha || ps[1] != bravo {
		t.Fatalf("Peers = %+v, %v; want Alpha then bravo (byte order)", ps, err)
	}

	if err := n.RemovePeer(ctx, "bravo"); err != nil {
		t.Fatal(err)
	}
	if err := n.RemovePeer(ctx, "bravo"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RemovePeer twice: %v, want ErrNotFound", err)
	}
	if _, err := n.Peer(ctx, "bravo"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Peer after removal: %v, want ErrNotFound", err)
	}
	// Its name and key are free again: an operator re-pins after a rotation.
	if err := st.Update(ctx, func(tx store.Handle) error { return tx.Nodes().AddPeer(ctx, bravo) }); err != nil {
		t.Fatalf("re-adding a removed peer: %v", err)
	}
	if ps, err := n.Peers(ctx); err != nil || len(ps) != 2 {
		t.Fatalf("Peers after re-adding = %+v, %v", ps, err)
	}
}
