package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// testGradual: a gradual handover's record and chunks round-trip, a
// chunk's content can be held, destroyed (nil is NULL, not an empty
// blob) and listed without its bytes, and duplicates and strangers are
// refused with the sentinels the interface names.
func testGradual(t *testing.T, st store.Store) {
	e, a, b, ag := escrowFixture(t, st)
	h := store.Handover{ID: "handover--g1", AgreementID: ag, Proposer: a.ID, Counterpart: b.ID, ProposerDelivers: "x",
		CounterpartDelivers: "y", Deadline: t0.Add(time.Hour), State: store.HandoverAccepted, CreatedAt: t0}
	if err := e.Handovers().Create(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Handovers().Gradual(ctx, h.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Gradual of a one-step case: %v", err)
	}
	if err := e.Handovers().CreateGradual(ctx, store.Gradual{HandoverID: "handover--ghost", Chunks: 2}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateGradual of no case: %v", err)
	}
	g := store.Gradual{HandoverID: h.ID, Chunks: 3}
	if err := e.Handovers().CreateGradual(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := e.Handovers().CreateGradual(ctx, g); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateGradual twice: %v", err)
	}
	g.ProposerCommitment, g.StoppedBy, g.StopReason, g.StoppedAt = []byte(`{"c":1}`), b.ID, "garbage", t0.Add(time.Minute)
	if err := e.Handovers().UpdateGradual(ctx, g); err != nil {
		t.Fatal(err)
	}
	got, err := e.Handovers().Gradual(ctx, h.ID)
	if err != nil || got.Chunks != 3 || !bytes.Equal(got.ProposerCommitment, g.ProposerCommitment) || got.CounterpartCommitment != nil ||
		got.StoppedBy != b.ID || got.StopReason != "garbage" || !got.StoppedAt.Equal(g.StoppedAt) {
		t.Fatalf("Gradual = %+v, %v; want %+v", got, err, g)
	}
	if err := e.Handovers().UpdateGradual(ctx, store.Gradual{HandoverID: "handover--ghost"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateGradual of no case: %v", err)
	}
	content := []byte("age ciphertext")
	c := store.Chunk{HandoverID: h.ID, Depositor: a.ID, Index: 1, SHA256: sha256.Sum256(content), Size: int64(len(content)), Content: content}
	if err := e.Handovers().PutChunk(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := e.Handovers().PutChunk(ctx, c); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutChunk twice: %v", err)
	}
	empty := store.Chunk{HandoverID: h.ID, Depositor: b.ID, Index: 1, SHA256: sha256.Sum256([]byte("theirs")), Size: 6}
	if err := e.Handovers().PutChunk(ctx, empty); err != nil {
		t.Fatal(err)
	}
	one, err := e.Handovers().Chunk(ctx, h.ID, a.ID, 1)
	if err != nil || !one.Held || !bytes.Equal(one.Content, content) || one.SHA256 != c.SHA256 || one.Size != c.Size {
		t.Fatalf("Chunk = %+v, %v", one, err)
	}
	if got, err := e.Handovers().Chunk(ctx, h.ID, b.ID, 1); err != nil || got.Held || got.Content != nil {
		t.Fatalf("committed chunk not held here = %+v, %v", got, err)
	}
	if _, err := e.Handovers().Chunk(ctx, h.ID, a.ID, 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Chunk not committed: %v", err)
	}
	one.MovedAt, one.ConfirmedAt, one.Confirmation, one.LedgerIndex = t0.Add(time.Second), t0.Add(2*time.Second), []byte(`{"ok":1}`), 7
	if err := e.Handovers().UpdateChunk(ctx, one); err != nil {
		t.Fatal(err)
	}
	empty.Content = []byte("theirs")
	if err := e.Handovers().UpdateChunk(ctx, empty); err != nil {
		t.Fatal(err)
	}
	cs, err := e.Handovers().Chunks(ctx, h.ID)
	if err != nil || len(cs) != 2 {
		t.Fatalf("Chunks = %+v, %v", cs, err)
	}
	for _, x := range cs {
		if x.Content != nil || !x.Held {
			t.Fatalf("listed chunk %+v: want no content, held", x)
		}
	}
	first := cs[0]
	if first.Depositor != a.ID {
		first = cs[1]
	}
	if !first.MovedAt.Equal(one.MovedAt) || !first.ConfirmedAt.Equal(one.ConfirmedAt) || string(first.Confirmation) != `{"ok":1}` || first.LedgerIndex != 7 {
		t.Fatalf("updated chunk = %+v", first)
	}
	one.Content = nil // destroyed
	if err := e.Handovers().UpdateChunk(ctx, one); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Handovers().Chunk(ctx, h.ID, a.ID, 1); err != nil || got.Held || got.Content != nil || got.LedgerIndex != 7 {
		t.Fatalf("destroyed chunk = %+v, %v", got, err)
	}
	if err := e.Handovers().UpdateChunk(ctx, store.Chunk{HandoverID: h.ID, Depositor: a.ID, Index: 9}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateChunk of none: %v", err)
	}
}
