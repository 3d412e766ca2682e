package request

import (
	"context"
	"errors"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/store"
)

const sweepBatch = 100

// Run flags overdue requests and warns of near deadlines every
// SweepInterval until ctx ends. Like escrow's sweeper it is safe to run on
// several servers at once: each flag is set once under the agreement's lock.
func (s *Service) Run(ctx context.Context) { s.Workflow.Run(ctx, "request sweep", s.Sweep) }

// Sweep runs one pass and reports how many overdue flags it set.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.Now()
	due, err := s.st.Requests().Due(ctx, now, now.Add(s.NearWindow), sweepBatch)
	if err != nil {
		return 0, err
	}
	flagged := 0
	var errs []error
	for _, r := range due {
		n, err := s.flag(ctx, r.ID)
		flagged += n
		errs = append(errs, err)
	}
	return flagged, errors.Join(errs...)
}

// flag sets whatever overdue flags and near warning are due on one request,
// each with its ledger entry (overdue) and events, in one transaction.
func (s *Service) flag(ctx context.Context, id string) (int, error) {
	flagged := 0
	err := s.SweepCase(ctx, func(tx store.Handle) (string, error) {
		r, err := tx.Requests().Get(ctx, id)
		return r.AgreementID, err
	}, func(st *exchange.Step) error {
		flagged = 0
		r, err := st.Tx.Requests().Get(ctx, id)
		if err != nil {
			return err
		}
		if !store.RequestOpen(r.State) {
			return nil
		}
		now := st.Now
		type overdue struct {
			stage    string
			deadline time.Time
		}
		var found []overdue
		if r.State == store.RequestFiled && !r.AckOverdue && !now.Before(r.AckBy) {
			r.AckOverdue = true
			found = append(found, overdue{"acknowledge", r.AckBy})
		}
		if !r.AnswerOverdue && !now.Before(r.FulfilBy) {
			r.AnswerOverdue = true
			found = append(found, overdue{"answer", r.FulfilBy})
		}
		near := false
		next := r.FulfilBy
		if r.State == store.RequestFiled && !r.AckOverdue {
			next = r.AckBy
		}
		if !r.NearNotified && len(found) == 0 && now.Add(s.NearWindow).After(next) {
			r.NearNotified, near = true, true
		}
		if len(found) == 0 && !near {
			return nil
		}
		if err := st.Tx.Requests().Update(ctx, r); err != nil {
			return err
		}
		for _, o := range found {
			if _, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindRequestOverdue, Agreement: r.AgreementID, Subject: r.ID,
				Time: now, Parties: []string{r.Requester, r.Responder},
				Attrs: map[string]string{"stage": o.stage, "deadline": o.deadline.Format(time.RFC3339Nano), "responder": r.Responder}}); err != nil {
				return err
			}
			for _, pid := range []string{r.Requester, r.Responder} {
				if err := st.Notify(ctx, pid, EventOverdue, r.ID, map[string]any{"agreement": r.AgreementID, "stage": o.stage,
					"deadline": o.deadline, "responder": r.Responder}); err != nil {
					return err
				}
			}
			flagged++
		}
		if near {
			return st.Notify(ctx, r.Responder, EventDeadlineNear, r.ID, map[string]any{"agreement": r.AgreementID, "deadline": next, "state": r.State})
		}
		return nil
	})
	return flagged, err
}
