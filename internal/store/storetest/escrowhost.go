package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// testHeldCases covers migration 29: the cases an escrow node holds for
// two other nodes, one deposit per side, the deadline sweep's query, and
// the destruction of deposits.
func testHeldCases(t *testing.T, st store.Store) {
	h := st.HeldCases()
	if _, err := h.Get(ctx, "handover--x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get before any: %v, want ErrNotFound", err)
	}
	c := store.HeldCase{HandoverID: "handover--1", AgreementID: "agreement--1", DocumentSHA256: "sha256:aa", Document: []byte(`{"id":"agreement--1"}`),
		Proposer: "party--a", Counterpart: "party--b", ProposerNode: "node-a", CounterpartNode: "node-b",
		Deadline: t0.Add(time.Hour), State: store.HeldProposed, CreatedAt: t0}
	if err := h.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx store.Handle) error { return tx.HeldCases().Create(ctx, c) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Create twice: %v, want ErrConflict", err)
	}
	if err := st.Update(ctx, func(tx store.Handle) error { return tx.HeldCases().Lock(ctx, "handover--none") }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lock of no case: %v, want ErrNotFound", err)
	}
	got, err := h.Get(ctx, c.HandoverID)
	if err != nil || got.State != store.HeldProposed || !bytes.Equal(got.Document, c.Document) || got.ProposerNode != "node-a" ||
		!got.Deadline.Equal(c.Deadline) || !got.ClosedAt.IsZero() {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if ds, err := h.Due(ctx, t0.Add(30*time.Minute), 10); err != nil || len(ds) != 0 {
		t.Fatalf("Due before the deadline = %+v, %v", ds, err)
	}
	if ds, err := h.Due(ctx, t0.Add(time.Hour), 10); err != nil || len(ds) != 1 || ds[0].HandoverID != c.HandoverID {
		t.Fatalf("Due at the deadline = %+v, %v", ds, err)
	}
	d := store.HeldDeposit{HandoverID: c.HandoverID, PartyID: "party--a", Content: []byte("age-encryption.org/v1 ..."), DepositedAt: t0, LedgerIndex: 4}
	d.SHA256[0] = 7
	err = st.Update(ctx, func(tx store.Handle) error {
		if err := tx.HeldCases().Lock(ctx, c.HandoverID); err != nil {
			return err
		}
		return tx.HeldCases().PutDeposit(ctx, d)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Inside a transaction, the second deposit of a side must not spoil
	// what else the transaction did.
	err = st.Update(ctx, func(tx store.Handle) error {
		if err := tx.HeldCases().PutDeposit(ctx, d); !errors.Is(err, store.ErrConflict) {
			t.Errorf("PutDeposit twice: %v, want ErrConflict", err)
		}
		c.State = store.HeldAccepted
		return tx.HeldCases().Update(ctx, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.PutDeposit(ctx, store.HeldDeposit{HandoverID: "handover--none", PartyID: "party--a", Content: []byte("x")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutDeposit in no case: %v, want ErrNotFound", err)
	}
	if got, err := h.Deposit(ctx, c.HandoverID, "party--a"); err != nil || !bytes.Equal(got.Content, d.Content) || got.SHA256 != d.SHA256 || got.LedgerIndex != 4 {
		t.Fatalf("Deposit = %+v, %v", got, err)
	}
	if _, err := h.Deposit(ctx, c.HandoverID, "party--b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Deposit of the side that has none: %v, want ErrNotFound", err)
	}
	// The operator's view: cases newest first, deposits without content.
	later := c
	later.HandoverID, later.CreatedAt, later.State = "handover--2", t0.Add(time.Minute), store.HeldDeclined
	if err := h.Create(ctx, later); err != nil {
		t.Fatal(err)
	}
	if cs, err := h.List(ctx, 10); err != nil || len(cs) != 2 || cs[0].HandoverID != later.HandoverID || cs[1].HandoverID != c.HandoverID ||
		cs[1].State != store.HeldAccepted || !cs[1].Deadline.Equal(c.Deadline) || cs[1].CounterpartNode != "node-b" {
		t.Fatalf("List = %+v, %v; want handover--2 then handover--1 (accepted)", cs, err)
	}
	if cs, err := h.List(ctx, 1); err != nil || len(cs) != 1 || cs[0].HandoverID != later.HandoverID {
		t.Fatalf("List(1) = %+v, %v", cs, err)
	}
	if ds, err := h.Deposits(ctx, c.HandoverID); err != nil || len(ds) != 1 || ds[0].PartyID != "party--a" || ds[0].Content != nil ||
		ds[0].Size != int64(len(d.Content)) || ds[0].SHA256 != d.SHA256 || ds[0].LedgerIndex != 4 || !ds[0].DepositedAt.Equal(t0) {
		t.Fatalf("Deposits = %+v, %v; want party--a's, %d bytes, no content", ds, err, len(d.Content))
	}
	if ds, err := h.Deposits(ctx, later.HandoverID); err != nil || len(ds) != 0 {
		t.Fatalf("Deposits of a case with none = %+v, %v", ds, err)
	}
	c.State, c.ClosedAt, c.ReleaseIndex = store.HeldExpired, t0.Add(time.Hour), 0
	if err := h.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	if n, err := h.DeleteDeposits(ctx, c.HandoverID); err != nil || n != 1 {
		t.Fatalf("DeleteDeposits = %d, %v; want 1", n, err)
	}
	if ds, err := h.Deposits(ctx, c.HandoverID); err != nil || len(ds) != 0 {
		t.Fatalf("Deposits after DeleteDeposits = %+v, %v", ds, err)
	}
	if ds, err := h.Due(ctx, t0.Add(2*time.Hour), 10); err != nil || len(ds) != 0 {
		t.Fatalf("Due after the case closed = %+v, %v", ds, err)
	}
	ghost := c
	ghost.HandoverID = "handover--none"
	if err := h.Update(ctx, ghost); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update of no case: %v, want ErrNotFound", err)
	}
}
