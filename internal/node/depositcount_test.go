package node

import (
	"context"
	"sync/atomic"

	"github.com/parley-cti/parley/internal/store"
)

// depositCounter is a store that adds to n the bytes of deposit content
// each read of a deposit returns (Handovers and HeldCases, outside a
// transaction): what a node serving a deposit in parts holds for it.
type depositCounter struct {
	store.Store
	n *atomic.Int64
}

func (c depositCounter) Handovers() store.Handovers {
	return countedHandovers{Handovers: c.Store.Handovers(), n: c.n}
}

func (c depositCounter) HeldCases() store.HeldCases {
	return countedHeld{HeldCases: c.Store.HeldCases(), n: c.n}
}

type countedHandovers struct {
	store.Handovers
	n *atomic.Int64
}

func (h countedHandovers) Deposit(ctx context.Context, handoverID, partyID string) (store.Deposit, error) {
	d, err := h.Handovers.Deposit(ctx, handoverID, partyID)
	h.n.Add(int64(len(d.Content)))
	return d, err
}

func (h countedHandovers) DepositPart(ctx context.Context, handoverID, partyID string, offset, n int64) (store.Deposit, error) {
	d, err := h.Handovers.DepositPart(ctx, handoverID, partyID, offset, n)
	h.n.Add(int64(len(d.Content)))
	return d, err
}

type countedHeld struct {
	store.HeldCases
	n *atomic.Int64
}

func (h countedHeld) Deposit(ctx context.Context, handoverID, partyID string) (store.HeldDeposit, error) {
	d, err := h.HeldCases.Deposit(ctx, handoverID, partyID)
	h.n.Add(int64(len(d.Content)))
	return d, err
}

func (h countedHeld) DepositPart(ctx context.Context, handoverID, partyID string, offset, n int64) (store.HeldDeposit, error) {
	d, err := h.HeldCases.DepositPart(ctx, handoverID, partyID, offset, n)
	h.n.Add(int64(len(d.Content)))
	return d, err
}
