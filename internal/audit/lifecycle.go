package audit

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/ledger"
)

// The lifecycles of handovers, requests and agreements as the ledger
// records them, one transition function each: the replay follows the same
// state machine the server runs (packages escrow, request and agreement),
// entry by entry, and refuses a step the server would have refused. A
// change to a workflow changes its function here, and
// TestReplayRandomHistories generates histories from the server's rules to
// keep the two in step.

// Handover states, as package store names them.
const (
	handoverProposed = "proposed"
	handoverAccepted = "accepted"
	handoverDeclined = "declined"
	handoverReleased = "released"
	handoverExpired  = "expired"
	handoverStopped  = "stopped"
)

// Request states, as package store names them.
const (
	requestFiled        = "filed"
	requestAcknowledged = "acknowledged"
	requestFulfilled    = "fulfilled"
	requestRefused      = "refused"
	requestUndelivered  = "undelivered"
)

func invariant(index int64, format string, args ...any) error {
	return fmt.Errorf("entry %d: %s: %w", index, fmt.Sprintf(format, args...), ErrInvariant)
}

// stepHandover applies one handover entry to h (nil before its first
// entry) and returns the case after it. The steps, as package escrow takes
// them:
//
//	proposed (no step)        a new case, proposed by the actor
//	proposed, step accepted   the counterpart accepts a proposed case, or a
//	                          matching session opens a case already accepted
//	withdrawn, step declined  the counterpart declines a proposed case
//	deposit_committed         a side deposits into an accepted case, once
//	withdrawn, step deposit_withdrawn
//	                          a side takes its deposit back; it may deposit again
//	released                  both sides' deposits are held: the case closes
//	expired                   an open case passes its deadline and closes
//	disputed                  a side disputes what a released case delivered
func stepHandover(r *Replay, h *HandoverReplay, index int64, e ledger.Entry) (*HandoverReplay, error) {
	step := e.Attrs["step"]
	if h == nil {
		if e.Kind != ledger.KindHandoverProposed || (step != "" && (step != "accepted" || e.Attrs["match"] == "")) {
			return nil, invariant(index, "handover %s %s before it was proposed", e.Subject, describe(e))
		}
		if len(e.Parties) != 2 || e.Parties[0] == e.Parties[1] || e.Parties[0] != e.Actor {
			return nil, invariant(index, "handover %s proposed by %s between %v", e.Subject, e.Actor, e.Parties)
		}
		if a, ok := r.Agreements[e.Agreement]; ok && len(a.Parties) > 0 && (!slices.Contains(a.Parties, e.Parties[0]) || !slices.Contains(a.Parties, e.Parties[1])) {
			return nil, invariant(index, "handover %s between %v under agreement %s of %v", e.Subject, e.Parties, e.Agreement, a.Parties)
		}
		h = &HandoverReplay{ID: e.Subject, Agreement: e.Agreement, Parties: slices.Clone(e.Parties), State: handoverProposed, Request: e.Attrs["request"],
			Match: e.Attrs["match"]}
		if c := e.Attrs["chunks"]; c != "" {
			n, err := strconv.Atoi(c)
			if err != nil || n < 2 || n > 64 {
				return nil, invariant(index, "handover %s proposed with %q chunks", e.Subject, c)
			}
			h.Chunks, h.Moved, h.Confirmed = n, map[string]int{}, map[string]int{}
		}
		if step == "accepted" {
			h.State = handoverAccepted
		}
		if h.Request != "" {
			q := r.Requests[h.Request]
			if q == nil || q.Agreement != h.Agreement || q.closed() {
				return nil, invariant(index, "handover %s answers request %s, which is not an open request under agreement %s", e.Subject, h.Request, e.Agreement)
			}
		}
		return h, nil
	}
	if e.Agreement != h.Agreement {
		return nil, invariant(index, "handover %s of agreement %s recorded under %s", e.Subject, h.Agreement, e.Agreement)
	}
	side := slices.Contains(h.Parties, e.Actor)
	switch e.Kind {
	case ledger.KindHandoverChunksCommitted, ledger.KindHandoverChunkMoved, ledger.KindHandoverChunkConfirmed, ledger.KindHandoverStopped:
		return stepGradual(h, index, e, side)
	}
	if h.Chunks != 0 && e.Kind == ledger.KindHandoverReleased {
		// Gradual: released once every chunk moved both ways.
		if h.State != handoverAccepted || h.Moved[h.Parties[0]] != h.Chunks || h.Moved[h.Parties[1]] != h.Chunks {
			return nil, invariant(index, "gradual handover %s released with %d and %d of %d chunks moved", e.Subject,
				h.Moved[h.Parties[0]], h.Moved[h.Parties[1]], h.Chunks)
		}
		h.State, h.Outcome = handoverReleased, e.Kind
		return h, nil
	}
	switch {
	case e.Kind == ledger.KindHandoverDisputed:
		if h.State != handoverReleased || !side {
			return nil, invariant(index, "handover %s disputed by %s while %s", e.Subject, e.Actor, h.State)
		}
		h.Disputed = true
		return h, nil
	case h.State != handoverProposed && h.State != handoverAccepted:
		return nil, invariant(index, "handover %s %s after it was already %s", e.Subject, describe(e), h.State)
	}
	switch e.Kind {
	case ledger.KindHandoverProposed:
		if step != "accepted" || h.State != handoverProposed || e.Actor != h.Parties[1] {
			return nil, invariant(index, "handover %s %s by %s while %s", e.Subject, describe(e), e.Actor, h.State)
		}
		h.State = handoverAccepted
	case ledger.KindHandoverDepositCommitted:
		switch {
		case h.State != handoverAccepted:
			return nil, invariant(index, "deposit into handover %s while %s", e.Subject, h.State)
		case !side:
			return nil, invariant(index, "%s deposits into handover %s between %v", e.Actor, e.Subject, h.Parties)
		case slices.Contains(h.Depositors, e.Actor):
			return nil, invariant(index, "%s deposits twice into handover %s", e.Actor, e.Subject)
		}
		h.Depositors = append(h.Depositors, e.Actor)
	case ledger.KindHandoverWithdrawn:
		switch step {
		case "declined":
			if h.State != handoverProposed || e.Actor != h.Parties[1] {
				return nil, invariant(index, "handover %s declined by %s while %s", e.Subject, e.Actor, h.State)
			}
			h.State, h.Outcome = handoverDeclined, e.Kind
		case "deposit_withdrawn":
			if h.State != handoverAccepted || !slices.Contains(h.Depositors, e.Actor) {
				return nil, invariant(index, "%s withdraws from handover %s a deposit it does not hold", e.Actor, e.Subject)
			}
			h.Depositors = slices.DeleteFunc(h.Depositors, func(p string) bool { return p == e.Actor })
		default:
			return nil, invariant(index, "handover %s withdrawn with unknown step %q", e.Subject, step)
		}
	case ledger.KindHandoverReleased:
		// Both sides or neither: a release needs both deposits held.
		if h.State != handoverAccepted || len(h.Depositors) != 2 {
			return nil, invariant(index, "handover %s released with %d deposit(s) held", e.Subject, len(h.Depositors))
		}
		h.State, h.Outcome = handoverReleased, e.Kind
	case ledger.KindHandoverExpired:
		h.State, h.Outcome, h.Depositors = handoverExpired, e.Kind, nil
	}
	return h, nil
}

// RequestReplay is one request's history in the ledger.
type RequestReplay struct {
	ID, Agreement        string
	Requester, Responder string
	State                string // filed, acknowledged, fulfilled, refused or undelivered
	Handover             string // the handover that fulfilled it
	Pending              string // the handover named as its answer, not yet released
	LastIndex            int64
}

func (q *RequestReplay) closed() bool {
	return q.State == requestFulfilled || q.State == requestRefused || q.State == requestUndelivered
}

// stepRequest applies one request entry to q (nil before its first entry),
// as package request takes the steps: the requester files; the responder
// acknowledges a filed request, and fulfils (naming a handover that answers
// it) or refuses an open one; the sweeper flags an open one overdue; and
// between nodes, the requester's node closes undelivered a filed one whose
// filing the responder's node refused for good (no actor: no party acted).
func stepRequest(r *Replay, q *RequestReplay, index int64, e ledger.Entry) (*RequestReplay, error) {
	if q == nil {
		if e.Kind != ledger.KindRequestFiled {
			return nil, invariant(index, "request %s %s before it was filed", e.Subject, e.Kind)
		}
		if len(e.Parties) != 2 || e.Parties[0] != e.Actor || e.Parties[0] == e.Parties[1] {
			return nil, invariant(index, "request %s filed by %s between %v", e.Subject, e.Actor, e.Parties)
		}
		if a, ok := r.Agreements[e.Agreement]; ok && len(a.Parties) > 0 && (!slices.Contains(a.Parties, e.Parties[0]) || !slices.Contains(a.Parties, e.Parties[1])) {
			return nil, invariant(index, "request %s between %v under agreement %s of %v", e.Subject, e.Parties, e.Agreement, a.Parties)
		}
		return &RequestReplay{ID: e.Subject, Agreement: e.Agreement, Requester: e.Parties[0], Responder: e.Parties[1], State: requestFiled}, nil
	}
	if e.Kind == ledger.KindRequestFiled || e.Agreement != q.Agreement {
		return nil, invariant(index, "request %s %s again", e.Subject, e.Kind)
	}
	if q.closed() {
		return nil, invariant(index, "request %s %s after it was already %s", e.Subject, e.Kind, q.State)
	}
	if e.Kind != ledger.KindRequestOverdue && e.Kind != ledger.KindRequestReopened && e.Kind != ledger.KindRequestUndelivered && e.Actor != q.Responder {
		return nil, invariant(index, "request %s %s by %s; only %s, to whom it is addressed, answers it", e.Subject, e.Kind, e.Actor, q.Responder)
	}
	switch e.Kind {
	case ledger.KindRequestAcknowledged:
		if q.State != requestFiled {
			return nil, invariant(index, "request %s acknowledged while %s", e.Subject, q.State)
		}
		q.State = requestAcknowledged
	case ledger.KindRequestFulfilled:
		// Fulfilled means delivered: the answering handover was released.
		id := e.Attrs["handover"]
		h := r.Handovers[id]
		if h == nil || h.Request != q.ID || h.State != handoverReleased {
			return nil, invariant(index, "request %s fulfilled by handover %s, which does not answer it or was not released", e.Subject, id)
		}
		q.State, q.Handover, q.Pending = requestFulfilled, id, ""
	case ledger.KindRequestAnswerPending:
		id := e.Attrs["handover"]
		h := r.Handovers[id]
		if h == nil || h.Request != q.ID || (h.State != handoverProposed && h.State != handoverAccepted) || q.Pending != "" {
			return nil, invariant(index, "request %s answered by open handover %s, which does not answer it or is not open", e.Subject, id)
		}
		q.Pending = id
	case ledger.KindRequestReopened:
		// The pending handover failed: declined by its counterpart,
		// expired, stopped, or the responder's deposit withdrawn.
		id := e.Attrs["handover"]
		h := r.Handovers[id]
		ok := h != nil && q.Pending == id
		switch e.Attrs["cause"] {
		case "declined":
			ok = ok && h.State == handoverDeclined
		case "expired":
			ok = ok && h.State == handoverExpired
		case "stopped": // a gradual case a side stopped by rejecting a chunk
			ok = ok && h.State == handoverStopped
		case "withdrawn":
			ok = ok && e.Actor == q.Responder && !slices.Contains(h.Depositors, q.Responder)
		default:
			ok = false
		}
		if !ok {
			return nil, invariant(index, "request %s reopened (%s) on handover %s, which was not its pending answer or did not fail", e.Subject, e.Attrs["cause"], id)
		}
		q.Pending = ""
	case ledger.KindRequestRefused:
		q.State = requestRefused
	case ledger.KindRequestUndelivered:
		// The responder's node never took the filing: nothing of the
		// responder's can have happened to it.
		if q.State != requestFiled || q.Pending != "" || e.Actor != "" {
			return nil, invariant(index, "request %s undelivered while %s (answer pending %q, actor %q)", e.Subject, q.State, q.Pending, e.Actor)
		}
		q.State = requestUndelivered
	}
	return q, nil
}

// stepAgreement applies one signed action to a, as package agreement's
// lifecycle allows it (without the signatures and documents, which the
// ledger holds only as hashes): a proposal first and once; amendments
// after it; each version countersigned once, never by its proposer;
// suspension only of a countersigned agreement and once per party until it
// resumes; after a termination only suspensions and resumptions.
func stepAgreement(a *AgreementReplay, index int64, e ledger.Entry) error {
	action := e.Attrs["action"]
	version := -1
	if v, ok := e.Attrs["version"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return invariant(index, "agreement %s %s of version %q", e.Subject, action, v)
		}
		version = n
	}
	if a.proposers == nil {
		a.proposers = map[int]string{}
		a.countersigned = map[int]bool{}
	}
	if action != "propose" && len(a.Actions) == 0 {
		return invariant(index, "agreement %s %s before it was proposed", e.Subject, action)
	}
	if a.terminated && action != "suspend" && action != "resume" {
		return invariant(index, "agreement %s %s after it was terminated", e.Subject, action)
	}
	switch action {
	case "propose":
		if len(a.Actions) > 0 || (version != -1 && version != 1) {
			return invariant(index, "agreement %s proposed again", e.Subject)
		}
		a.latest, a.proposers[1] = 1, e.Actor
	case "amend":
		if version != -1 {
			if version <= a.latest {
				return invariant(index, "agreement %s amended to version %d, not above %d", e.Subject, version, a.latest)
			}
			a.latest, a.proposers[version] = version, e.Actor
		}
	case "countersign":
		if version == -1 {
			version = a.latest
		}
		switch {
		case version != a.latest:
			return invariant(index, "agreement %s version %d countersigned after version %d was proposed", e.Subject, version, a.latest)
		case a.countersigned[version]:
			return invariant(index, "agreement %s version %d countersigned twice", e.Subject, version)
		case a.proposers[version] == e.Actor:
			return invariant(index, "agreement %s version %d countersigned by its proposer %s", e.Subject, version, e.Actor)
		}
		a.countersigned[version] = true
		a.Countersigned = true
	case "suspend":
		if !a.Countersigned || slices.Contains(a.SuspendedBy, e.Actor) {
			return invariant(index, "agreement %s suspended by %s while %s", e.Subject, e.Actor, describeSuspension(a))
		}
		a.SuspendedBy = append(a.SuspendedBy, e.Actor)
	case "resume":
		if !slices.Contains(a.SuspendedBy, e.Actor) {
			return invariant(index, "agreement %s resumed by %s, which had not suspended it", e.Subject, e.Actor)
		}
		a.SuspendedBy = slices.DeleteFunc(a.SuspendedBy, func(p string) bool { return p == e.Actor })
	case "terminate":
		a.terminated = true
	default:
		return invariant(index, "agreement %s: unknown action %q", e.Subject, action)
	}
	a.Actions = append(a.Actions, action)
	return nil
}

func describe(e ledger.Entry) string {
	if s := e.Attrs["step"]; s != "" {
		return string(e.Kind) + " (" + s + ")"
	}
	return string(e.Kind)
}

func describeSuspension(a *AgreementReplay) string {
	if !a.Countersigned {
		return "not countersigned"
	}
	return fmt.Sprintf("suspended by %v", a.SuspendedBy)
}

// stepReport checks one party's signature of a joint report (package
// report) as package exchange records it: by a party to a countersigned
// agreement, naming both its parties, over a non-empty period, with the
// key it signed with and commitments to the report and the statement. A
// report signature changes no state; the server verified the signature
// against the party's registered key, and the signer can open the entry's
// commitments to the report hash it holds.
func stepReport(r *Replay, index int64, e ledger.Entry) error {
	a, ok := r.Agreements[e.Agreement]
	if !ok || len(a.Parties) != 2 || !a.Countersigned {
		return invariant(index, "report %s signed under agreement %q, which was never countersigned", e.Subject, e.Agreement)
	}
	if !slices.Contains(a.Parties, e.Actor) || len(e.Parties) != 2 || !slices.Contains(e.Parties, a.Parties[0]) || !slices.Contains(e.Parties, a.Parties[1]) {
		return invariant(index, "report %s signed by %s naming %v under agreement %s of %v", e.Subject, e.Actor, e.Parties, e.Agreement, a.Parties)
	}
	from, err1 := time.Parse(time.RFC3339Nano, e.Attrs["from"])
	to, err2 := time.Parse(time.RFC3339Nano, e.Attrs["to"])
	if err1 != nil || err2 != nil || !from.Before(to) {
		return invariant(index, "report %s signed over the period %q to %q", e.Subject, e.Attrs["from"], e.Attrs["to"])
	}
	if e.Attrs["key_id"] == "" || e.Digests["report"] == "" || e.Digests["statement"] == "" {
		return invariant(index, "report %s signature without its key, report or statement", e.Subject)
	}
	a.LastIndex = index
	return nil
}

// stepGradual applies one entry of gradual release to h, as package
// escrow takes the steps: each side commits once to its chunks in an
// accepted case; a side's chunks move in order, the proposer's chunk k
// only after k-1 of the counterpart's moved and the counterpart's chunk k
// only after k of the proposer's (so neither side ever holds more than
// one chunk more than it gave); the recipient confirms them in order,
// each after it moved (the last possibly after the release); a rejection
// stops the case.
func stepGradual(h *HandoverReplay, index int64, e ledger.Entry, side bool) (*HandoverReplay, error) {
	if h.Chunks == 0 || !side {
		return nil, invariant(index, "handover %s: %s by %s, which is not a side of a gradual case", e.Subject, e.Kind, e.Actor)
	}
	other := h.Parties[0]
	if other == e.Actor {
		other = h.Parties[1]
	}
	idx, _ := strconv.Atoi(e.Attrs["index"])
	if e.Kind == ledger.KindHandoverChunkConfirmed {
		dep := e.Attrs["depositor"]
		if dep != other || (h.State != handoverAccepted && h.State != handoverReleased) || idx != h.Confirmed[dep]+1 || idx > h.Moved[dep] {
			return nil, invariant(index, "handover %s: %s confirms chunk %d of %s, with %d moved and %d confirmed, while %s", e.Subject, e.Actor,
				idx, dep, h.Moved[dep], h.Confirmed[dep], h.State)
		}
		h.Confirmed[dep] = idx
		return h, nil
	}
	if h.State != handoverAccepted {
		return nil, invariant(index, "handover %s %s while %s", e.Subject, describe(e), h.State)
	}
	switch e.Kind {
	case ledger.KindHandoverChunksCommitted:
		if slices.Contains(h.Committed, e.Actor) || e.Attrs["chunks"] != strconv.Itoa(h.Chunks) {
			return nil, invariant(index, "handover %s: %s commits again, or to %s chunks of %d", e.Subject, e.Actor, e.Attrs["chunks"], h.Chunks)
		}
		h.Committed = append(h.Committed, e.Actor)
	case ledger.KindHandoverChunkMoved:
		need := idx - 1 // the proposer's chunk k after k-1 of the counterpart's
		if e.Actor == h.Parties[1] {
			need = idx // the counterpart's chunk k after k of the proposer's
		}
		if len(h.Committed) != 2 || idx != h.Moved[e.Actor]+1 || idx > h.Chunks || h.Moved[other] < need {
			return nil, invariant(index, "handover %s: chunk %d of %s moved with %d of its and %d of %s's moved", e.Subject, idx, e.Actor,
				h.Moved[e.Actor], h.Moved[other], other)
		}
		h.Moved[e.Actor] = idx
	case ledger.KindHandoverStopped:
		h.State, h.Outcome = handoverStopped, e.Kind
	}
	return h, nil
}
