package audit

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/ledger"
)

// AgreementReplay is one agreement as the ledger alone tells it.
type AgreementReplay struct {
	ID      string
	Parties []string // from the agreement.* entries, proposer first
	// Contributed counts objects credited per contributing party: the sum
	// of "credited" over its feed.batch entries.
	Contributed map[string]int64
	// Released is, per recipient, how many of the counterpart's
	// contributions were released to it: the last feed.released "to".
	Released map[string]int64
	// Actions lists the signed actions in log order ("propose",
	// "countersign", "suspend", ...).
	Actions []string
	// Countersigned is set once a countersign entry is seen.
	Countersigned bool
	// SuspendedBy holds parties whose last suspend/resume was a suspend.
	SuspendedBy []string
	// TerminationAt is the effective time of the first termination; zero if none.
	TerminationAt time.Time
	// TerminationLogged is when that termination's entry was appended:
	// the server received it then, and its notice period counts from about
	// that time.
	TerminationLogged time.Time
	// FirstIndex and LastIndex bound the agreement's entries in the log.
	FirstIndex, LastIndex int64

	// The lifecycle's own state (stepAgreement).
	latest        int
	proposers     map[int]string
	countersigned map[int]bool
	terminated    bool
}

// HandoverReplay is one handover's history in the ledger.
type HandoverReplay struct {
	ID, Agreement string
	Parties       []string // proposer, counterpart
	Request       string   // the request it answers, if any
	Match         string   // the matching session whose round 2 it escrows, if any
	State         string   // proposed, accepted, declined, released or expired
	Depositors    []string // parties whose deposit is held, in order
	// Outcome is the entry kind that closed it (released, withdrawn for a
	// declined case, expired); "" while open.
	Outcome   ledger.Kind
	Disputed  bool
	LastIndex int64
	// Chunks is the chunk count of a gradual case (between two nodes
	// without an escrow node; 0 for one released in one step), with the
	// sides whose commitment is recorded and, per depositor, how many of
	// its chunks moved and were confirmed, as this ledger recorded them.
	Chunks    int
	Committed []string
	Moved     map[string]int
	Confirmed map[string]int
}

// Replay recomputes agreements, handovers and requests from ledger entries fed in
// index order (it is a ledger.ReplayFunc via Apply). It checks the
// history's own rules as it goes and returns ErrInvariant naming the entry
// that breaks one.
type Replay struct {
	Agreements map[string]*AgreementReplay
	Handovers  map[string]*HandoverReplay
	Requests   map[string]*RequestReplay
	// Genesis counts backfilled entries (state from before the ledger).
	Genesis int
	Entries int64
	// Party, when set, is the verifying party; Mine counts the replayed
	// entries it acted in or is named by.
	Party string
	Mine  int64
}

// NewReplay returns an empty replay.
func NewReplay() *Replay {
	return &Replay{Agreements: map[string]*AgreementReplay{}, Handovers: map[string]*HandoverReplay{}, Requests: map[string]*RequestReplay{}}
}

func (r *Replay) agreement(id string, index int64) *AgreementReplay {
	a, ok := r.Agreements[id]
	if !ok {
		a = &AgreementReplay{ID: id, Contributed: map[string]int64{}, Released: map[string]int64{}, FirstIndex: index}
		r.Agreements[id] = a
	}
	a.LastIndex = index
	return a
}

func attrInt(e ledger.Entry, index int64, name string) (int64, error) {
	v, ok := e.Attrs[name]
	n, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("entry %d (%s): attribute %q = %q is not a count: %w", index, e.Kind, name, v, ErrInvariant)
	}
	return n, nil
}

// Apply folds one verified entry into the replay. Its signature matches
// ledger.ReplayFunc.
func (r *Replay) Apply(index int64, _ []byte, e ledger.Entry) error {
	r.Entries++
	if r.Party != "" && (e.Actor == r.Party || slices.Contains(e.Parties, r.Party)) {
		r.Mine++
	}
	switch e.Kind {
	case ledger.KindAgreementProposed, ledger.KindAgreementSigned, ledger.KindAgreementAmended,
		ledger.KindAgreementSuspended, ledger.KindAgreementTerminated:
		return r.applyAgreement(index, e)
	case ledger.KindFeedBatch:
		if e.Attrs["genesis"] != "" {
			r.Genesis++
			return nil
		}
		if e.Agreement == "" {
			return nil // an operator collection: no accounting
		}
		n, err := attrInt(e, index, "credited")
		if err != nil {
			return err
		}
		a := r.agreement(e.Agreement, index)
		if len(a.Parties) > 0 && !slices.Contains(a.Parties, e.Actor) {
			return fmt.Errorf("entry %d: %s contributes under agreement %s it is not party to: %w", index, e.Actor, e.Agreement, ErrInvariant)
		}
		if !a.Countersigned {
			return fmt.Errorf("entry %d: contribution under agreement %s before it was countersigned: %w", index, e.Agreement, ErrInvariant)
		}
		a.Contributed[e.Actor] += n
	case ledger.KindFeedReleased:
		a := r.agreement(e.Agreement, index)
		from, err := attrInt(e, index, "from")
		if err != nil {
			return err
		}
		to, err := attrInt(e, index, "to")
		if err != nil {
			return err
		}
		rcpt, contributor := e.Attrs["recipient"], e.Attrs["contributor"]
		switch {
		case from != a.Released[rcpt]+1 || to < from:
			return fmt.Errorf("entry %d: release to %s of [%d, %d] after %d released: %w", index, rcpt, from, to, a.Released[rcpt], ErrInvariant)
		case to > a.Contributed[contributor]:
			return fmt.Errorf("entry %d: release to %s up to %d, but %s had contributed only %d: %w", index, rcpt, to, contributor, a.Contributed[contributor], ErrInvariant)
		case rcpt == contributor || len(a.Parties) > 0 && (!slices.Contains(a.Parties, rcpt) || !slices.Contains(a.Parties, contributor)):
			return fmt.Errorf("entry %d: release from %s to %s outside agreement %s: %w", index, contributor, rcpt, e.Agreement, ErrInvariant)
		}
		a.Released[rcpt] = to
	case ledger.KindHandoverProposed, ledger.KindHandoverDepositCommitted, ledger.KindHandoverReleased,
		ledger.KindHandoverWithdrawn, ledger.KindHandoverExpired, ledger.KindHandoverDisputed,
		ledger.KindHandoverChunksCommitted, ledger.KindHandoverChunkMoved, ledger.KindHandoverChunkConfirmed, ledger.KindHandoverStopped:
		return r.applyHandover(index, e)
	case ledger.KindRequestFiled, ledger.KindRequestAcknowledged, ledger.KindRequestFulfilled,
		ledger.KindRequestRefused, ledger.KindRequestOverdue, ledger.KindRequestAnswerPending, ledger.KindRequestReopened,
		ledger.KindRequestUndelivered:
		return r.applyRequest(index, e)
	case ledger.KindReportSigned:
		return stepReport(r, index, e)
	}
	return nil
}

func (r *Replay) applyAgreement(index int64, e ledger.Entry) error {
	a := r.agreement(e.Subject, index)
	if len(a.Parties) == 0 {
		if len(e.Parties) != 2 {
			return fmt.Errorf("entry %d: agreement %s names %d parties: %w", index, e.Subject, len(e.Parties), ErrInvariant)
		}
		a.Parties = slices.Clone(e.Parties)
	}
	if !slices.Contains(a.Parties, e.Actor) {
		return fmt.Errorf("entry %d: %s signs agreement %s it is not party to: %w", index, e.Actor, e.Subject, ErrInvariant)
	}
	if err := stepAgreement(a, index, e); err != nil {
		return err
	}
	if e.Attrs["action"] == "terminate" && a.TerminationAt.IsZero() {
		a.TerminationAt, a.TerminationLogged = e.Time, e.Time
		if t, err := time.Parse(time.RFC3339Nano, e.Attrs["effective_at"]); err == nil {
			a.TerminationAt = t
		}
	}
	return nil
}

func (r *Replay) applyHandover(index int64, e ledger.Entry) error {
	h, err := stepHandover(r, r.Handovers[e.Subject], index, e)
	if err != nil {
		return err
	}
	h.LastIndex = index
	r.Handovers[e.Subject] = h
	return nil
}

func (r *Replay) applyRequest(index int64, e ledger.Entry) error {
	q, err := stepRequest(r, r.Requests[e.Subject], index, e)
	if err != nil {
		return err
	}
	q.LastIndex = index
	r.Requests[e.Subject] = q
	return nil
}

// Involving returns the agreements party is in, ordered by first entry.
func (r *Replay) Involving(party string) []*AgreementReplay {
	var out []*AgreementReplay
	for _, a := range r.Agreements {
		if slices.Contains(a.Parties, party) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstIndex < out[j].FirstIndex })
	return out
}

// Counterpart returns the other party of the agreement ("" if unknown).
func (a *AgreementReplay) Counterpart(party string) string {
	for _, p := range a.Parties {
		if p != party {
			return p
		}
	}
	return ""
}
