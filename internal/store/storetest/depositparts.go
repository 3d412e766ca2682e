package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// testDepositParts covers Handovers.DepositPart and HeldCases.DepositPart:
// a byte range of a deposit with the whole one's size, at the start, in
// the middle, at and past the end, of no bytes, of a deposit that is not
// there, and a negative range refused.
func testDepositParts(t *testing.T, st store.Store) {
	e, a, b, ag := escrowFixture(t, st)
	h := store.Handover{ID: "handover--parts", AgreementID: ag, Proposer: a.ID, Counterpart: b.ID, Deadline: t0.Add(time.Hour),
		State: store.HandoverAccepted, CreatedAt: t0}
	if err := e.Handovers().Create(ctx, h); err != nil {
		t.Fatal(err)
	}
	// Every byte value, NUL included, and large enough to leave the row's
	// page (SQLite overflow pages, PostgreSQL TOAST).
	content := make([]byte, 300_001)
	for i := range content {
		content[i] = byte(i*7 + i/256)
	}
	sum := sha256.Sum256(content)
	d := store.Deposit{HandoverID: h.ID, PartyID: a.ID, Sealed: true, Content: content, SHA256: sum, DepositedAt: t0, LedgerIndex: 9,
		Manifest: []byte(`{"m":1}`)}
	if err := e.Handovers().PutDeposit(ctx, d); err != nil {
		t.Fatal(err)
	}
	held := store.HeldCase{HandoverID: "handover--parts", AgreementID: "agreement--1", DocumentSHA256: "sha256:aa", Document: []byte(`{}`),
		Proposer: a.ID, Counterpart: b.ID, ProposerNode: "node-a", CounterpartNode: "node-b", Deadline: t0.Add(time.Hour),
		State: store.HeldAccepted, CreatedAt: t0}
	if err := st.HeldCases().Create(ctx, held); err != nil {
		t.Fatal(err)
	}
	if err := st.HeldCases().PutDeposit(ctx, store.HeldDeposit{HandoverID: held.HandoverID, PartyID: a.ID, Content: content, SHA256: sum,
		DepositedAt: t0, LedgerIndex: 11}); err != nil {
		t.Fatal(err)
	}
	size := int64(len(content))
	for _, c := range []struct {
		name      string
		offset, n int64
		want      []byte
	}{
		{"start", 0, 1000, content[:1000]},
		{"middle", 123_457, 65_536, content[123_457 : 123_457+65_536]},
		{"to the end", size - 10, 10, content[size-10:]},
		{"over the end", size - 10, 1 << 20, content[size-10:]},
		{"the whole", 0, size, content},
		{"at the end", size, 100, nil},
		{"past the end", size + 5, 100, nil},
		{"no bytes", 50, 0, nil},
	} {
		got, err := e.Handovers().DepositPart(ctx, h.ID, a.ID, c.offset, c.n)
		if err != nil || !bytes.Equal(got.Content, c.want) || got.Size != size || got.SHA256 != sum || !got.Sealed || got.LedgerIndex != 9 ||
			got.HandoverID != h.ID || got.PartyID != a.ID || !got.DepositedAt.Equal(t0) || string(got.Manifest) != `{"m":1}` {
			t.Errorf("Handovers.DepositPart %s: %d bytes, size %d, %v; want %d bytes of %d", c.name, len(got.Content), got.Size, err, len(c.want), size)
		}
		hd, err := st.HeldCases().DepositPart(ctx, held.HandoverID, a.ID, c.offset, c.n)
		if err != nil || !bytes.Equal(hd.Content, c.want) || hd.Size != size || hd.SHA256 != sum || hd.LedgerIndex != 11 ||
			hd.HandoverID != held.HandoverID || hd.PartyID != a.ID || !hd.DepositedAt.Equal(t0) {
			t.Errorf("HeldCases.DepositPart %s: %d bytes, size %d, %v; want %d bytes of %d", c.name, len(hd.Content), hd.Size, err, len(c.want), size)
		}
	}
	if _, err := e.Handovers().DepositPart(ctx, h.ID, b.ID, 0, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Handovers.DepositPart of no deposit: %v, want ErrNotFound", err)
	}
	if _, err := e.Handovers().DepositPart(ctx, "handover--nope", a.ID, 0, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Handovers.DepositPart in no case: %v, want ErrNotFound", err)
	}
	if _, err := st.HeldCases().DepositPart(ctx, held.HandoverID, b.ID, 0, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("HeldCases.DepositPart of no deposit: %v, want ErrNotFound", err)
	}
	if _, err := st.HeldCases().DepositPart(ctx, "handover--nope", a.ID, 0, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("HeldCases.DepositPart in no case: %v, want ErrNotFound", err)
	}
	for _, r := range [][2]int64{{-1, 10}, {0, -1}} {
		if got, err := e.Handovers().DepositPart(ctx, h.ID, a.ID, r[0], r[1]); err == nil {
			t.Errorf("Handovers.DepositPart(%d, %d) = %d bytes, want an error", r[0], r[1], len(got.Content))
		}
		if got, err := st.HeldCases().DepositPart(ctx, held.HandoverID, a.ID, r[0], r[1]); err == nil {
			t.Errorf("HeldCases.DepositPart(%d, %d) = %d bytes, want an error", r[0], r[1], len(got.Content))
		}
	}
	// Deposit says the size too.
	if got, err := e.Handovers().Deposit(ctx, h.ID, a.ID); err != nil || got.Size != size || !bytes.Equal(got.Content, content) {
		t.Errorf("Deposit: %d bytes, size %d, %v", len(got.Content), got.Size, err)
	}
}
