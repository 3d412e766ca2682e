package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// ContestView is a contest as both parties to its agreement see it.
type ContestView struct {
	ID          string          `json:"id"`
	Agreement   string          `json:"agreement"`
	Contester   string          `json:"contester"`   // the party that received the object
	Contributor string          `json:"contributor"` // the party whose credit is contested
	ObjectID    string          `json:"object_id"`
	Weight      float64         `json:"weight"` // the credit reversed while the contest stands
	Reason      string          `json:"reason"`
	FiledAt     time.Time       `json:"filed_at"`
	LedgerIndex int64           `json:"ledger_index"`
	Statement   json.RawMessage `json:"statement"` // the signed contest
	// Set once withdrawn.
	WithdrawnAt   *time.Time      `json:"withdrawn_at,omitempty"`
	WithdrawIndex int64           `json:"withdraw_ledger_index,omitempty"`
	Withdrawal    json.RawMessage `json:"withdrawal,omitempty"` // the signed withdrawal
}

func contestView(c store.Contest) ContestView {
	v := ContestView{ID: c.ID, Agreement: c.AgreementID, Contester: c.Contester, Contributor: c.Contributor, ObjectID: c.ObjectID,
		Weight: c.Weight, Reason: c.Reason, FiledAt: c.FiledAt, LedgerIndex: c.LedgerIndex, Statement: c.Statement}
	if !c.WithdrawnAt.IsZero() {
		at := c.WithdrawnAt
		v.WithdrawnAt, v.WithdrawIndex, v.Withdrawal = &at, c.WithdrawIndex, c.Withdrawal
	}
	return v
}

// checkContest applies what every contest statement must satisfy: it is
// the caller's own, for this agreement, of the expected action, signed
// recently.
func (s *Service) checkContest(p party.Principal, agreementID string, sc agreement.SignedContest, action agreement.ContestAction) error {
	switch {
	case sc.Action != action:
		return fault.Errorf("%w: the statement is a %q, not a %q", ErrInvalid, sc.Action, action)
	case sc.PartyID != p.PartyID:
		return fault.Errorf("%w: the statement is by %s; you can only submit your own", ErrInvalid, sc.PartyID)
	case sc.AgreementID != agreementID:
		return fault.Errorf("%w: the statement is for %s, not %s", ErrInvalid, sc.AgreementID, agreementID)
	}
	if d := s.now().Sub(sc.SignedAt); d > MaxClockSkew || d < -MaxClockSkew {
		return fault.Errorf("%w: signed_at %s is more than %s from the server's clock; check your clock and sign again", ErrInvalid, sc.SignedAt.Format(time.RFC3339), MaxClockSkew)
	}
	return nil
}

// Contest files p's signed contest of the credit its counterpart earned
// for one object released to p. While the contest stands the credit does
// not count toward the counterpart's allowance (what was released stays
// released). The agreement must set a contest_window, and the contest must
// come within it of the contribution. An object that is not a credited
// contribution of the counterpart released to p is ErrNotFound, whether
// it exists or not.
func (s *Service) Contest(ctx context.Context, p party.Principal, agreementID string, sc agreement.SignedContest) (ContestView, error) {
	if err := s.checkContest(p, agreementID, sc, agreement.ContestFile); err != nil {
		return ContestView{}, err
	}
	raw, err := json.Marshal(sc)
	if err != nil {
		return ContestView{}, err
	}
	var out ContestView
	err = s.st.Update(ctx, func(tx store.Handle) error {
		a, err := s.lockedStatement(ctx, tx, p, agreementID, func(a Agreement, keys agreement.KeyResolver) error {
			if a.Status.Document.Reciprocity.ContestWindow <= 0 {
				return fault.Errorf("%w: agreement %s sets no reciprocity.contest_window, so its credits cannot be contested", ErrForbidden, agreementID)
			}
			return agreement.VerifyContest(keys, sc)
		})
		if err != nil {
			return err
		}
		window := a.Status.Document.Reciprocity.ContestWindow
		contributor := a.Counterpart(p.PartyID)
		notFound := fault.Errorf("%w: %s is not a credited contribution of the other party released to you", ErrNotFound, sc.ObjectID)
		cr, err := tx.Credits().Credit(ctx, agreementID, contributor, sc.ObjectID)
		if errors.Is(err, store.ErrNotFound) {
			return notFound
		}
		if err != nil {
			return err
		}
		released, err := tx.Credits().Released(ctx, agreementID, p.PartyID)
		if err != nil {
			return err
		}
		if cr.Ord > released {
			return notFound // not released to p: as if it did not exist
		}
		now := s.now().Truncate(time.Microsecond)
		if closes := cr.AddedAt.Add(window); now.After(closes) {
			return fault.Errorf("%w: the contest window for %s closed at %s (%s after it was contributed)", ErrForbidden, sc.ObjectID, closes.Format(time.RFC3339), window)
		}
		if cr.Contested {
			return fault.Errorf("%w: the credit for %s is contested already", ErrConflict, sc.ObjectID)
		}
		c := store.Contest{ID: party.NewID("contest"), AgreementID: agreementID, Contester: p.PartyID, Contributor: contributor,
			ObjectID: sc.ObjectID, Weight: cr.Weight, Reason: sc.Reason, Statement: raw, FiledAt: now}
		sum := sha256.Sum256(raw)
		// The object id goes only into a committed digest: the ledger is
		// public, and an observable's id follows from its value.
		if c.LedgerIndex, err = s.record(ctx, tx, ledger.Entry{Kind: ledger.KindFeedContested, Actor: p.PartyID, Agreement: agreementID,
			Subject: c.ID, Time: now, Parties: []string{p.PartyID, contributor},
			Attrs:   map[string]string{"weight": strconv.FormatFloat(cr.Weight, 'g', -1, 64), "key_id": sc.KeyID},
			Digests: map[string]string{"statement": "sha256:" + hex.EncodeToString(sum[:])}}); err != nil {
			return err
		}
		if err := tx.Credits().Contest(ctx, c); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fault.Errorf("%w: the credit for %s was contested before", ErrConflict, sc.ObjectID)
			}
			return err
		}
		out = contestView(c)
		return nil
	})
	return out, err
}

// WithdrawContest withdraws p's contest contestID with p's signed
// withdrawal: the credit counts again (and may release more to the other
// side). A withdrawal is final. A contest that is not p's is ErrNotFound.
func (s *Service) WithdrawContest(ctx context.Context, p party.Principal, agreementID, contestID string, sc agreement.SignedContest) (ContestView, error) {
	if err := s.checkContest(p, agreementID, sc, agreement.ContestWithdraw); err != nil {
		return ContestView{}, err
	}
	if sc.ContestID != contestID {
		return ContestView{}, fault.Errorf("%w: the withdrawal names %s, not %s", ErrInvalid, sc.ContestID, contestID)
	}
	raw, err := json.Marshal(sc)
	if err != nil {
		return ContestView{}, err
	}
	var out ContestView
	err = s.st.Update(ctx, func(tx store.Handle) error {
		a, err := s.lockedStatement(ctx, tx, p, agreementID, func(_ Agreement, keys agreement.KeyResolver) error {
			return agreement.VerifyContest(keys, sc)
		})
		if err != nil {
			return err
		}
		all, err := tx.Credits().Contests(ctx, agreementID)
		if err != nil {
			return err
		}
		var cur *store.Contest
		for i := range all {
			if all[i].ID == contestID && all[i].Contester == p.PartyID {
				cur = &all[i]
			}
		}
		if cur == nil {
			return fault.Errorf("%w: no contest %s of yours under %s", ErrNotFound, contestID, agreementID)
		}
		if !cur.WithdrawnAt.IsZero() {
			return fault.Errorf("%w: contest %s was withdrawn at %s", ErrConflict, contestID, cur.WithdrawnAt.Format(time.RFC3339))
		}
		now := s.now().Truncate(time.Microsecond)
		sum := sha256.Sum256(raw)
		idx, err := s.record(ctx, tx, ledger.Entry{Kind: ledger.KindFeedContestWithdrawn, Actor: p.PartyID, Agreement: agreementID,
			Subject: contestID, Time: now, Parties: []string{p.PartyID, cur.Contributor},
			Attrs:   map[string]string{"weight": strconv.FormatFloat(cur.Weight, 'g', -1, 64), "key_id": sc.KeyID},
			Digests: map[string]string{"statement": "sha256:" + hex.EncodeToString(sum[:])}})
		if err != nil {
			return err
		}
		c, err := tx.Credits().WithdrawContest(ctx, agreementID, contestID, now, raw, idx)
		if err != nil {
			return err
		}
		out = contestView(c)
		if a.Status.InForce(now) {
			// The credit counts again: it may release more.
			return s.release(ctx, tx, a, now)
		}
		return nil
	})
	return out, err
}

// Contests lists every contest under an agreement p is a party to, filed
// by either side, oldest first.
func (s *Service) Contests(ctx context.Context, p party.Principal, agreementID string) ([]ContestView, error) {
	if _, err := s.Agreement(ctx, p, agreementID); err != nil {
		return nil, err
	}
	cs, err := s.st.Credits().Contests(ctx, agreementID)
	if err != nil {
		return nil, err
	}
	out := make([]ContestView, 0, len(cs))
	for _, c := range cs {
		out = append(out, contestView(c))
	}
	return out, nil
}
