package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Workflow is what the agreement workflows (escrow's handovers, request's
// requests, matching's sessions) share: every step runs in one transaction
// that holds its agreement's lock and reads the agreement through that same
// transaction, so nothing about the agreement changes between the read and
// the step's commit; the step's ledger entries and events commit with it.
// Workflows with deadlines also share one sweeper loop (Run).
//
// A Workflow is stateless apart from its settings, so several (and several
// servers on one database) may serve the same cases.
type Workflow struct {
	st       store.Store
	ex       *Service
	now      func() time.Time
	notFound error
	// SweepInterval is how often Run sweeps (default 1 s).
	SweepInterval time.Duration
	// NearWindow: a "deadline near" event is sent once a deadline is this
	// close (default 1 h).
	NearWindow time.Duration
	Log        *slog.Logger
	// AcrossNodes lets the workflow's steps run under an agreement between
	// two nodes; a workflow that leaves it false (not built across nodes
	// yet) is refused there with ErrNotAcrossNodes. The workflow then
	// relays its own party's steps to the other node itself.
	AcrossNodes bool
}

// NewWorkflow returns a Workflow over st, reading agreements through ex.
// notFound is the sentinel of the workflow's own package that a missing
// agreement (or one the caller is not a party to) is reported as.
func NewWorkflow(st store.Store, ex *Service, notFound error) *Workflow {
	return &Workflow{st: st, ex: ex, now: func() time.Time { return time.Now().UTC() }, notFound: notFound,
		SweepInterval: time.Second, NearWindow: time.Hour, Log: slog.Default()}
}

// SetClock replaces the clock (tests).
func (w *Workflow) SetClock(now func() time.Time) { w.now = now }

// Now is the workflow's clock.
func (w *Workflow) Now() time.Time { return w.now() }

// Step is one workflow step in progress: a transaction holding the
// agreement's lock, the agreement as read through it, and the step's time.
type Step struct {
	Tx store.Handle
	// Agreement is the agreement as the acting party sees it, read after
	// the lock was taken. It is zero in a sweeper's step (SweepCase).
	Agreement Agreement
	// Now is the step's time, at the microsecond precision stores keep.
	Now time.Time
}

// Record appends entries to the ledger in the step's transaction and
// returns the index of the first.
func (st *Step) Record(ctx context.Context, entries ...ledger.Entry) (int64, error) {
	return ledger.Append(ctx, st.Tx.Ledger(), entries...)
}

// Notify appends an event of kind about subject to partyID's stream in the
// step's transaction, at the step's time.
func (st *Step) Notify(ctx context.Context, partyID, kind, subject string, data map[string]any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = st.Tx.Events().Append(ctx, store.Event{PartyID: partyID, Kind: kind, Subject: subject, Data: b, At: st.Now})
	return err
}

// InAgreement runs fn as one step of p under agreement id: in one
// transaction, after taking the agreement's lock and reading the agreement
// through the same transaction. It fails with the workflow's notFound
// sentinel when the agreement does not exist or p is not a party to it,
// and with an error wrapping ErrBrokenAgreement when its history no longer
// verifies. fn may run more than once (store.Update retries); it must
// derive everything from the step.
func (w *Workflow) InAgreement(ctx context.Context, p party.Principal, id string, fn func(*Step) error) error {
	return w.st.Update(ctx, func(tx store.Handle) error {
		st, err := w.lock(ctx, tx, &p, id)
		if err != nil {
			return err
		}
		return fn(st)
	})
}

// OnCase runs fn as one step of p on a case of an agreement (a handover, a
// request, a session): find reads the case through tx, refuses it if p may
// not act on it, and returns its agreement's id; the agreement is then
// locked and read as by InAgreement. The case may have changed between
// find and the lock, so fn reads it again.
func (w *Workflow) OnCase(ctx context.Context, p party.Principal, find func(tx store.Handle) (agreementID string, err error), fn func(*Step) error) error {
	return w.st.Update(ctx, func(tx store.Handle) error {
		id, err := find(tx)
		if err != nil {
			return err
		}
		st, err := w.lock(ctx, tx, &p, id)
		if err != nil {
			return err
		}
		return fn(st)
	})
}

// SweepCase is OnCase for the sweeper, which acts for nobody: it takes the
// agreement's lock but reads no agreement (Step.Agreement is zero), so a
// case under an agreement whose history no longer verifies still expires.
func (w *Workflow) SweepCase(ctx context.Context, find func(tx store.Handle) (agreementID string, err error), fn func(*Step) error) error {
	return w.st.Update(ctx, func(tx store.Handle) error {
		id, err := find(tx)
		if err != nil {
			return err
		}
		st, err := w.lock(ctx, tx, nil, id)
		if err != nil {
			return err
		}
		return fn(st)
	})
}

// lock takes agreement id's lock in tx and, for a party (p not nil), reads
// the agreement as p sees it through tx.
func (w *Workflow) lock(ctx context.Context, tx store.Handle, p *party.Principal, id string) (*Step, error) {
	st := &Step{Tx: tx}
	if p == nil {
		if err := tx.Agreements().Lock(ctx, id); err != nil {
			return nil, err
		}
	} else {
		a, err := w.ex.lockedAgreement(ctx, tx, *p, id, w.AcrossNodes)
		if errors.Is(err, ErrNotFound) {
			return nil, fault.Errorf("%w: agreement %s", w.notFound, id)
		}
		if err != nil {
			return nil, err
		}
		st.Agreement = a
	}
	st.Now = w.now().Truncate(time.Microsecond)
	return st, nil
}

// Run calls sweep every SweepInterval until ctx ends, logging its errors
// under name. Sweeps must be safe on several servers at once: each step
// re-reads its case under the agreement's lock and does nothing if
// another got there first.
func (w *Workflow) Run(ctx context.Context, name string, sweep func(context.Context) (int, error)) {
	t := time.NewTicker(w.SweepInterval)
	defer t.Stop()
	for {
		if _, err := sweep(ctx); err != nil && ctx.Err() == nil {
			w.Log.ErrorContext(ctx, name, slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
