package escrow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
)

// sweepBatch bounds the cases one sweep looks at; the next sweep takes the rest.
const sweepBatch = 100

// Run expires cases whose deadline has passed and sends "deadline near"
// events, every SweepInterval until ctx ends. Several servers on one
// database may run it at once: each step re-reads the case under the
// agreement's lock and does nothing if another got there first.
func (s *Service) Run(ctx context.Context) { s.Workflow.Run(ctx, "handover sweep", s.Sweep) }

// Sweep runs one pass and reports how many cases it expired.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.Now()
	due, err := s.st.Handovers().Due(ctx, now, now.Add(s.NearWindow), sweepBatch)
	if err != nil {
		return 0, err
	}
	expired := 0
	var errs []error
	for _, h := range due {
		if !now.Before(h.Deadline) {
			ok, err := s.expire(ctx, h.ID)
			if ok {
				expired++
			}
			errs = append(errs, err)
			continue
		}
		errs = append(errs, s.warnNear(ctx, h.ID))
	}
	// The cases this node holds as another agreement's escrow node.
	held, err := s.sweepHeld(ctx)
	errs = append(errs, err)
	return expired + held, errors.Join(errs...)
}

// sweepCase runs fn as the sweeper's step on case id, read again under its
// agreement's lock.
func (s *Service) sweepCase(ctx context.Context, id string, fn func(st *exchange.Step, h store.Handover) error) error {
	return s.SweepCase(ctx, func(tx store.Handle) (string, error) {
		h, err := tx.Handovers().Get(ctx, id)
		return h.AgreementID, err
	}, func(st *exchange.Step) error {
		h, err := st.Tx.Handovers().Get(ctx, id)
		if err != nil {
			return err
		}
		return fn(st, h)
	})
}

// expire closes one case past its deadline in one transaction: deposits
// destroyed, ledger entry, both sides told (the depositors that their
// deposit was destroyed).
func (s *Service) expire(ctx context.Context, id string) (bool, error) {
	done := false
	err := s.sweepCase(ctx, id, func(st *exchange.Step, h store.Handover) error {
		done = false
		if (h.State != store.HandoverProposed && h.State != store.HandoverAccepted) || st.Now.Before(h.Deadline) {
			return nil // released, declined or expired meanwhile
		}
		// An accepted case between two nodes is the escrow node's to
		// decide: it may have released both deposits just before the
		// deadline, and its verdict is on its way. It expires here only
		// once this node knows the escrow node cannot release it. A case
		// still proposed here has no deposit of this node's party, so the
		// escrow node cannot release it, and it expires here too.
		by := ""
		_, gradual, err := gradualOf(ctx, st.Tx, h.ID)
		if err != nil {
			return err
		}
		if gradual {
			// No escrow node: each node ends its side by its own clock;
			// what was exchanged stays, the rest is destroyed here.
			by = "this node (gradual release)"
		} else if h.State == store.HandoverAccepted {
			remote, err := remoteSide(ctx, st.Tx, h)
			if err != nil {
				return err
			}
			if remote != "" {
				why, err := s.unreleasable(ctx, st.Tx, h, remote)
				if err != nil || why == "" {
					return err
				}
				by = "this node: " + why
			}
		}
		if err := s.expireCase(ctx, st, h, by); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err == nil && done {
		crashPoint(CrashExpiryAfterCommit)
	}
	return done, err
}

// expireCase closes case h as expired in st: its deposits destroyed, the
// ledger entry, the request hook, both sides told. by names who decided it
// when not this node's sweeper (the escrow node of a case between nodes).
func (s *Service) expireCase(ctx context.Context, st *exchange.Step, h store.Handover, by string) error {
	now, tx, id := st.Now, st.Tx, h.ID
	ds, err := tx.Handovers().Deposits(ctx, id)
	if err != nil {
		return err
	}
	var depositors []string
	for _, d := range ds {
		if _, err := tx.Handovers().DeleteDeposit(ctx, id, d.PartyID); err != nil {
			return err
		}
		depositors = append(depositors, d.PartyID)
	}
	unsent := -1
	if _, gradual, err := gradualOf(ctx, tx, id); err != nil {
		return err
	} else if gradual {
		if unsent, err = s.destroyUnsent(ctx, st, h); err != nil {
			return err
		}
	}
	crashPoint(CrashExpiryMidTx)
	h.State, h.ClosedAt = store.HandoverExpired, now
	if err := tx.Handovers().Update(ctx, h); err != nil {
		return err
	}
	attrs := map[string]string{"deadline": h.Deadline.Format(time.RFC3339Nano), "destroyed": strings.Join(depositors, ",")}
	if by != "" {
		attrs["decided_by"] = by
	}
	if unsent >= 0 {
		attrs["chunks_destroyed"] = fmt.Sprint(unsent)
	}
	if _, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverExpired, Agreement: h.AgreementID, Subject: h.ID, Time: now,
		Parties: []string{h.Proposer, h.Counterpart}, Attrs: attrs}); err != nil {
		return err
	}
	if err := request.HandoverFailed(ctx, st, h, request.CauseExpired, ""); err != nil {
		return err
	}
	for _, pid := range []string{h.Proposer, h.Counterpart} {
		destroyed := false
		for _, d := range depositors {
			destroyed = destroyed || d == pid
		}
		if err := st.Notify(ctx, pid, EventExpired, h.ID, map[string]any{"agreement": h.AgreementID,
			"deadline": h.Deadline, "your_deposit_destroyed": destroyed}); err != nil {
			return err
		}
	}
	return nil
}

// warnNear sends both sides a "deadline near" event once per case.
func (s *Service) warnNear(ctx context.Context, id string) error {
	return s.sweepCase(ctx, id, func(st *exchange.Step, h store.Handover) error {
		if h.NearNotified || (h.State != store.HandoverProposed && h.State != store.HandoverAccepted) {
			return nil
		}
		h.NearNotified = true
		if err := st.Tx.Handovers().Update(ctx, h); err != nil {
			return err
		}
		ds, err := st.Tx.Handovers().Deposits(ctx, id)
		if err != nil {
			return err
		}
		for _, pid := range []string{h.Proposer, h.Counterpart} {
			deposited := false
			for _, d := range ds {
				deposited = deposited || d.PartyID == pid
			}
			if err := st.Notify(ctx, pid, EventDeadlineNear, h.ID, map[string]any{"agreement": h.AgreementID,
				"deadline": h.Deadline, "state": h.State, "you_deposited": deposited}); err != nil {
				return err
			}
		}
		return nil
	})
}

// unreleasable says why the escrow node cannot release case h between
// nodes (remote is the side on the other node), or "" when it may have.
// The escrow node takes a side's deposit only from that side's node and
// releases only with both, so: with no deposit of this node's party here,
// none reached it; and a message it needs from this node for the case
// (the case, the acceptance, the deposit) that it refused for good is
// never sent again, so it will never have it. Anything else (a message
// still pending, an escrow node that does not answer) leaves the case to
// the escrow node's verdict: it may have released.
func (s *Service) unreleasable(ctx context.Context, tx store.Handle, h store.Handover, remote string) (string, error) {
	mine := other(h, remote)
	if _, err := tx.Handovers().DepositPart(ctx, h.ID, mine, 0, 0); errors.Is(err, store.ErrNotFound) {
		return "no deposit of " + mine + " was sent to the escrow node", nil
	} else if err != nil {
		return "", err
	}
	a, err := s.ex.GoverningIn(ctx, tx, h.AgreementID)
	if err != nil {
		return "", err
	}
	kid, err := peerKeyID(ctx, tx, a.Status.Document.EscrowNode)
	if err != nil {
		return "", nil // not pinned here (any more): nothing of this node's reached it since
	}
	refused, err := tx.Federation().OutboxRefused(ctx, h.AgreementID, kid)
	if err != nil {
		return "", err
	}
	for _, e := range refused {
		switch e.Kind {
		case OutboxHeldCase, OutboxHeldDecision, OutboxDeposit:
		default:
			continue
		}
		var m struct {
			Handover string `json:"handover"`
		}
		if json.Unmarshal(e.Body, &m) == nil && m.Handover == h.ID {
			return "the escrow node refused this node's " + e.Kind + " (" + e.LastError + ")", nil
		}
	}
	return "", nil
}
