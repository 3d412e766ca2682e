package exchange

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
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
		a, err := s.lockedStatement(ctx, tx, p, agreementID, true, func(a Agreement, keys agreement.KeyResolver) error {
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
		return s.relayContest(ctx, tx, a, c.ID, p.PartyID, contributor, raw)
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
		a, err := s.lockedStatement(ctx, tx, p, agreementID, true, func(_ Agreement, keys agreement.KeyResolver) error {
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
		if err := s.relayContest(ctx, tx, a, contestID, p.PartyID, cur.Contributor, raw); err != nil {
			return err
		}
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

// Contests across nodes (issue 14, docs/federation.md "Contests across
// nodes"). Each node counts the credits of the other side from what it
// received from the peer and accepted, so a contest filed on the
// contester's node acts there, on that node's count of the contributor's
// credits, exactly as on one server. The contester's node then relays the
// signed statement to the contributor's node (OutboxContest), which only
// records it and shows it to its party: the credit it concerns is counted
// on the contester's node, and the contributor's node counts the
// contester's credits, not its own party's, so nothing a peer relays
// lowers (or, by a withdrawal, raises) anything there.

// OutboxContest is the outbox kind of a contest or its withdrawal, sent
// from the contester's node to the contributor's.
const OutboxContest = "contest.statement"

// ContestMessage is a contest or its withdrawal on its way from the
// contester's node: the contest's id there and the contester's signed
// statement (agreement.SignedContest).
type ContestMessage struct {
	Contest   string          `json:"contest"`
	Agreement string          `json:"agreement"`
	Statement json.RawMessage `json:"statement"`
}

// ContestReceipt says what became of a relayed contest message.
type ContestReceipt struct {
	Contest     string `json:"contest"`
	Duplicate   bool   `json:"duplicate"`
	LedgerIndex int64  `json:"ledger_index,omitempty"`
}

// Events on the contributor's node when the other party's node relays a
// contest of its credit, or its withdrawal; and when one was refused.
const (
	EventContestFiled     = "contest.filed"
	EventContestWithdrawn = "contest.withdrawn"
	EventContestRefused   = "node.contest_refused"
)

// relayContest writes a contest (or its withdrawal) to the outbox for the
// contributor's node, in tx, when the agreement is between two nodes.
func (s *Service) relayContest(ctx context.Context, tx store.Handle, a Agreement, contestID, contester, contributor string, statement []byte) error {
	if a.Status.Document == nil || !a.Status.Document.CrossNode() {
		return nil
	}
	rp, err := tx.Federation().RemoteParty(ctx, contributor)
	if err != nil {
		return fault.Errorf("the node of %s: %w", contributor, err)
	}
	body, err := json.Marshal(ContestMessage{Contest: contestID, Agreement: a.Record.ID, Statement: statement})
	if err != nil {
		return err
	}
	now := s.now()
	_, err = tx.Federation().Enqueue(ctx, store.OutboxEntry{PeerKeyID: rp.NodeKeyID, AgreementID: a.Record.ID, PartyID: contester,
		Kind: OutboxContest, Body: body, CreatedAt: now, NextAttempt: now})
	return err
}

// ReceiveContest records, on the contributor's node, a contest or its
// withdrawal the contester's node relayed, and tells the contributor. It
// is checked before anything is stored: the contester's signature under
// its registered key, the peer is the node the agreement places the
// contester on, the contributor is this node's party, and a contest names
// a contribution the contributor made here under the agreement while it
// is in force and sets a contest_window. It moves no credit here
// (MirrorContest). The same message again answers Duplicate. Refusals:
// ErrInvalid (malformed), ErrNotPeersParty (the peer is not the
// contester's node), ErrNotPartyHere (no such agreement between two
// nodes with the contributor on this one), ErrNotFound (no such
// contribution, or no such contest to withdraw), ErrForbidden (not in
// force, no contest window), ErrConflict (the id or the credit is under
// another contest here), and the agreement package's signature errors.
func (s *Service) ReceiveContest(ctx context.Context, peer store.Peer, m ContestMessage) (ContestReceipt, error) {
	out := ContestReceipt{Contest: m.Contest}
	var sc agreement.SignedContest
	if err := json.Unmarshal(m.Statement, &sc); err != nil {
		return out, fault.Errorf("%w: the statement is not a signed contest", ErrInvalid)
	}
	if u, ok := strings.CutPrefix(m.Contest, "contest--"); !ok || len(u) != 36 {
		return out, fault.Errorf("%w: contest id %q is not contest--<uuid>", ErrInvalid, m.Contest)
	}
	if sc.AgreementID != m.Agreement {
		return out, fault.Errorf("%w: the statement is for %s, not %s", ErrInvalid, sc.AgreementID, m.Agreement)
	}
	if sc.Action == agreement.ContestWithdraw && sc.ContestID != m.Contest {
		return out, fault.Errorf("%w: the withdrawal names %s, not %s", ErrInvalid, sc.ContestID, m.Contest)
	}
	raw, err := json.Marshal(sc)
	if err != nil {
		return out, err
	}
	err = s.st.Update(ctx, func(tx store.Handle) error {
		a, contributor, err := s.lockRelayed(ctx, tx, peer, m.Agreement, sc.PartyID)
		if err != nil {
			return err
		}
		doc := a.Status.Document
		keys, err := loadKeys(ctx, tx, sc.PartyID)
		if err != nil {
			return err
		}
		if err := agreement.VerifyContest(keys, sc); err != nil {
			return err
		}
		all, err := tx.Credits().Contests(ctx, m.Agreement)
		if err != nil {
			return err
		}
		var had *store.Contest
		for i := range all {
			if all[i].ID == m.Contest {
				had = &all[i]
			}
		}
		now := s.now().Truncate(time.Microsecond)
		sum := sha256.Sum256(raw)
		st := &Step{Tx: tx, Agreement: a, Now: now}
		switch sc.Action {
		case agreement.ContestFile:
			if had != nil {
				if bytes.Equal(had.Statement, raw) && had.Contester == sc.PartyID {
					out.Duplicate, out.LedgerIndex = true, had.LedgerIndex
					return nil
				}
				return fault.Errorf("%w: contest %s exists here with another statement", ErrConflict, m.Contest)
			}
			if !a.Status.InForce(now) {
				return fault.Errorf("%w: agreement %s is %s here, not in force", ErrForbidden, m.Agreement, a.Status.Phase)
			}
			if doc.Reciprocity.ContestWindow <= 0 {
				return fault.Errorf("%w: agreement %s sets no reciprocity.contest_window", ErrForbidden, m.Agreement)
			}
			cr, err := tx.Credits().Credit(ctx, m.Agreement, contributor.PartyID, sc.ObjectID)
			if errors.Is(err, store.ErrNotFound) {
				return fault.Errorf("%w: %s is not a contribution of %s under %s here", ErrNotFound, sc.ObjectID, contributor.PartyID, m.Agreement)
			}
			if err != nil {
				return err
			}
			for _, c := range all {
				if c.ObjectID == sc.ObjectID {
					return fault.Errorf("%w: the credit for %s was contested before (%s)", ErrConflict, sc.ObjectID, c.ID)
				}
			}
			c := store.Contest{ID: m.Contest, AgreementID: m.Agreement, Contester: sc.PartyID, Contributor: contributor.PartyID,
				ObjectID: sc.ObjectID, Weight: cr.Weight, Reason: sc.Reason, Statement: raw, FiledAt: now}
			if c.LedgerIndex, err = st.Record(ctx, ledger.Entry{Kind: ledger.KindFeedContested, Actor: sc.PartyID, Agreement: m.Agreement,
				Subject: c.ID, Time: now, Parties: []string{sc.PartyID, contributor.PartyID},
				Attrs:   map[string]string{"weight": strconv.FormatFloat(cr.Weight, 'g', -1, 64), "key_id": sc.KeyID, "via": peer.Name},
				Digests: map[string]string{"statement": "sha256:" + hex.EncodeToString(sum[:])}}); err != nil {
				return err
			}
			if err := tx.Credits().MirrorContest(ctx, c); err != nil {
				return err
			}
			out.LedgerIndex = c.LedgerIndex
			return st.Notify(ctx, contributor.PartyID, EventContestFiled, c.ID, map[string]any{"agreement": m.Agreement, "by": sc.PartyID,
				"object_id": sc.ObjectID, "reason": sc.Reason, "via": peer.Name})
		case agreement.ContestWithdraw:
			if had == nil || had.Contester != sc.PartyID {
				return fault.Errorf("%w: no contest %s of %s under %s here", ErrNotFound, m.Contest, sc.PartyID, m.Agreement)
			}
			if !had.WithdrawnAt.IsZero() {
				if bytes.Equal(had.Withdrawal, raw) {
					out.Duplicate, out.LedgerIndex = true, had.WithdrawIndex
					return nil
				}
				return fault.Errorf("%w: contest %s was withdrawn at %s", ErrConflict, m.Contest, had.WithdrawnAt.Format(time.RFC3339))
			}
			idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindFeedContestWithdrawn, Actor: sc.PartyID, Agreement: m.Agreement,
				Subject: m.Contest, Time: now, Parties: []string{sc.PartyID, contributor.PartyID},
				Attrs:   map[string]string{"weight": strconv.FormatFloat(had.Weight, 'g', -1, 64), "key_id": sc.KeyID, "via": peer.Name},
				Digests: map[string]string{"statement": "sha256:" + hex.EncodeToString(sum[:])}})
			if err != nil {
				return err
			}
			if _, err := tx.Credits().MirrorWithdrawal(ctx, m.Agreement, m.Contest, now, raw, idx); err != nil {
				return err
			}
			out.LedgerIndex = idx
			return st.Notify(ctx, contributor.PartyID, EventContestWithdrawn, m.Contest, map[string]any{"agreement": m.Agreement, "by": sc.PartyID,
				"object_id": had.ObjectID, "via": peer.Name})
		}
		return fault.Errorf("%w: unknown contest action %q", ErrInvalid, sc.Action)
	})
	return out, err
}

// RefusedContest tells this node's party of the agreement a relayed
// contest message named that it was refused, and why (EventContestRefused
// on its event stream). It tells no one when the agreement is not here,
// is not between two nodes (a peer learns nothing of local agreements and
// cannot write to their parties' streams), or has no party of this node.
func (s *Service) RefusedContest(ctx context.Context, peer store.Peer, m ContestMessage, code string, why error) error {
	a, err := s.loadAgreement(ctx, s.st, m.Agreement, s.now())
	if err != nil || a.Status.Document == nil || !a.Status.Document.CrossNode() {
		return nil
	}
	rec := a.Record
	text := "refused"
	if msg, ok := fault.MessageOf(why); ok {
		text = string(msg)
	}
	data, err := json.Marshal(map[string]string{"peer": peer.Name, "code": code, "message": text, "contest": m.Contest})
	if err != nil {
		return err
	}
	for _, pid := range []string{rec.PartyA, rec.PartyB} {
		if _, err := s.st.Federation().RemoteParty(ctx, pid); err == nil {
			continue // the peer's party, not this node's
		}
		if _, err := s.st.Events().Append(ctx, store.Event{PartyID: pid, Kind: EventContestRefused, Subject: m.Agreement, Data: data, At: s.now()}); err != nil {
			return err
		}
	}
	return nil
}
