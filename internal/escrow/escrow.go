package escrow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
)

// Sentinel errors. Each failure wraps one of them with a message that says
// what was wrong.
var (
	// ErrNotFound: no such case, or one the caller is not a side of; the
	// two look the same on purpose.
	ErrNotFound = fault.New(fault.NotFound, "no such handover")
	// ErrInvalid: the request itself is unacceptable (bad bundle, bad
	// deadline, empty description).
	ErrInvalid = fault.New(fault.Invalid, "invalid")
	// ErrHashMismatch: a sealed deposit's ciphertext does not hash to the
	// SHA-256 its depositor stated.
	ErrHashMismatch = fault.Refine(fault.Errorf("%w: the ciphertext does not match its stated SHA-256", ErrInvalid), nil, "hash_mismatch")
	// ErrForbidden: the caller may see the case but not take this step
	// (accepting its own proposal, acting under an agreement not in force).
	ErrForbidden = fault.New(fault.Forbidden, "not permitted")
	// ErrConflict: the case's state does not allow the step now
	// (depositing twice, withdrawing after release).
	ErrConflict = fault.New(fault.Conflict, "not possible now")
	// ErrDeadlinePassed: the case's deadline has passed (it has expired or
	// is about to be expired by the sweeper).
	ErrDeadlinePassed = fault.Refine(fault.Errorf("%w: the handover's deadline has passed", ErrConflict), nil, "deadline_passed")
)

// MaxText bounds descriptions and dispute texts.
const MaxText = 4096

// Event kinds on a party's stream.
const (
	EventProposed     = "handover.proposed"
	EventAccepted     = "handover.accepted"
	EventDeclined     = "handover.declined"
	EventDeposited    = "handover.deposited" // the other side deposited
	EventWithdrawn    = "handover.withdrawn" // the other side withdrew
	EventReleased     = "handover.released"
	EventExpired      = "handover.expired"
	EventDeadlineNear = "handover.deadline_near"
	EventDisputed     = "handover.disputed"
)

// Service runs handovers on a store. Its steps run through the agreement
// workflow (exchange.Workflow: the agreement's lock, read in the step's
// transaction, ledger entries and events), whose settings it carries:
// SweepInterval and NearWindow for the sweeper (Run), Log, SetClock. It is
// stateless apart from them, so several instances (and several servers on
// one database) may serve the same cases.
type Service struct {
	*exchange.Workflow
	st store.Store
	ex *exchange.Service
}

// New returns a Service over st; ex reads agreements and their state and
// stores what a release delivers.
func New(st store.Store, ex *exchange.Service) *Service {
	w := exchange.NewWorkflow(st, ex, ErrNotFound)
	w.AcrossNodes = true // through the escrow node the agreement names (acrossnodes.go)
	return &Service{Workflow: w, st: st, ex: ex}
}

func checkText(what, v string, required bool) error {
	switch {
	case required && strings.TrimSpace(v) == "":
		return fault.Errorf("%w: %s is empty", ErrInvalid, what)
	case len(v) > MaxText:
		return fault.Errorf("%w: %s is %d bytes, more than %d", ErrInvalid, what, len(v), MaxText)
	case !utf8.ValidString(v):
		return fault.Errorf("%w: %s is not UTF-8", ErrInvalid, what)
	}
	return nil
}

func digest(sum [32]byte) string { return "sha256:" + hex.EncodeToString(sum[:]) }

// ProposeInput is a new case.
type ProposeInput struct {
	AgreementID string
	Delivers    string    // what the proposer deposits
	Expects     string    // what the counterpart deposits
	RequestID   string    // optional: the request this case answers
	Deadline    time.Time // zero: the latest the agreement allows
	// Chunks, when not 0, asks for gradual release (gradual.go): only
	// between two nodes under an agreement that names no escrow node,
	// agreement.MinChunks to agreement.MaxChunks.
	Chunks int
}

// Result is a case after a step, with the ledger index recording the step.
type Result struct {
	Handover    store.Handover
	LedgerIndex int64
}

// Propose opens a case under an agreement in force.
func (s *Service) Propose(ctx context.Context, p party.Principal, in ProposeInput) (Result, error) {
	if err := checkText("what you deliver", in.Delivers, true); err != nil {
		return Result{}, err
	}
	if err := checkText("what you expect", in.Expects, true); err != nil {
		return Result{}, err
	}
	var out Result
	err := s.InAgreement(ctx, p, in.AgreementID, func(st *exchange.Step) error {
		a, now := st.Agreement, st.Now
		if !a.Status.InForce(now) {
			return fault.Errorf("%w: agreement %s is %s, not in force", ErrForbidden, in.AgreementID, a.Status.Phase)
		}
		cross, err := gradualMode(a, in.Chunks)
		if err != nil {
			return err
		}
		latest := now.Add(a.Status.Document.EscrowDeadline)
		deadline := in.Deadline.UTC().Truncate(time.Microsecond)
		if deadline.IsZero() {
			deadline = latest
		}
		if !deadline.After(now) {
			return fault.Errorf("%w: the deadline %s is not in the future", ErrInvalid, deadline.Format(time.RFC3339))
		}
		if deadline.After(latest) {
			return fault.Errorf("%w: the deadline %s is later than the agreement's escrow deadline (%s) allows: %s", ErrInvalid,
				deadline.Format(time.RFC3339), a.Status.Document.EscrowDeadline, latest.Format(time.RFC3339))
		}
		if in.RequestID != "" {
			r, err := st.Tx.Requests().Get(ctx, in.RequestID)
			if errors.Is(err, store.ErrNotFound) || (err == nil && r.AgreementID != in.AgreementID) {
				return fault.Errorf("%w: request %s is not a request under agreement %s", ErrInvalid, in.RequestID, in.AgreementID)
			}
			if err != nil {
				return err
			}
			if !store.RequestOpen(r.State) {
				return fault.Errorf("%w: request %s is already %s", ErrConflict, r.ID, r.State)
			}
		}
		h := store.Handover{ID: party.NewID("handover"), AgreementID: in.AgreementID, Proposer: p.PartyID,
			Counterpart: a.Counterpart(p.PartyID), ProposerDelivers: in.Delivers, CounterpartDelivers: in.Expects,
			RequestID: in.RequestID, Deadline: deadline, State: store.HandoverProposed, CreatedAt: now}
		if err := st.Tx.Handovers().Create(ctx, h); err != nil {
			return err
		}
		if in.Chunks != 0 {
			if err := st.Tx.Handovers().CreateGradual(ctx, store.Gradual{HandoverID: h.ID, Chunks: in.Chunks}); err != nil {
				return err
			}
		}
		attrs := map[string]string{"deadline": deadline.Format(time.RFC3339Nano)}
		if in.Chunks != 0 {
			attrs["chunks"] = fmt.Sprint(in.Chunks)
		}
		if h.RequestID != "" {
			attrs["request"] = h.RequestID
		}
		dsum := sha256.Sum256([]byte(h.ProposerDelivers + "\x00" + h.CounterpartDelivers))
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverProposed, Actor: p.PartyID, Agreement: h.AgreementID,
			Subject: h.ID, Time: now, Parties: []string{h.Proposer, h.Counterpart}, Attrs: attrs,
			Digests: map[string]string{"terms": digest(dsum)}})
		if err != nil {
			return err
		}
		out = Result{h, idx}
		if cross {
			// The counterpart lives on another node: the case goes to its
			// node and to the escrow node in this transaction.
			return s.relayCase(ctx, st, h, in.Chunks)
		}
		return st.Notify(ctx, h.Counterpart, EventProposed, h.ID, map[string]any{"agreement": h.AgreementID,
			"from": p.PartyID, "deadline": deadline, "they_deliver": h.ProposerDelivers, "you_deliver": h.CounterpartDelivers, "request": h.RequestID})
	})
	return out, err
}

// onCase runs fn as p's step on case id, which p must be a side of, with
// the case read under its agreement's lock.
func (s *Service) onCase(ctx context.Context, p party.Principal, id string, fn func(st *exchange.Step, h store.Handover) error) error {
	return s.OnCase(ctx, p, func(tx store.Handle) (string, error) {
		h, err := tx.Handovers().Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && h.Proposer != p.PartyID && h.Counterpart != p.PartyID) {
			return "", fault.Errorf("%w: %s", ErrNotFound, id)
		}
		return h.AgreementID, err
	}, func(st *exchange.Step) error {
		// Re-read under the lock: a deposit or the sweeper may have moved it.
		h, err := st.Tx.Handovers().Get(ctx, id)
		if err != nil {
			return err
		}
		return fn(st, h)
	})
}

func other(h store.Handover, partyID string) string {
	if h.Proposer == partyID {
		return h.Counterpart
	}
	return h.Proposer
}

// closedErr explains why a closed case refuses a step.
func closedErr(h store.Handover) error {
	switch h.State {
	case store.HandoverExpired:
		return fault.Errorf("%w: handover %s expired at %s", ErrDeadlinePassed, h.ID, h.Deadline.Format(time.RFC3339))
	case store.HandoverReleased:
		return fault.Errorf("%w: handover %s was already released", ErrConflict, h.ID)
	case store.HandoverDeclined:
		return fault.Errorf("%w: handover %s was declined", ErrConflict, h.ID)
	}
	return fault.Errorf("%w: handover %s is %s", ErrConflict, h.ID, h.State)
}

// Decide accepts (accept true) or declines a proposed case; only the
// counterpart may.
func (s *Service) Decide(ctx context.Context, p party.Principal, id string, accept bool) (Result, error) {
	var out Result
	err := s.onCase(ctx, p, id, func(st *exchange.Step, h store.Handover) error {
		a, now := st.Agreement, st.Now
		switch {
		case h.Counterpart != p.PartyID:
			return fault.Errorf("%w: only %s, the counterpart, may accept or decline handover %s", ErrForbidden, h.Counterpart, id)
		case h.State != store.HandoverProposed:
			return closedErr(h)
		case !now.Before(h.Deadline):
			return fault.Errorf("%w: handover %s expired at %s", ErrDeadlinePassed, id, h.Deadline.Format(time.RFC3339))
		case accept && !a.Status.InForce(now):
			return fault.Errorf("%w: agreement %s is %s, not in force", ErrForbidden, h.AgreementID, a.Status.Phase)
		}
		_, gradual, err := gradualOf(ctx, st.Tx, id)
		if err != nil {
			return err
		}
		cross := gradual
		if !gradual {
			if cross, err = acrossNodes(a); err != nil {
				return err
			}
		}
		h.State, h.DecidedAt = store.HandoverDeclined, now
		kind, ev, step := ledger.KindHandoverWithdrawn, EventDeclined, "declined"
		if accept {
			// The ledger has no kind of its own for acceptance: it is
			// the proposal made bilateral, recorded as such.
			h.State, kind, ev, step = store.HandoverAccepted, ledger.KindHandoverProposed, EventAccepted, "accepted"
		} else {
			h.ClosedAt = now
		}
		if err := st.Tx.Handovers().Update(ctx, h); err != nil {
			return err
		}
		idx, err := st.Record(ctx, ledger.Entry{Kind: kind, Actor: p.PartyID, Agreement: h.AgreementID, Subject: h.ID, Time: now,
			Parties: []string{h.Proposer, h.Counterpart}, Attrs: map[string]string{"step": step}})
		if err != nil {
			return err
		}
		if !accept {
			if err := request.HandoverFailed(ctx, st, h, request.CauseDeclined, p.PartyID); err != nil {
				return err
			}
		}
		out = Result{h, idx}
		if cross {
			return s.relayDecision(ctx, st, h, accept, gradual)
		}
		return st.Notify(ctx, h.Proposer, ev, h.ID, map[string]any{"agreement": h.AgreementID, "by": p.PartyID})
	})
	return out, err
}

// DepositInput is one side's deposit.
type DepositInput struct {
	Sealed  bool
	Content []byte
	// SHA256 is the depositor's statement of the content's hash (hex):
	// required for sealed deposits, checked when given for plain ones.
	SHA256 string
	// AgreementID, when set, must be the case's agreement: a client
	// naming the wrong one is refused rather than served.
	AgreementID string
	// Manifest, when set, is the depositor's signed agreement.Manifest
	// (JSON) of the deposit: checked (see checkManifest) and kept with it,
	// so that the recipient can hold the depositor to it.
	Manifest []byte
}

// DepositResult reports a deposit and whether it released the case.
type DepositResult struct {
	Handover    store.Handover
	LedgerIndex int64 // of the deposit's handover.deposit_committed entry
	Released    bool
	SHA256      string
	Objects     int
}

// Deposit stores the caller's deposit in an accepted case. When the other
// side has deposited already, both are released in the same transaction.
func (s *Service) Deposit(ctx context.Context, p party.Principal, id string, in DepositInput) (DepositResult, error) {
	if len(in.Content) == 0 {
		return DepositResult{}, fault.Errorf("%w: the deposit is empty", ErrInvalid)
	}
	if len(in.Content) > MaxDeposit {
		return DepositResult{}, fault.Errorf("%w: the deposit is %d bytes, more than %d", ErrInvalid, len(in.Content), MaxDeposit)
	}
	sum := sha256.Sum256(in.Content)
	if in.SHA256 != "" || in.Sealed {
		stated, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(in.SHA256), "sha256:"))
		if err != nil || len(stated) != sha256.Size {
			return DepositResult{}, fault.Errorf("%w: state the deposit's SHA-256 as 64 hex digits (got %q)", ErrInvalid, in.SHA256)
		}
		if !bytes.Equal(stated, sum[:]) {
			return DepositResult{}, fault.Errorf("%w: stated %x, received %d bytes hashing to %x", ErrHashMismatch, stated, len(in.Content), sum)
		}
	}
	var bundle Bundle
	if in.Sealed {
		if err := CheckAgeFile(in.Content); err != nil {
			return DepositResult{}, err
		}
	} else {
		var err error
		if bundle, err = ParseBundle(in.Content); err != nil {
			return DepositResult{}, err
		}
	}
	crashPoint(CrashDepositBeforeTx)
	var out DepositResult
	err := s.onCase(ctx, p, id, func(st *exchange.Step, h store.Handover) error {
		a, now, tx := st.Agreement, st.Now, st.Tx
		switch {
		case in.AgreementID != "" && in.AgreementID != h.AgreementID:
			return fault.Errorf("%w: handover %s is under agreement %s, not %s", ErrInvalid, id, h.AgreementID, in.AgreementID)
		case h.State == store.HandoverProposed:
			return fault.Errorf("%w: handover %s has not been accepted by %s yet", ErrConflict, id, h.Counterpart)
		case h.State != store.HandoverAccepted:
			return closedErr(h)
		case !now.Before(h.Deadline):
			return fault.Errorf("%w: handover %s expired at %s", ErrDeadlinePassed, id, h.Deadline.Format(time.RFC3339))
		case !a.Status.InForce(now):
			return fault.Errorf("%w: agreement %s is %s, not in force", ErrForbidden, h.AgreementID, a.Status.Phase)
		}
		if _, gradual, err := gradualOf(ctx, tx, id); err != nil {
			return err
		} else if gradual {
			return fault.Errorf("%w: handover %s is released gradually; deposit its chunks (parley handover deposit --sealed splits the bundle)", ErrNotGradual, id)
		}
		cross, err := acrossNodes(a)
		if err != nil {
			return err
		}
		if cross && !in.Sealed {
			return fault.Errorf("%w (deposit with --sealed)", ErrSealedOnly)
		}
		if !in.Sealed {
			var out []string
			for _, o := range bundle.Objects {
				if err := agreement.CheckScope(a.Status.Document.Scope, o.Type, o.AllMarkings()); err != nil {
					out = append(out, o.ID+": "+scopeDetail(err))
				}
			}
			if len(out) > 0 {
				if len(out) > 10 {
					out = append(out[:10], fmt.Sprintf("and %d more", len(out)-10))
				}
				return fault.Errorf("%w: the bundle is outside the agreement's scope: %s", agreement.ErrOutOfScope, strings.Join(out, "; "))
			}
		}
		if in.Manifest != nil {
			var plain []byte
			if !in.Sealed {
				plain = in.Content
			}
			if err := checkManifest(ctx, tx, in.Manifest, id, p.PartyID, sum, plain); err != nil {
				return err
			}
		}
		if _, err := tx.Handovers().DepositPart(ctx, id, p.PartyID, 0, 0); err == nil {
			return fault.Errorf("%w: you have already deposited in handover %s; withdraw it first to replace it", ErrConflict, id)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		role := "bundle"
		if in.Sealed {
			role = "ciphertext"
		}
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverDepositCommitted, Actor: p.PartyID, Agreement: h.AgreementID,
			Subject: h.ID, Time: now, Parties: []string{h.Proposer, h.Counterpart},
			Attrs:   map[string]string{"sealed": fmt.Sprint(in.Sealed), "objects": fmt.Sprint(len(bundle.Objects)), "bytes": fmt.Sprint(len(in.Content))},
			Digests: map[string]string{role: digest(sum)}})
		if err != nil {
			return err
		}
		d := store.Deposit{HandoverID: id, PartyID: p.PartyID, Sealed: in.Sealed, Content: in.Content, SHA256: sum,
			Objects: len(bundle.Objects), DepositedAt: now, LedgerIndex: idx, Manifest: in.Manifest}
		if err := tx.Handovers().PutDeposit(ctx, d); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fault.Errorf("%w: you have already deposited in handover %s", ErrConflict, id)
			}
			return err
		}
		crashPoint(CrashDepositMidTx)
		counterpart := other(h, p.PartyID)
		ev := map[string]any{"agreement": h.AgreementID, "by": p.PartyID, "sealed": in.Sealed, "deadline": h.Deadline}
		if in.Sealed {
			// A plain deposit's hash would let the counterpart test guesses
			// of content it may not read before release (issue 12, finding 2).
			ev["sha256"] = hex.EncodeToString(sum[:])
		}
		if err := st.Notify(ctx, counterpart, EventDeposited, h.ID, ev); err != nil {
			return err
		}
		out = DepositResult{Handover: h, LedgerIndex: idx, SHA256: hex.EncodeToString(sum[:]), Objects: len(bundle.Objects)}
		if cross {
			// Only the escrow node holds both deposits; it decides the
			// release and tells this node (ReceiveVerdict). It is sent the
			// first part and asks this node for the rest (DepositPart).
			return enqueue(ctx, st, a.Status.Document.EscrowNode, h.AgreementID, p.PartyID, OutboxDeposit,
				DepositMessage{Handover: h.ID, Party: p.PartyID, SHA256: out.SHA256, Size: int64(len(in.Content)),
					Content: in.Content[:min(len(in.Content), PartAcrossNodes)]})
		}
		theirs, err := tx.Handovers().Deposit(ctx, id, counterpart)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := s.release(ctx, st, h, map[string]store.Deposit{p.PartyID: d, counterpart: theirs}, map[string]Bundle{p.PartyID: bundle})
		if err != nil {
			return err
		}
		out.Handover, out.Released = rel, true
		crashPoint(CrashDepositBeforeCommit)
		return nil
	})
	if err != nil {
		return DepositResult{}, err
	}
	crashPoint(CrashDepositAfterCommit)
	return out, nil
}

// release hands both deposits over inside the transaction of the second
// deposit: plain objects into each recipient's handover collection, the
// ledger entry, the case's state and both parties' events.
// parsed holds bundles already parsed in this request, so they are not
// validated twice.
func (s *Service) release(ctx context.Context, st *exchange.Step, h store.Handover, deps map[string]store.Deposit, parsed map[string]Bundle) (store.Handover, error) {
	attrs := map[string]string{}
	digests := map[string]string{}
	for i, depositor := range []string{h.Proposer, h.Counterpart} {
		d := deps[depositor]
		recipient := other(h, depositor)
		role := "proposer"
		if depositor == h.Counterpart {
			role = "counterpart"
		}
		digests[role] = digest(d.SHA256)
		attrs[role+"_sealed"] = fmt.Sprint(d.Sealed)
		if !d.Sealed {
			b, ok := parsed[depositor]
			if !ok {
				var err error
				if b, err = ParseBundle(d.Content); err != nil {
					return store.Handover{}, fault.Errorf("stored deposit of %s in %s: %w", depositor, h.ID, err)
				}
			}
			// Both sides now hold this content: exchange stores it for the
			// recipient and sees that neither earns feed credit for it again.
			coll, err := s.ex.DeliverHandover(ctx, st.Tx, h.AgreementID, recipient, b.Objects, st.Now)
			if err != nil {
				return store.Handover{}, err
			}
			attrs[role+"_collection"] = coll
		}
		if i == 0 {
			crashPoint(CrashReleaseMidTx)
		}
	}
	idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverReleased, Agreement: h.AgreementID, Subject: h.ID, Time: st.Now,
		Parties: []string{h.Proposer, h.Counterpart}, Attrs: attrs, Digests: digests})
	if err != nil {
		return store.Handover{}, err
	}
	h.State, h.ClosedAt, h.ReleaseLedgerIndex = store.HandoverReleased, st.Now, idx
	if err := st.Tx.Handovers().Update(ctx, h); err != nil {
		return store.Handover{}, err
	}
	// A request this case answers is fulfilled now, not when it was named.
	if err := request.HandoverReleased(ctx, st, h); err != nil {
		return store.Handover{}, err
	}
	for _, pid := range []string{h.Proposer, h.Counterpart} {
		if err := st.Notify(ctx, pid, EventReleased, h.ID, map[string]any{"agreement": h.AgreementID, "ledger_index": idx,
			"sealed": deps[other(h, pid)].Sealed, "collection": attrs[roleOf(h, other(h, pid))+"_collection"]}); err != nil {
			return store.Handover{}, err
		}
	}
	return h, nil
}

func roleOf(h store.Handover, partyID string) string {
	if partyID == h.Proposer {
		return "proposer"
	}
	return "counterpart"
}

// Withdraw destroys the caller's deposit while the other side has not
// deposited (after that the case is released and nothing can be taken back).
func (s *Service) Withdraw(ctx context.Context, p party.Principal, id string) (Result, error) {
	var out Result
	err := s.onCase(ctx, p, id, func(st *exchange.Step, h store.Handover) error {
		if h.State != store.HandoverAccepted {
			return closedErr(h)
		}
		if st.Agreement.Status.Document.CrossNode() {
			return fault.Errorf("%w: a deposit forwarded to the escrow node cannot be taken back; the escrow node releases both or, at the deadline, destroys both", exchange.ErrNotAcrossNodes)
		}
		ok, err := st.Tx.Handovers().DeleteDeposit(ctx, id, p.PartyID)
		if err != nil {
			return err
		}
		if !ok {
			return fault.Errorf("%w: you have no deposit in handover %s", ErrConflict, id)
		}
		crashPoint(CrashWithdrawMidTx)
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverWithdrawn, Actor: p.PartyID, Agreement: h.AgreementID, Subject: h.ID,
			Time: st.Now, Parties: []string{h.Proposer, h.Counterpart}, Attrs: map[string]string{"step": "deposit_withdrawn"}})
		if err != nil {
			return err
		}
		if err := request.HandoverFailed(ctx, st, h, request.CauseWithdrawn, p.PartyID); err != nil {
			return err
		}
		out = Result{h, idx}
		return st.Notify(ctx, other(h, p.PartyID), EventWithdrawn, h.ID, map[string]any{"agreement": h.AgreementID, "by": p.PartyID})
	})
	return out, err
}

// DepositView describes one side's deposit, without its content.
type DepositView struct {
	Party       string    `json:"party"`
	Sealed      bool      `json:"sealed"`
	SHA256      string    `json:"sha256"`
	Objects     int       `json:"objects"`
	Bytes       int       `json:"-"`
	DepositedAt time.Time `json:"deposited_at"`
	LedgerIndex int64     `json:"ledger_index"`
	Dispute     string    `json:"dispute,omitempty"`
	// Manifest is the depositor's signed manifest; DisputeStatement the
	// recipient's signed dispute. Both sides see both.
	Manifest         json.RawMessage `json:"manifest,omitempty"`
	DisputeStatement json.RawMessage `json:"dispute_statement,omitempty"`
}

// View is a case with its deposits as its sides see them.
type View struct {
	store.Handover
	Deposits []DepositView
	// Gradual is the progress of a case released gradually; nil for one
	// released in one step.
	Gradual *GradualView
}

// Show returns a case the caller is a side of.
func (s *Service) Show(ctx context.Context, p party.Principal, id string) (View, error) {
	h, err := s.st.Handovers().Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && h.Proposer != p.PartyID && h.Counterpart != p.PartyID) {
		return View{}, fault.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return View{}, err
	}
	ds, err := s.st.Handovers().Deposits(ctx, id)
	if err != nil {
		return View{}, err
	}
	v := View{Handover: h, Deposits: []DepositView{}}
	if v.Gradual, err = s.gradualView(ctx, h); err != nil {
		return View{}, err
	}
	for _, d := range ds {
		dv := DepositView{Party: d.PartyID, Sealed: d.Sealed, SHA256: hex.EncodeToString(d.SHA256[:]),
			Objects: d.Objects, DepositedAt: d.DepositedAt, LedgerIndex: d.LedgerIndex, Dispute: d.Dispute,
			Manifest: rawOrNil(d.Manifest), DisputeStatement: rawOrNil(d.DisputeStatement)}
		if d.PartyID != p.PartyID && h.State != store.HandoverReleased {
			if !d.Sealed {
				dv.SHA256 = "" // a plain deposit's hash is a test for guesses of its content (issue 12, finding 2)
			}
			// The manifest (bytes hash, types, counts, fingerprint
			// digest) is for checking what was opened, and would tell
			// the other side about the content before it commits.
			dv.Manifest = nil
		}
		v.Deposits = append(v.Deposits, dv)
	}
	return v, nil
}

// List returns the caller's cases, newest first (agreementID optional).
// The handovers that escrow the round-2 messages of private matching
// sessions are left out: they are the matching protocol's own plumbing,
// shown with their session (match list), not cases either side proposed.
func (s *Service) List(ctx context.Context, p party.Principal, agreementID string) ([]store.Handover, error) {
	hs, err := s.st.Handovers().ListByParty(ctx, p.PartyID, agreementID)
	if err != nil {
		return nil, err
	}
	ms, err := s.st.Matches().ListByParty(ctx, p.PartyID, agreementID)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return hs, nil
	}
	session := make(map[string]bool, len(ms))
	for _, m := range ms {
		session[m.HandoverID] = true
	}
	out := hs[:0]
	for _, h := range hs {
		if !session[h.ID] {
			out = append(out, h)
		}
	}
	return out, nil
}

// sideOf returns handover id as p, a side of it, sees it (ErrNotFound
// otherwise) and the depositor named (the other side when ""), which must
// be one of its sides (ErrInvalid). Fetch and ChunkOf read this way.
func (s *Service) sideOf(ctx context.Context, p party.Principal, id, depositor string) (store.Handover, string, error) {
	h, err := s.st.Handovers().Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && h.Proposer != p.PartyID && h.Counterpart != p.PartyID) {
		return store.Handover{}, "", fault.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return store.Handover{}, "", err
	}
	if depositor == "" {
		depositor = other(h, p.PartyID)
	}
	if depositor != h.Proposer && depositor != h.Counterpart {
		return store.Handover{}, "", fault.Errorf("%w: %s is not a side of handover %s", ErrInvalid, depositor, id)
	}
	return h, depositor, nil
}

// Fetch returns a deposit's content: the caller's own while it is held, the
// other side's only once the case is released.
func (s *Service) Fetch(ctx context.Context, p party.Principal, id, depositor string) (store.Deposit, error) {
	h, depositor, err := s.sideOf(ctx, p, id, depositor)
	if err != nil {
		return store.Deposit{}, err
	}
	if depositor != p.PartyID && h.State != store.HandoverReleased {
		return store.Deposit{}, fault.Errorf("%w: handover %s is %s; the other side's deposit is yours only once it is released", ErrConflict, id, h.State)
	}
	d, err := s.st.Handovers().Deposit(ctx, id, depositor)
	if errors.Is(err, store.ErrNotFound) {
		return store.Deposit{}, fault.Errorf("%w: no deposit of %s in %s", ErrNotFound, depositor, id)
	}
	return d, err
}

// Dispute records the caller's complaint about what the other side handed
// over (for example a sealed bundle that does not decrypt, is invalid, or
// is not what was promised).
//
// statement, when not nil, is the caller's signed agreement.Dispute of the
// same text; it is checked against the caller's current key and kept, so
// the dispute is as provable as the manifest it contests.
func (s *Service) Dispute(ctx context.Context, p party.Principal, id, text string, statement []byte) (Result, error) {
	if err := checkText("the dispute", text, true); err != nil {
		return Result{}, err
	}
	var out Result
	err := s.onCase(ctx, p, id, func(st *exchange.Step, h store.Handover) error {
		if h.State != store.HandoverReleased {
			return fault.Errorf("%w: handover %s is %s; only a released handover can be disputed", ErrConflict, id, h.State)
		}
		now, tx := st.Now, st.Tx
		depositor := other(h, p.PartyID)
		if statement != nil {
			if err := checkDispute(ctx, tx, statement, id, p.PartyID, depositor, text, now); err != nil {
				return err
			}
		}
		if err := tx.Handovers().SetDispute(ctx, id, depositor, text, statement, now); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fault.Errorf("%w: you already disputed handover %s", ErrConflict, id)
			}
			return err
		}
		tsum := sha256.Sum256([]byte(text))
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverDisputed, Actor: p.PartyID, Agreement: h.AgreementID, Subject: h.ID,
			Time: now, Parties: []string{h.Proposer, h.Counterpart}, Attrs: map[string]string{"depositor": depositor},
			Digests: map[string]string{"dispute": digest(tsum)}})
		if err != nil {
			return err
		}
		out = Result{h, idx}
		return st.Notify(ctx, depositor, EventDisputed, h.ID, map[string]any{"agreement": h.AgreementID, "by": p.PartyID, "text": text})
	})
	return out, err
}

func rawOrNil(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// scopeDetail is what agreement.CheckScope said is out of scope, without
// the sentinel's words, which the refusal names once.
func scopeDetail(err error) string {
	if d, ok := fault.Detail(err); ok {
		return string(d)
	}
	return "out of the agreement's scope"
}
