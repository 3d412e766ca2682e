package request

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/store"
)

const sweepBatch = 100

// Run flags overdue requests and warns of near deadlines every
// SweepInterval until ctx ends. Like escrow's sweeper it is safe to run on
// several servers at once: each flag is set once under the agreement's lock.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.SweepInterval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.Log.ErrorContext(ctx, "request sweep", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep runs one pass and reports how many overdue flags it set.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	e := s.st
	now := s.now()
	due, err := e.Requests().Due(ctx, now, now.Add(s.NearWindow), sweepBatch)
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
	err := s.st.Update(ctx, func(tx store.Handle) error {
		flagged = 0
		e, x := tx, tx
		r, err := e.Requests().Get(ctx, id)
		if err != nil {
			return err
		}
		if err := x.Agreements().Lock(ctx, r.AgreementID); err != nil {
			return err
		}
		if r, err = e.Requests().Get(ctx, id); err != nil {
			return err
		}
		if r.State != store.RequestFiled && r.State != store.RequestAcknowledged {
			return nil
		}
		now := s.now().Truncate(time.Microsecond)
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
		if err := e.Requests().Update(ctx, r); err != nil {
			return err
		}
		for _, o := range found {
			if _, err := ledger.Append(ctx, x.Ledger(), ledger.Entry{Kind: ledger.KindRequestOverdue, Agreement: r.AgreementID, Subject: r.ID,
				Time: now, Parties: []string{r.Requester, r.Responder},
				Attrs: map[string]string{"stage": o.stage, "deadline": o.deadline.Format(time.RFC3339Nano), "responder": r.Responder}}); err != nil {
				return err
			}
			for _, pid := range []string{r.Requester, r.Responder} {
				if err := notify(ctx, e, pid, EventOverdue, r.ID, now, map[string]any{"agreement": r.AgreementID, "stage": o.stage,
					"deadline": o.deadline, "responder": r.Responder}); err != nil {
					return err
				}
			}
			flagged++
		}
		if near {
			return notify(ctx, e, r.Responder, EventDeadlineNear, r.ID, now, map[string]any{"agreement": r.AgreementID, "deadline": next, "state": r.State})
		}
		return nil
	})
	return flagged, err
}
