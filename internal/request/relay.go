package request

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

// Requests across nodes (issue 14, item 2; docs/federation.md).
//
// Under an agreement between two nodes each node holds the same request
// (same id) and records every step in its own ledger. A node speaks only
// for its own party: the requester's node relays the filing, the
// responder's node the acknowledgement and the answer (fulfil, refuse).
// Each step is written to the outbox in its own transaction and the node
// package delivers it, retrying; the receiver takes it through the same
// lifecycle as a local step (acknowledging twice, answering after a
// refusal are refused), at the time the acting node states (bounded by
// the receiver's clock), so that both nodes judge "in time" alike against
// deadlines both compute from the signed agreement. Overdue flags are not
// relayed: each node's sweeper sets them on its own ledger from the same
// deadlines. A handover's release or failure is not relayed either: each
// party's node learns it from the handover itself (HandoverReleased,
// HandoverFailed).

// OutboxKind is the kind of outbox entry carrying a Relayed step.
const OutboxKind = "request.step"

// Relayed step actions.
const (
	RelayFile        = "file"
	RelayAcknowledge = "acknowledge"
	RelayFulfil      = "fulfil"
	RelayRefuse      = "refuse"
)

// MaxSkew is how far in the future of the receiver's clock a relayed
// step's time may be.
const MaxSkew = 5 * time.Minute

// Sentinels of relayed steps, with the codes a peer is answered with.
var (
	// ErrNoSuchRequest: the peer relayed an answer to a request this node
	// does not hold.
	ErrNoSuchRequest = fault.Refine(fault.Tagged(fault.NotFound, "request", "no such request on this node"), nil, "no_such_request")
	// ErrNotItsStep: the peer's party is a side of the request but the
	// step is the other side's (a requester acknowledging, a responder
	// filing).
	ErrNotItsStep = fault.Refine(fault.Tagged(fault.Forbidden, "request", "the step is not the peer's party's to take"), nil, "not_its_step")
	// ErrStepRefused: the request's state does not allow the step (it is
	// acknowledged already, answered, or exists with other content).
	ErrStepRefused = fault.Refine(fault.Tagged(fault.Conflict, "request", "the request's state does not allow that step"), nil, "illegal_step")
	// ErrBadTime: the step's time is in the future of the receiver's
	// clock, or before the step it follows.
	ErrBadTime = fault.Refine(fault.Tagged(fault.Invalid, "request", "the step's time is not acceptable"), nil, "bad_time")
	// ErrDeadlineMismatch: the filing's deadlines are not those the
	// signed agreement gives on this node.
	ErrDeadlineMismatch = fault.Refine(fault.Tagged(fault.Invalid, "request", "the deadlines are not the agreement's"), nil, "deadline_mismatch")
	// ErrNotInForce: the agreement is not in force on this node.
	ErrNotInForce = fault.Refine(fault.Tagged(fault.Forbidden, "request", "the agreement is not in force on this node"), nil, "not_in_force")
	// ErrNoSuchHandover: the answer names a handover this node does not
	// hold. A handover the responder's node relays reaches this node
	// through the same ordered outbox before any answer naming it (and one
	// this node's party proposed is here already), so it is not coming:
	// refused for good rather than waited for, which would hold up every
	// later step from that peer.
	ErrNoSuchHandover = fault.Refine(fault.Tagged(fault.NotFound, "request", "the answering handover is not held on this node"), nil, "no_such_handover")
)

// Relayed is one request step on its way to the other party's node.
type Relayed struct {
	Action    string    `json:"action"`
	Request   string    `json:"request"`
	Agreement string    `json:"agreement"`
	Actor     string    `json:"actor"` // the party that took the step; it lives on the sending node
	At        time.Time `json:"at"`    // when, by the sending node's clock
	// A filing.
	Subject  string    `json:"subject,omitempty"`
	Refs     []string  `json:"refs,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Urgency  string    `json:"urgency,omitempty"`
	AckBy    time.Time `json:"ack_by,omitzero"`
	FulfilBy time.Time `json:"fulfil_by,omitzero"`
	// A fulfilment.
	Handover string `json:"handover,omitempty"`
	// A refusal.
	Ground string `json:"ground,omitempty"`
	Text   string `json:"text,omitempty"`
}

// Receipt says what became of a relayed step.
type Receipt struct {
	Request     string `json:"request"`
	State       string `json:"state"`
	Duplicate   bool   `json:"duplicate"` // recorded already: the peer may stop sending it
	LedgerIndex int64  `json:"ledger_index,omitempty"`
}

// relay writes the step action that actor took on r at time at to the
// outbox for the other side's node, in tx, when that side lives on a peer.
func (s *Service) relay(ctx context.Context, tx store.Handle, r store.Request, action, actor string, at time.Time) error {
	other := r.Responder
	if actor == r.Responder {
		other = r.Requester
	}
	if _, remote, err := s.ex.PeerOf(ctx, tx, other); err != nil || !remote {
		return err
	}
	m := Relayed{Action: action, Request: r.ID, Agreement: r.AgreementID, Actor: actor, At: at}
	switch action {
	case RelayFile:
		m.Subject, m.Refs, m.Reason, m.Urgency, m.AckBy, m.FulfilBy = r.Subject, r.Refs, r.Reason, r.Urgency, r.AckBy, r.FulfilBy
	case RelayFulfil:
		m.Handover = r.HandoverID
	case RelayRefuse:
		m.Ground, m.Text = r.Ground, r.GroundText
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return s.ex.Relay(ctx, tx, other, actor, r.AgreementID, OutboxKind, body)
}

// Receive takes a step peer relays for its own party: a filing by the
// requester, or the responder's acknowledgement, fulfilment or refusal.
// It is idempotent: a step recorded already answers Duplicate. Refusals:
// ErrInvalid (malformed), exchange.ErrNotPeersParty (the actor does not
// live on peer), exchange.ErrNotPartyHere (no such agreement here, or the
// actor is not in it), ErrNoSuchRequest, ErrNotItsStep, ErrStepRefused,
// ErrBadTime, ErrDeadlineMismatch, ErrNotInForce, ErrNoSuchHandover, and
// the checks a local step gets (ErrInvalid).
func (s *Service) Receive(ctx context.Context, peer store.Peer, m Relayed) (Receipt, error) {
	if m.Request == "" || m.Agreement == "" || m.Actor == "" || m.At.IsZero() {
		return Receipt{}, fault.Errorf("%w: a relayed request step needs action, request, agreement, actor and at", ErrInvalid)
	}
	if m.At.After(s.Now().Add(MaxSkew)) {
		return Receipt{}, fault.Errorf("%w: %s is in the future of this node's clock", ErrBadTime, m.At.Format(time.RFC3339))
	}
	m.At = m.At.UTC().Truncate(time.Microsecond)
	// A node speaks for its own party only, whatever else the step says.
	if err := s.ex.SpeaksFor(ctx, s.st, peer, m.Actor); err != nil {
		return Receipt{}, err
	}
	switch m.Action {
	case RelayFile:
		return s.receiveFiling(ctx, m)
	case RelayAcknowledge:
		return s.receiveAnswer(ctx, peer, m, acknowledge, func(r store.Request) bool {
			return r.State != store.RequestFiled && r.AcknowledgedAt.Equal(m.At)
		})
	case RelayFulfil:
		if !validID(m.Handover, "handover") {
			return Receipt{}, fault.Errorf("%w: a fulfilment names a handover (handover--<uuid>)", ErrInvalid)
		}
		return s.receiveAnswer(ctx, peer, m, fulfil(ctx, m.Handover), func(r store.Request) bool {
			return r.HandoverID == m.Handover && r.State != store.RequestRefused
		})
	case RelayRefuse:
		text, err := checkGround(m.Ground, m.Text)
		if err != nil {
			return Receipt{}, err
		}
		return s.receiveAnswer(ctx, peer, m, refuse(m.Ground, text), func(r store.Request) bool {
			return r.State == store.RequestRefused && r.AnsweredAt.Equal(m.At) && r.Ground == m.Ground
		})
	}
	return Receipt{}, fault.Errorf("%w: unknown request step %q", ErrInvalid, m.Action)
}

// validID reports whether id is kind--<36 characters>, as ids are made.
func validID(id, kind string) bool {
	return len(id) == len(kind)+2+36 && id[:len(kind)+2] == kind+"--"
}

// receiveFiling records a request the peer's party filed.
func (s *Service) receiveFiling(ctx context.Context, m Relayed) (Receipt, error) {
	if !validID(m.Request, "request") {
		return Receipt{}, fault.Errorf("%w: a request id is request--<uuid>", ErrInvalid)
	}
	in, err := Normalize(FileInput{AgreementID: m.Agreement, Subject: m.Subject, Refs: m.Refs, Reason: m.Reason, Urgency: m.Urgency})
	if err != nil {
		return Receipt{}, err
	}
	out := Receipt{Request: m.Request}
	err = s.InAgreement(ctx, party.Principal{PartyID: m.Actor}, m.Agreement, func(st *exchange.Step) error {
		a := st.Agreement
		responder := a.Counterpart(m.Actor)
		if _, remote, err := s.ex.PeerOf(ctx, st.Tx, responder); err != nil || remote {
			return cmp(err, fault.Errorf("%w: %s", exchange.ErrNotPartyHere, m.Agreement))
		}
		have, err := st.Tx.Requests().Get(ctx, m.Request)
		switch {
		case err == nil && have.AgreementID == m.Agreement && have.Requester == m.Actor && have.FiledAt.Equal(m.At) &&
			have.Subject == in.Subject && have.Reason == in.Reason && slices.Equal(have.Refs, in.Refs):
			out.Duplicate, out.State = true, have.State
			return nil
		case err == nil:
			return fault.Errorf("%w: request %s exists here with other content", ErrStepRefused, m.Request)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if !a.Status.InForce(st.Now) {
			return fault.Errorf("%w: agreement %s is %s here", ErrNotInForce, m.Agreement, a.Status.Phase)
		}
		d := a.Status.Document.RequestDeadlines
		r := store.Request{ID: m.Request, AgreementID: m.Agreement, Requester: m.Actor, Responder: responder,
			Subject: in.Subject, Refs: in.Refs, Reason: in.Reason, Urgency: in.Urgency, State: store.RequestFiled,
			FiledAt: m.At, AckBy: m.At.Add(d.Acknowledge), FulfilBy: m.At.Add(d.Fulfil)}
		// The deadlines are the signed agreement's, computed here: a node
		// that sends others (shorter, to put this node's party in the
		// wrong) is refused.
		if !r.AckBy.Equal(m.AckBy.UTC().Truncate(time.Microsecond)) || !r.FulfilBy.Equal(m.FulfilBy.UTC().Truncate(time.Microsecond)) {
			return fault.Errorf("%w: the agreement gives %s to acknowledge and %s to answer", ErrDeadlineMismatch, d.Acknowledge, d.Fulfil)
		}
		if err := st.Tx.Requests().Create(ctx, r); err != nil {
			return err
		}
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindRequestFiled, Actor: r.Requester, Agreement: r.AgreementID,
			Subject: r.ID, Time: st.Now, Parties: []string{r.Requester, r.Responder},
			Attrs: map[string]string{"urgency": r.Urgency, "ack_by": r.AckBy.Format(time.RFC3339Nano), "fulfil_by": r.FulfilBy.Format(time.RFC3339Nano),
				"at": r.FiledAt.Format(time.RFC3339Nano)}})
		if err != nil {
			return err
		}
		out.State, out.LedgerIndex = r.State, idx
		return st.Notify(ctx, r.Responder, EventFiled, r.ID, map[string]any{"agreement": r.AgreementID, "from": r.Requester,
			"subject": r.Subject, "urgency": r.Urgency, "ack_by": r.AckBy, "fulfil_by": r.FulfilBy, "received": st.Now})
	})
	if errors.Is(err, ErrNotFound) {
		return Receipt{}, fault.Errorf("%w: %s", exchange.ErrNotPartyHere, m.Agreement)
	}
	return out, err
}

// cmp returns err if it is not nil, else alt.
func cmp(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

// receiveAnswer applies the responder's step m (ch) to a request of this
// node's party; dup reports whether the request already shows exactly m.
func (s *Service) receiveAnswer(ctx context.Context, peer store.Peer, m Relayed, ch change, dup func(store.Request) bool) (Receipt, error) {
	out := Receipt{Request: m.Request}
	err := s.OnCase(ctx, party.Principal{PartyID: m.Actor}, func(tx store.Handle) (string, error) {
		r, err := tx.Requests().Get(ctx, m.Request)
		if errors.Is(err, store.ErrNotFound) || (err == nil && r.AgreementID != m.Agreement) {
			return "", fault.Errorf("%w: %s", ErrNoSuchRequest, m.Request)
		}
		if err == nil && r.Requester != m.Actor && r.Responder != m.Actor {
			return "", fault.Errorf("%w: %s", exchange.ErrNotPartyHere, m.Agreement)
		}
		return r.AgreementID, err
	}, func(st *exchange.Step) error {
		r, err := st.Tx.Requests().Get(ctx, m.Request)
		if err != nil {
			return err
		}
		if r.Responder != m.Actor {
			return fault.Errorf("%w: only %s, to whom request %s is addressed, answers it", ErrNotItsStep, r.Responder, r.ID)
		}
		if dup(r) {
			out.Duplicate, out.State = true, r.State
			return nil
		}
		if m.At.Before(r.FiledAt) || (m.Action != RelayAcknowledge && m.At.Before(r.AcknowledgedAt)) {
			return fault.Errorf("%w: %s is before the step it follows", ErrBadTime, m.At.Format(time.RFC3339Nano))
		}
		if m.Action == RelayFulfil && answered(&r) == nil {
			if _, err := st.Tx.Handovers().Get(ctx, m.Handover); errors.Is(err, store.ErrNotFound) {
				return fault.Errorf("%w: %s", ErrNoSuchHandover, m.Handover)
			} else if err != nil {
				return err
			}
		}
		en, ev, data, err := ch(st.Tx, &r, m.At)
		if errors.Is(err, ErrConflict) {
			return fault.Errorf("%w: %w", ErrStepRefused, err)
		}
		if err != nil {
			return err
		}
		if err := st.Tx.Requests().Update(ctx, r); err != nil {
			return err
		}
		en.Actor, en.Agreement, en.Subject, en.Time, en.Parties = m.Actor, r.AgreementID, r.ID, st.Now, []string{r.Requester, r.Responder}
		en.Attrs["at"] = m.At.Format(time.RFC3339Nano)
		idx, err := st.Record(ctx, en)
		if err != nil {
			return err
		}
		out.State, out.LedgerIndex = r.State, idx
		data["agreement"], data["received"] = r.AgreementID, st.Now
		return st.Notify(ctx, r.Requester, ev, r.ID, data)
	})
	if errors.Is(err, ErrNotFound) && !errors.Is(err, ErrNoSuchRequest) {
		return Receipt{}, fault.Errorf("%w: %s", exchange.ErrNotPartyHere, m.Agreement)
	}
	return out, err
}

// RefusedRelay tells the party of this node concerned by a relayed step
// that it was refused, and why, on its event stream (kind
// node.step_refused, as for agreement steps). It tells nobody when the
// step names no agreement of this node (then only the log has it).
func (s *Service) RefusedRelay(ctx context.Context, peer store.Peer, m Relayed, code string, why error) error {
	local := s.ex.LocalPartyOf(ctx, m.Agreement)
	if local == "" {
		return nil
	}
	text := "refused"
	if msg, ok := fault.MessageOf(why); ok {
		text = string(msg)
	}
	data, err := json.Marshal(map[string]string{"peer": peer.Name, "code": code, "message": text, "from": m.Actor,
		"request": m.Request, "action": m.Action})
	if err != nil {
		return err
	}
	_, err = s.st.Events().Append(ctx, store.Event{PartyID: local, Kind: "node.step_refused", Subject: m.Agreement, Data: data, At: s.Now()})
	if err != nil {
		return fmt.Errorf("telling %s of a refused request step: %w", local, err)
	}
	return nil
}

// errOutboxClosed: the outbox entry was closed already (by another
// instance), so its refusal is not this call's to record.
var errOutboxClosed = errors.New("request: the outbox entry is closed already")

// RefusedForGood records that peer refused, for good and in words it
// signed (code, message), the request step e this node relayed to it:
// it closes e as refused (lastErr says why) and, when e is this node's
// party's filing and peer is the node the agreement places the responder
// on, closes the request undelivered in the same transaction, under the
// agreement's lock: state undelivered, the peer's code as its ground and
// its message as the ground's text, a request.undelivered ledger entry
// and event. closed says whether it did. Only a filing closes anything,
// and only a request still filed with no answer (one the responder's node
// never took); what the peer's answer says beyond its code and message is
// not read, so a peer cannot name another request, and a later step it
// refuses (an acknowledgement, an answer) closes nothing. A step that
// does not qualify is closed as refused and nothing else changes.
// store.ErrNotFound when e is not pending any more (another instance
// closed it); other errors leave e pending, to be sent again.
func (s *Service) RefusedForGood(ctx context.Context, peer store.Peer, e store.OutboxEntry, code, message, lastErr string) (closed bool, err error) {
	var m Relayed
	if e.Kind != OutboxKind || json.Unmarshal(e.Body, &m) != nil || m.Action != RelayFile || m.Request == "" ||
		m.Agreement != e.AgreementID || m.Actor != e.PartyID || e.PeerKeyID != peer.KeyID {
		return false, s.st.Federation().OutboxDone(ctx, e.Seq, store.OutboxRefused, s.Now(), lastErr)
	}
	code, message = peerCode(code), peerText(message)
	err = s.InAgreement(ctx, party.Principal{PartyID: m.Actor}, m.Agreement, func(st *exchange.Step) error {
		closed = false
		if err := st.Tx.Federation().OutboxDone(ctx, e.Seq, store.OutboxRefused, st.Now, lastErr); errors.Is(err, store.ErrNotFound) {
			return errOutboxClosed
		} else if err != nil {
			return err
		}
		r, err := st.Tx.Requests().Get(ctx, m.Request)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if ok, err := s.undeliverable(ctx, st, r, m, peer); err != nil || !ok {
			return err
		}
		r.State, r.Ground, r.GroundText = store.RequestUndelivered, code, message
		if err := st.Tx.Requests().Update(ctx, r); err != nil {
			return err
		}
		if _, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindRequestUndelivered, Agreement: r.AgreementID, Subject: r.ID,
			Time: st.Now, Parties: []string{r.Requester, r.Responder}, Attrs: map[string]string{"peer": peer.Name, "code": code}}); err != nil {
			return err
		}
		closed = true
		return st.Notify(ctx, r.Requester, EventUndelivered, r.ID, map[string]any{"agreement": r.AgreementID, "peer": peer.Name,
			"code": code, "message": message, "responder": r.Responder})
	})
	switch {
	case errors.Is(err, errOutboxClosed):
		return false, store.ErrNotFound
	case errors.Is(err, ErrNotFound) || errors.Is(err, exchange.ErrBrokenAgreement):
		// The agreement is not here for the filer any more, or its
		// history no longer verifies: the refusal is recorded, and
		// nothing is closed on a ground this node cannot check.
		return false, s.st.Federation().OutboxDone(ctx, e.Seq, store.OutboxRefused, s.Now(), lastErr)
	}
	return closed, err
}

// undeliverable reports whether r, whose filing m peer refused for good,
// is to be closed undelivered: it is the filing this node relayed (same
// agreement, filer and time), r is still filed with no answer named, its
// requester is a party of this node, and both the agreement and this
// node's record of the responder place the responder on peer.
func (s *Service) undeliverable(ctx context.Context, st *exchange.Step, r store.Request, m Relayed, peer store.Peer) (bool, error) {
	if r.AgreementID != m.Agreement || r.Requester != m.Actor || !r.FiledAt.Equal(m.At.UTC().Truncate(time.Microsecond)) ||
		r.State != store.RequestFiled || r.HandoverID != "" {
		return false, nil
	}
	if _, remote, err := s.ex.PeerOf(ctx, st.Tx, r.Requester); err != nil || remote {
		return false, err
	}
	rp, remote, err := s.ex.PeerOf(ctx, st.Tx, r.Responder)
	if err != nil || !remote || rp.NodeKeyID != peer.KeyID || rp.NodeKey != peer.Key {
		return false, err
	}
	doc := st.Agreement.Status.Document
	if doc == nil {
		return false, nil
	}
	pt, _, err := doc.Party(r.Responder)
	return err == nil && pt.Node == peer.Key, nil
}

// Limits on what a peer's refusal puts in a request closed undelivered.
const (
	maxPeerCode = 64
	maxPeerText = 512
)

// peerCode returns a peer's refusal code as it is kept: a code as parley
// writes them (lowercase letters, digits, underscores), or "refused" for
// anything else a peer sends.
func peerCode(code string) string {
	if code == "" || len(code) > maxPeerCode || strings.IndexFunc(code, func(c rune) bool {
		return (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_'
	}) >= 0 {
		return "refused"
	}
	return code
}

// peerText returns a peer's message as it is kept: valid UTF-8 without
// control characters, at most maxPeerText bytes.
func peerText(msg string) string {
	msg = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return ' '
		}
		return c
	}, strings.ToValidUTF8(msg, "\uFFFD"))
	if len(msg) > maxPeerText {
		msg = msg[:maxPeerText]
		for !utf8.ValidString(msg) { // a rune cut in two at the end
			msg = msg[:len(msg)-1]
		}
	}
	return strings.TrimSpace(msg)
}
