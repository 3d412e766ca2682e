// Package request owns the request workflow: a party asks the other, under
// an agreement in force, for intelligence on a subject; the other
// acknowledges within the agreement's acknowledgement deadline and answers
// within its fulfilment deadline, fulfilling through a handover that
// references the request or refusing with a coded ground. A sweeper (Run)
// flags overdue requests in the ledger and warns of near deadlines.
//
// # Fulfilment means delivery
//
// A request is fulfilled only when the handover answering it is released:
// naming a handover that is still proposed or accepted leaves the request
// open with its answer pending (HandoverID set, deadlines still running);
// package escrow calls HandoverReleased in the release's transaction, and
// HandoverFailed when the handover is declined, expires, or the responder
// withdraws its deposit, which reopens the request. Each step has its
// ledger entry.
//
// It must never import the HTTP layer or touch SQL; storage goes through
// package store, and every state change commits with its ledger entry and
// events in one transaction under the agreement's lock.
package request

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Sentinel errors.
var (
	// ErrNotFound: no such request, or one the caller is not a side of.
	ErrNotFound = fault.New(fault.NotFound, "no such request")
	// ErrInvalid: the input is unacceptable (no subject, unknown ground,
	// "other" without text, a handover of another agreement).
	ErrInvalid = fault.New(fault.Invalid, "invalid")
	// ErrForbidden: the caller may see the request but not take this step
	// (the requester acknowledging its own request, an agreement not in force).
	ErrForbidden = fault.New(fault.Forbidden, "not permitted")
	// ErrConflict: the request's state does not allow the step (answering
	// twice).
	ErrConflict = fault.New(fault.Conflict, "not possible now")
)

// Refusal grounds, as in mutual legal assistance practice.
const (
	GroundOutsideScope            = "outside_scope"
	GroundInsufficientInformation = "insufficient_information"
	GroundNoDataHeld              = "no_data_held"
	GroundOngoingInvestigation    = "ongoing_investigation"
	GroundPoliticalOffence        = "political_offence"
	GroundNationalSecurity        = "national_security"
	GroundOther                   = "other" // needs text
)

// Grounds lists every refusal ground.
var Grounds = []string{GroundOutsideScope, GroundInsufficientInformation, GroundNoDataHeld, GroundOngoingInvestigation,
	GroundPoliticalOffence, GroundNationalSecurity, GroundOther}

// Urgencies lists the accepted urgencies; "normal" is the default.
var Urgencies = []string{"low", "normal", "high", "critical"}

// Event kinds.
const (
	EventFiled        = "request.filed"
	EventAcknowledged = "request.acknowledged"
	EventFulfilled    = "request.fulfilled"
	EventRefused      = "request.refused"
	EventOverdue      = "request.overdue"
	EventPending      = "request.answer_pending" // the responder named a handover not yet released
	EventReopened     = "request.reopened"       // that handover was declined, expired or withdrawn
	EventDeadlineNear = "request.deadline_near"
	// EventUndelivered: the responder's node refused the filing for good;
	// the request is closed on the requester's node (relay.go).
	EventUndelivered = "request.undelivered"
)

// Limits on filed text.
const (
	MaxText   = 4096
	MaxRefs   = 100
	MaxRefLen = 256
)

// Service runs the request workflow on a store. Its steps run through the
// agreement workflow (exchange.Workflow), whose settings it carries:
// SweepInterval and NearWindow (a "deadline near" event goes to the
// responder once a deadline is this close) for the sweeper, Log, SetClock.
type Service struct {
	*exchange.Workflow
	st store.Store
	ex *exchange.Service
}

// New returns a Service over st; ex reads agreements.
func New(st store.Store, ex *exchange.Service) *Service {
	w := exchange.NewWorkflow(st, ex, ErrNotFound)
	// Requests work under an agreement between two nodes: each node relays
	// its own party's steps to the other (relay.go).
	w.AcrossNodes = true
	return &Service{Workflow: w, st: st, ex: ex}
}

// FileInput is a new request.
type FileInput struct {
	AgreementID string   `json:"agreement"`
	Subject     string   `json:"subject"`
	Refs        []string `json:"refs,omitempty"`
	Reason      string   `json:"reason"`
	Urgency     string   `json:"urgency,omitempty"`
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

// Normalize validates untrusted input and returns it in canonical form:
// trimmed texts, default urgency, refs trimmed and de-duplicated in order.
// Normalize(Normalize(x)) == Normalize(x).
func Normalize(in FileInput) (FileInput, error) {
	in.Subject, in.Reason, in.Urgency = strings.TrimSpace(in.Subject), strings.TrimSpace(in.Reason), strings.TrimSpace(in.Urgency)
	if err := checkText("the subject", in.Subject, true); err != nil {
		return FileInput{}, err
	}
	if err := checkText("the reason", in.Reason, true); err != nil {
		return FileInput{}, err
	}
	if in.Urgency == "" {
		in.Urgency = "normal"
	}
	ok := false
	for _, u := range Urgencies {
		ok = ok || u == in.Urgency
	}
	if !ok {
		return FileInput{}, fault.Errorf("%w: urgency %q; use one of %s", ErrInvalid, in.Urgency, strings.Join(Urgencies, ", "))
	}
	if len(in.Refs) > MaxRefs {
		return FileInput{}, fault.Errorf("%w: %d references, more than %d", ErrInvalid, len(in.Refs), MaxRefs)
	}
	seen := map[string]bool{}
	refs := []string{}
	for i, r := range in.Refs {
		r = strings.TrimSpace(r)
		switch {
		case r == "":
			return FileInput{}, fault.Errorf("%w: refs[%d] is empty", ErrInvalid, i)
		case len(r) > MaxRefLen:
			return FileInput{}, fault.Errorf("%w: refs[%d] is longer than %d bytes", ErrInvalid, i, MaxRefLen)
		case !utf8.ValidString(r) || strings.IndexFunc(r, unicode.IsControl) >= 0:
			return FileInput{}, fault.Errorf("%w: refs[%d] holds invalid UTF-8 or control characters", ErrInvalid, i)
		}
		if !seen[r] {
			seen[r] = true
			refs = append(refs, r)
		}
	}
	in.Refs = refs
	return in, nil
}

// Result is a request after a step, with the ledger index of the step.
type Result struct {
	Request     store.Request
	LedgerIndex int64
}

// File records a new request to the other side of an agreement in force.
func (s *Service) File(ctx context.Context, p party.Principal, in FileInput) (Result, error) {
	in, err := Normalize(in)
	if err != nil {
		return Result{}, err
	}
	var out Result
	err = s.InAgreement(ctx, p, in.AgreementID, func(st *exchange.Step) error {
		a, now := st.Agreement, st.Now
		if !a.Status.InForce(now) {
			return fault.Errorf("%w: agreement %s is %s, not in force", ErrForbidden, in.AgreementID, a.Status.Phase)
		}
		d := a.Status.Document.RequestDeadlines
		r := store.Request{ID: party.NewID("request"), AgreementID: in.AgreementID, Requester: p.PartyID, Responder: a.Counterpart(p.PartyID),
			Subject: in.Subject, Refs: in.Refs, Reason: in.Reason, Urgency: in.Urgency, State: store.RequestFiled,
			FiledAt: now, AckBy: now.Add(d.Acknowledge), FulfilBy: now.Add(d.Fulfil)}
		if err := st.Tx.Requests().Create(ctx, r); err != nil {
			return err
		}
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindRequestFiled, Actor: p.PartyID, Agreement: r.AgreementID,
			Subject: r.ID, Time: now, Parties: []string{r.Requester, r.Responder},
			Attrs: map[string]string{"urgency": r.Urgency, "ack_by": r.AckBy.Format(time.RFC3339Nano), "fulfil_by": r.FulfilBy.Format(time.RFC3339Nano)}})
		if err != nil {
			return err
		}
		out = Result{r, idx}
		if err := s.relay(ctx, st.Tx, r, RelayFile, p.PartyID, now); err != nil {
			return err
		}
		return st.Notify(ctx, r.Responder, EventFiled, r.ID, map[string]any{"agreement": r.AgreementID, "from": p.PartyID,
			"subject": r.Subject, "urgency": r.Urgency, "ack_by": r.AckBy, "fulfil_by": r.FulfilBy})
	})
	return out, err
}

// change is one step of the responder on request r at time now: it
// modifies r and returns the step's ledger entry, event kind and data.
type change func(e store.Handle, r *store.Request, now time.Time) (ledger.Entry, string, map[string]any, error)

// step loads a request the caller is a side of under its agreement's lock,
// lets change modify it, and stores it with its ledger entry and event;
// under an agreement between two nodes it relays the step (action) to the
// requester's node in the same transaction.
func (s *Service) step(ctx context.Context, p party.Principal, id, action string, change change) (Result, error) {
	var out Result
	err := s.OnCase(ctx, p, func(tx store.Handle) (string, error) {
		r, err := tx.Requests().Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && r.Requester != p.PartyID && r.Responder != p.PartyID) {
			return "", fault.Errorf("%w: %s", ErrNotFound, id)
		}
		return r.AgreementID, err
	}, func(st *exchange.Step) error {
		r, err := st.Tx.Requests().Get(ctx, id)
		if err != nil {
			return err
		}
		if r.Responder != p.PartyID {
			return fault.Errorf("%w: only %s, to whom request %s is addressed, may answer it", ErrForbidden, r.Responder, id)
		}
		en, ev, data, err := change(st.Tx, &r, st.Now)
		if err != nil {
			return err
		}
		if err := st.Tx.Requests().Update(ctx, r); err != nil {
			return err
		}
		en.Actor, en.Agreement, en.Subject, en.Time, en.Parties = p.PartyID, r.AgreementID, r.ID, st.Now, []string{r.Requester, r.Responder}
		idx, err := st.Record(ctx, en)
		if err != nil {
			return err
		}
		out = Result{r, idx}
		if err := s.relay(ctx, st.Tx, r, action, p.PartyID, st.Now); err != nil {
			return err
		}
		data["agreement"] = r.AgreementID
		return st.Notify(ctx, r.Requester, ev, r.ID, data)
	})
	return out, err
}

func answered(r *store.Request) error {
	if !store.RequestOpen(r.State) {
		return fault.Errorf("%w: request %s is already %s", ErrConflict, r.ID, r.State)
	}
	return nil
}

// Acknowledge records that the responder has received the request.
func (s *Service) Acknowledge(ctx context.Context, p party.Principal, id string) (Result, error) {
	return s.step(ctx, p, id, RelayAcknowledge, acknowledge)
}

// acknowledge is the responder's acknowledgement.
func acknowledge(e store.Handle, r *store.Request, now time.Time) (ledger.Entry, string, map[string]any, error) {
	if err := answered(r); err != nil {
		return ledger.Entry{}, "", nil, err
	}
	if r.State == store.RequestAcknowledged {
		return ledger.Entry{}, "", nil, fault.Errorf("%w: request %s is already acknowledged", ErrConflict, r.ID)
	}
	r.State, r.AcknowledgedAt = store.RequestAcknowledged, now
	inTime := !now.After(r.AckBy)
	return ledger.Entry{Kind: ledger.KindRequestAcknowledged, Attrs: map[string]string{"in_time": fmt.Sprint(inTime)}},
		EventAcknowledged, map[string]any{"in_time": inTime, "fulfil_by": r.FulfilBy}, nil
}

// Fulfil names handover handoverID, which references the request and is
// under the same agreement, as the answer. If it is released already the
// request is fulfilled now; while it is proposed or accepted the request
// stays open with its answer pending, and is fulfilled when the handover is
// released (HandoverReleased) or reopened if it fails (HandoverFailed).
func (s *Service) Fulfil(ctx context.Context, p party.Principal, id, handoverID string) (Result, error) {
	return s.step(ctx, p, id, RelayFulfil, fulfil(ctx, handoverID))
}

// fulfil is the step naming handoverID as the answer.
func fulfil(ctx context.Context, handoverID string) change {
	return func(e store.Handle, r *store.Request, now time.Time) (ledger.Entry, string, map[string]any, error) {
		if err := answered(r); err != nil {
			return ledger.Entry{}, "", nil, err
		}
		h, err := e.Handovers().Get(ctx, handoverID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && h.AgreementID != r.AgreementID) {
			return ledger.Entry{}, "", nil, fault.Errorf("%w: handover %s is not a handover under agreement %s, the request's", ErrInvalid, handoverID, r.AgreementID)
		}
		if err != nil {
			return ledger.Entry{}, "", nil, err
		}
		switch {
		case h.RequestID != r.ID:
			return ledger.Entry{}, "", nil, fault.Errorf("%w: handover %s does not reference request %s; propose one with --request %s", ErrInvalid, h.ID, r.ID, r.ID)
		case h.State == store.HandoverDeclined || h.State == store.HandoverExpired:
			return ledger.Entry{}, "", nil, fault.Errorf("%w: handover %s is %s and cannot fulfil anything", ErrConflict, h.ID, h.State)
		case r.HandoverID == h.ID:
			return ledger.Entry{}, "", nil, fault.Errorf("%w: request %s is already answered by handover %s, pending its release", ErrConflict, r.ID, h.ID)
		case r.HandoverID != "":
			return ledger.Entry{}, "", nil, fault.Errorf("%w: request %s is already answered by handover %s, pending its release; it reopens if that handover is declined, expires or your deposit is withdrawn", ErrConflict, r.ID, r.HandoverID)
		}
		if h.State != store.HandoverReleased {
			r.HandoverID = h.ID
			return ledger.Entry{Kind: ledger.KindRequestAnswerPending, Attrs: map[string]string{"handover": h.ID}},
				EventPending, map[string]any{"handover": h.ID, "handover_state": h.State}, nil
		}
		r.State, r.AnsweredAt, r.HandoverID = store.RequestFulfilled, now, h.ID
		inTime := !now.After(r.FulfilBy)
		return ledger.Entry{Kind: ledger.KindRequestFulfilled, Attrs: map[string]string{"handover": h.ID, "in_time": fmt.Sprint(inTime)}},
			EventFulfilled, map[string]any{"handover": h.ID, "in_time": inTime}, nil
	}
}

// Pending reports whether r is open with an answering handover named but
// not yet released.
func Pending(r store.Request) bool {
	return r.HandoverID != "" && store.RequestOpen(r.State)
}

// pendingOn returns the request h answers if it is pending on h; ok is false
// otherwise. It must run inside the transaction that changes h, with the
// agreement's lock held (escrow holds it).
func pendingOn(ctx context.Context, tx store.Handle, h store.Handover) (store.Request, bool, error) {
	if h.RequestID == "" {
		return store.Request{}, false, nil
	}
	r, err := tx.Requests().Get(ctx, h.RequestID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Request{}, false, nil
	}
	if err != nil {
		return store.Request{}, false, err
	}
	return r, Pending(r) && r.HandoverID == h.ID, nil
}

// HandoverReleased fulfils the request pending on h, which has just been
// released in st: the request counts as answered at the step's time (in
// time if that is not after its fulfilment deadline), with its ledger
// entry and events. It does nothing when no request is pending on h.
func HandoverReleased(ctx context.Context, st *exchange.Step, h store.Handover) error {
	tx, now := st.Tx, st.Now
	r, ok, err := pendingOn(ctx, tx, h)
	if err != nil || !ok {
		return err
	}
	r.State, r.AnsweredAt = store.RequestFulfilled, now
	if err := tx.Requests().Update(ctx, r); err != nil {
		return err
	}
	inTime := !now.After(r.FulfilBy)
	if _, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindRequestFulfilled, Actor: r.Responder, Agreement: r.AgreementID,
		Subject: r.ID, Time: now, Parties: []string{r.Requester, r.Responder},
		Attrs: map[string]string{"handover": h.ID, "in_time": fmt.Sprint(inTime), "step": "released"}}); err != nil {
		return err
	}
	for _, pid := range []string{r.Requester, r.Responder} {
		if err := st.Notify(ctx, pid, EventFulfilled, r.ID, map[string]any{"agreement": r.AgreementID, "handover": h.ID, "in_time": inTime}); err != nil {
			return err
		}
	}
	return nil
}

// Causes of HandoverFailed.
const (
	CauseDeclined  = "declined"
	CauseExpired   = "expired"
	CauseWithdrawn = "withdrawn"
)

// HandoverFailed reopens the request pending on h after h was declined or
// expired, or the responder withdrew its deposit (cause): the request is
// open again with no answer, its deadlines as they were, with a ledger
// entry and both sides told. A withdrawal by the requester leaves the
// answer pending (the responder's deposit is still there). It does nothing
// when no request is pending on h.
func HandoverFailed(ctx context.Context, st *exchange.Step, h store.Handover, cause, by string) error {
	tx, now := st.Tx, st.Now
	r, ok, err := pendingOn(ctx, tx, h)
	if err != nil || !ok || (cause == CauseWithdrawn && by != r.Responder) {
		return err
	}
	r.HandoverID = ""
	if err := tx.Requests().Update(ctx, r); err != nil {
		return err
	}
	if _, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindRequestReopened, Actor: by, Agreement: r.AgreementID,
		Subject: r.ID, Time: now, Parties: []string{r.Requester, r.Responder},
		Attrs: map[string]string{"handover": h.ID, "cause": cause}}); err != nil {
		return err
	}
	for _, pid := range []string{r.Requester, r.Responder} {
		if err := st.Notify(ctx, pid, EventReopened, r.ID, map[string]any{"agreement": r.AgreementID, "handover": h.ID,
			"cause": cause, "fulfil_by": r.FulfilBy}); err != nil {
			return err
		}
	}
	return nil
}

// Refuse answers the request with a coded ground; "other" needs text.
func (s *Service) Refuse(ctx context.Context, p party.Principal, id, ground, text string) (Result, error) {
	text, err := checkGround(ground, text)
	if err != nil {
		return Result{}, err
	}
	return s.step(ctx, p, id, RelayRefuse, refuse(ground, text))
}

// checkGround checks a refusal's ground and text and returns the text
// trimmed.
func checkGround(ground, text string) (string, error) {
	known := false
	for _, g := range Grounds {
		known = known || g == ground
	}
	text = strings.TrimSpace(text)
	switch {
	case ground == "":
		return "", fault.Errorf("%w: a refusal needs a ground: one of %s", ErrInvalid, strings.Join(Grounds, ", "))
	case !known:
		return "", fault.Errorf("%w: unknown ground %q; use one of %s", ErrInvalid, ground, strings.Join(Grounds, ", "))
	case ground == GroundOther && text == "":
		return "", fault.Errorf("%w: the ground \"other\" needs a text saying what it is", ErrInvalid)
	}
	return text, checkText("the refusal text", text, false)
}

// refuse is the step refusing on ground with text, both checked.
func refuse(ground, text string) change {
	return func(e store.Handle, r *store.Request, now time.Time) (ledger.Entry, string, map[string]any, error) {
		if err := answered(r); err != nil {
			return ledger.Entry{}, "", nil, err
		}
		// A refusal withdraws any pending answer: what is released later
		// no longer counts as fulfilling it.
		r.State, r.AnsweredAt, r.Ground, r.GroundText, r.HandoverID = store.RequestRefused, now, ground, text, ""
		inTime := !now.After(r.FulfilBy)
		return ledger.Entry{Kind: ledger.KindRequestRefused, Attrs: map[string]string{"ground": ground, "in_time": fmt.Sprint(inTime)}},
			EventRefused, map[string]any{"ground": ground, "text": text, "in_time": inTime}, nil
	}
}

// Get returns a request the caller is a side of.
func (s *Service) Get(ctx context.Context, p party.Principal, id string) (store.Request, error) {
	r, err := s.st.Requests().Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.Requester != p.PartyID && r.Responder != p.PartyID) {
		return store.Request{}, fault.Errorf("%w: %s", ErrNotFound, id)
	}
	return r, err
}

// List returns the caller's requests (made and received), newest first.
func (s *Service) List(ctx context.Context, p party.Principal, agreementID string) ([]store.Request, error) {
	return s.st.Requests().ListByParty(ctx, p.PartyID, agreementID)
}

// SideStats counts one side's requests under an agreement.
type SideStats struct {
	Party          string `json:"party"`
	Made           int    `json:"made"`
	AnsweredInTime int    `json:"answered_in_time"` // of those addressed to this side
	Received       int    `json:"received"`         // delivered to this side (undelivered ones are counted in Made only)
	Fulfilled      int    `json:"fulfilled"`        // by this side
	Refused        int    `json:"refused"`          // by this side
	Overdue        int    `json:"overdue"`          // of those addressed to this side, flagged at least once
	Open           int    `json:"open"`             // addressed to this side, unanswered
}

// Stats returns both sides' counts under an agreement the caller is in.
func (s *Service) Stats(ctx context.Context, p party.Principal, agreementID string) ([]SideStats, error) {
	a, err := s.ex.Agreement(ctx, p, agreementID)
	if errors.Is(err, exchange.ErrNotFound) {
		return nil, fault.Errorf("%w: agreement %s", ErrNotFound, agreementID)
	}
	if err != nil {
		return nil, err
	}
	rs, err := s.st.Requests().ListByAgreement(ctx, agreementID)
	if err != nil {
		return nil, err
	}
	return Count(rs, a.Record.PartyA, a.Record.PartyB), nil
}

// Count tallies requests per side.
func Count(rs []store.Request, sides ...string) []SideStats {
	out := make([]SideStats, len(sides))
	idx := map[string]int{}
	for i, sd := range sides {
		out[i].Party = sd
		idx[sd] = i
	}
	for _, r := range rs {
		if i, ok := idx[r.Requester]; ok {
			out[i].Made++
		}
		i, ok := idx[r.Responder]
		if !ok || r.State == store.RequestUndelivered {
			continue // never reached the responder: nothing of its to count
		}
		o := &out[i]
		o.Received++
		switch r.State {
		case store.RequestFulfilled:
			o.Fulfilled++
		case store.RequestRefused:
			o.Refused++
		default:
			o.Open++
		}
		if !r.AnsweredAt.IsZero() && !r.AnsweredAt.After(r.FulfilBy) {
			o.AnsweredInTime++
		}
		if r.AckOverdue || r.AnswerOverdue {
			o.Overdue++
		}
	}
	return out
}
