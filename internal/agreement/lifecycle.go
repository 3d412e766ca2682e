package agreement

import (
	"fmt"
	"slices"
	"time"

	"github.com/parley-cti/parley/internal/fault"
)

// Phase is where an agreement stands at a given time.
type Phase string

// The phases. "Amended" is not a phase of its own: an amendment in force shows
// as PhaseActive with Status.Version above 1, and one awaiting its
// countersignature as Status.Pending.
const (
	PhaseProposed      Phase = "proposed"      // signed by its proposer only
	PhaseCountersigned Phase = "countersigned" // signed by both, not_before not reached
	PhaseActive        Phase = "active"        // in force
	PhaseSuspended     Phase = "suspended"     // a party has suspended it
	PhaseTerminating   Phase = "terminating"   // terminated, the notice period runs
	PhaseTerminated    Phase = "terminated"
	PhaseExpired       Phase = "expired" // not_after passed (or a proposal lapsed)
)

// Status is an agreement's state computed from its signed history at one
// time. It is a snapshot: InForce answers for other times assuming nothing
// more is signed.
type Status struct {
	Phase    Phase
	Version  int       // the version that governs: in force, or the latest proposal when none is signed by both
	Document *Document // that version
	Pending  *Document // a proposed version awaiting its countersignature, or nil
	Proposer string    // who proposed Pending, or Document while PhaseProposed

	SuspendedBy   []string  // parties whose suspension holds now
	TerminationAt time.Time // when a signed termination takes (or took) effect; zero if none
	TerminatedBy  string
	Reason        string // of the termination, or of the latest suspension

	signed         []*Document // countersigned versions, ascending
	suspensions    []period
	latest         *Document // the latest proposed version
	latestProposer string
}

type period struct {
	party       string
	from, until time.Time // until zero: open
}

func (p period) covers(t time.Time) bool {
	return !t.Before(p.from) && (p.until.IsZero() || t.Before(p.until))
}

// governing returns the countersigned version that rules at t: the highest
// whose not_before has come, else the first one (not yet in force).
func governing(signed []*Document, t time.Time) *Document {
	for _, d := range slices.Backward(signed) {
		if !t.Before(d.NotBefore) {
			return d
		}
	}
	if len(signed) > 0 {
		return signed[0]
	}
	return nil
}

// InForce reports whether objects may flow under the agreement at now:
// signed by both parties, within the validity period of the governing
// version, not suspended and not terminated.
func (s Status) InForce(now time.Time) bool {
	d := governing(s.signed, now)
	if d == nil || now.Before(d.NotBefore) || !now.Before(d.NotAfter) {
		return false
	}
	if !s.TerminationAt.IsZero() && !now.Before(s.TerminationAt) {
		return false
	}
	for _, p := range s.suspensions {
		if p.covers(now) {
			return false
		}
	}
	return true
}

// machine folds signatures in order, refusing illegal steps.
type machine struct {
	docs          map[int]*Document
	keys          KeyResolver
	parties       [2]string
	proposer      map[int]string
	countersigned map[int]bool
	signed        []*Document
	latest        int // highest proposed version
	suspensions   []period
	terminationAt time.Time
	terminatedBy  string
	reason        string
	lastAt        time.Time
}

func newMachine(versions []*Document, keys KeyResolver) (*machine, error) {
	m := &machine{docs: map[int]*Document{}, keys: keys, proposer: map[int]string{}, countersigned: map[int]bool{}}
	for _, d := range versions {
		if d == nil {
			return nil, fault.Errorf("%w: nil document", ErrInvalidDocument)
		}
		if err := d.Validate(); err != nil {
			return nil, err
		}
		if len(m.docs) > 0 && d.ID != versions[0].ID {
			return nil, fault.Errorf("%w: versions of different agreements (%s, %s)", ErrInvalidDocument, versions[0].ID, d.ID)
		}
		if _, dup := m.docs[d.Version]; dup {
			return nil, fault.Errorf("%w: two documents for version %d", ErrInvalidDocument, d.Version)
		}
		m.docs[d.Version] = d
	}
	return m, nil
}

func illegal(format string, args ...any) error {
	return fault.Errorf("%w: %s", ErrIllegalTransition, fmt.Sprintf(format, args...))
}

// current is the version later signatures must name: the latest
// countersigned one, or the latest proposal when none is countersigned.
func (m *machine) current() int {
	if len(m.signed) > 0 {
		return m.signed[len(m.signed)-1].Version
	}
	return m.latest
}

func (m *machine) suspendedBy(party string, t time.Time) bool {
	for _, p := range m.suspensions {
		if p.party == party && (p.until.IsZero() || t.Before(p.until)) {
			return true
		}
	}
	return false
}

func samePartyIDs(a, b *Document) bool {
	x := []string{a.Parties[0].PartyID, a.Parties[1].PartyID}
	y := []string{b.Parties[0].PartyID, b.Parties[1].PartyID}
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// apply verifies sig and applies it, or says why it is not a legal step.
func (m *machine) apply(sig Signature) error {
	doc, ok := m.docs[sig.Version]
	if !ok {
		return fault.Errorf("%w: no document for version %d of %s", ErrWrongVersion, sig.Version, sig.AgreementID)
	}
	if err := VerifyFor(doc, m.keys, sig); err != nil {
		return err
	}
	// Steps count in the order the server received them. A step takes
	// effect at its signing time, but never before the step received
	// before it: a signer's clock (off by at most the server's bound)
	// can delay its own step, never refuse or reorder the other side's.
	at := stepTime(sig, m.lastAt)
	if !m.terminationAt.IsZero() && !at.Before(m.terminationAt) {
		return illegal("the agreement was terminated at %s", m.terminationAt.Format(time.RFC3339))
	}
	if sig.Action != ActionPropose {
		if m.latest == 0 {
			return illegal("%s before any proposal", sig.Action)
		}
		if cur := m.docs[m.current()]; !at.Before(cur.NotAfter) {
			return illegal("the agreement expired at %s", cur.NotAfter.Format(time.RFC3339))
		}
		if !m.terminationAt.IsZero() && sig.Action != ActionSuspend && sig.Action != ActionResume {
			return illegal("%s while termination is pending", sig.Action)
		}
	}
	switch sig.Action {
	case ActionPropose, ActionAmend, ActionCountersign:
		// The document names each party's key: the one that signs it for
		// that party must be exactly that key, so a document can never
		// claim a key its signer does not hold.
		if named, _, _ := doc.Party(sig.PartyID); named.KeyID != sig.KeyID {
			return fault.Errorf("%w: version %d names key %s for %q, but it was signed with key %s; a document must name the key that signs it (amend it to name the current one)", ErrIdentityMismatch, doc.Version, named.KeyID, sig.PartyID, sig.KeyID)
		}
	}
	switch sig.Action {
	case ActionPropose:
		if m.latest != 0 {
			return illegal("the agreement was already proposed; amend it instead")
		}
		if sig.Version != 1 || doc.Supersedes != 0 {
			return fault.Errorf("%w: a proposal is version 1 and supersedes nothing", ErrWrongVersion)
		}
		if !at.Before(doc.NotAfter) {
			return illegal("proposal signed after its not_after")
		}
		m.parties = [2]string{doc.Parties[0].PartyID, doc.Parties[1].PartyID}
		m.latest, m.proposer[1] = 1, sig.PartyID
	case ActionAmend:
		if sig.Version <= m.latest {
			return fault.Errorf("%w: an amendment must be a version above %d", ErrWrongVersion, m.latest)
		}
		if !samePartyIDs(doc, m.docs[1]) {
			return illegal("an amendment cannot change the parties")
		}
		if doc.Supersedes != 0 && doc.Supersedes != m.current() {
			return fault.Errorf("%w: version %d supersedes %d, but the current version is %d", ErrWrongVersion, doc.Version, doc.Supersedes, m.current())
		}
		m.latest, m.proposer[sig.Version] = sig.Version, sig.PartyID
	case ActionCountersign:
		if sig.Version != m.latest {
			return fault.Errorf("%w: version %d was superseded by version %d", ErrWrongVersion, sig.Version, m.latest)
		}
		if m.countersigned[sig.Version] {
			return illegal("version %d is already countersigned", sig.Version)
		}
		if sig.PartyID == m.proposer[sig.Version] {
			return fault.Errorf("%w: the proposer cannot countersign its own proposal", ErrNotParty)
		}
		m.countersigned[sig.Version] = true
		m.signed = append(m.signed, doc)
	case ActionSuspend, ActionResume, ActionTerminate:
		if sig.Version != m.current() {
			return fault.Errorf("%w: %s must name the current version %d", ErrWrongVersion, sig.Action, m.current())
		}
		effective := at
		if sig.EffectiveAt.After(at) {
			effective = sig.EffectiveAt
		}
		switch sig.Action {
		case ActionSuspend:
			if len(m.signed) == 0 {
				return illegal("only a countersigned agreement can be suspended")
			}
			if m.suspendedBy(sig.PartyID, at) {
				return illegal("%q has already suspended the agreement", sig.PartyID)
			}
			m.suspensions = append(m.suspensions, period{party: sig.PartyID, from: effective})
			m.reason = sig.Reason
		case ActionResume:
			i := slices.IndexFunc(m.suspensions, func(p period) bool { return p.party == sig.PartyID && p.until.IsZero() })
			if i < 0 {
				return illegal("%q has no suspension to lift", sig.PartyID)
			}
			if effective.Before(m.suspensions[i].from) {
				effective = m.suspensions[i].from
			}
			m.suspensions[i].until = effective
		case ActionTerminate:
			if len(m.signed) > 0 {
				// A unilateral termination waits out the notice period.
				if notice := at.Add(m.docs[m.current()].TerminationNotice); effective.Before(notice) {
					effective = notice
				}
			}
			m.terminationAt, m.terminatedBy, m.reason = effective, sig.PartyID, sig.Reason
		}
	}
	m.lastAt = at
	return nil
}

// stepTime is when a step received after a step taking effect at prev
// takes effect: its signing time, or prev if that is later.
func stepTime(sig Signature, prev time.Time) time.Time {
	if sig.SignedAt.Before(prev) {
		return prev
	}
	return sig.SignedAt
}

// fold verifies and applies, in the order given (the order the server
// received them), the steps that take effect at or before now.
func fold(versions []*Document, sigs []Signature, keys KeyResolver, now time.Time) (*machine, error) {
	m, err := newMachine(versions, keys)
	if err != nil {
		return nil, err
	}
	for _, sig := range sigs {
		if stepTime(sig, m.lastAt).After(now) {
			// Later steps take effect no earlier than this one.
			break
		}
		if err := m.apply(sig); err != nil {
			return nil, fault.Errorf("%s by %q at %s: %w", sig.Action, sig.PartyID, sig.SignedAt.Format(time.RFC3339), err)
		}
	}
	return m, nil
}

// State computes the status at now of the agreement whose documents are
// versions (every version, any order) and whose recorded signatures are sigs,
// in the order they were received (a step takes effect at its signed_at, or
// at the previous step's time if that is later; steps taking effect after
// now are ignored). Every signature is
// verified with keys. An illegal or unverifiable history is an error wrapping
// the sentinel of the first bad step; a history without a proposal is
// ErrIllegalTransition.
func State(versions []*Document, sigs []Signature, keys KeyResolver, now time.Time) (Status, error) {
	m, err := fold(versions, sigs, keys, now)
	if err != nil {
		return Status{}, err
	}
	if m.latest == 0 {
		return Status{}, illegal("no proposal has been signed")
	}
	s := Status{
		signed:        slices.Clone(m.signed),
		suspensions:   slices.Clone(m.suspensions),
		TerminationAt: m.terminationAt,
		TerminatedBy:  m.terminatedBy,
		Reason:        m.reason,
	}
	if len(m.signed) > 0 && !m.countersigned[m.latest] {
		s.Pending, s.Proposer = m.docs[m.latest], m.proposer[m.latest]
	}
	s.latest = m.docs[m.latest]
	s.latestProposer = m.proposer[m.latest]
	return s.At(now), nil
}

// Current is the status at now of a server's agreement: every step
// received so far counts, in the order received, each taking effect at its
// time — unlike State, which ignores steps taking effect after now (a past
// view). A step dated a little ahead (within the server's clock bound)
// thus shows at once as pending its time, and the steps received after it
// are never hidden behind it.
func Current(versions []*Document, sigs []Signature, keys KeyResolver, now time.Time) (Status, error) {
	s, err := State(versions, sigs, keys, maxTime)
	if err != nil {
		return Status{}, err
	}
	return s.At(now), nil
}

// At returns the status of the same signed history at another time: the
// governing version, suspensions and phase as they stand at now. It needs
// no key and verifies nothing, so a server can compute a verified history
// once and ask it about the present cheaply.
func (s Status) At(now time.Time) Status {
	s.SuspendedBy = nil
	for _, p := range s.suspensions {
		if p.covers(now) && !slices.Contains(s.SuspendedBy, p.party) {
			s.SuspendedBy = append(s.SuspendedBy, p.party)
		}
	}
	gov := governing(s.signed, now)
	if gov == nil {
		s.Document, s.Version, s.Proposer = s.latest, s.latest.Version, s.latestProposer
		s.Phase = PhaseProposed
		if !now.Before(s.Document.NotAfter) {
			s.Phase = PhaseExpired
		}
		if !s.TerminationAt.IsZero() && !now.Before(s.TerminationAt) {
			s.Phase = PhaseTerminated
		}
		return s
	}
	s.Document, s.Version = gov, gov.Version
	switch {
	case !s.TerminationAt.IsZero() && !now.Before(s.TerminationAt):
		s.Phase = PhaseTerminated
	case !now.Before(gov.NotAfter):
		s.Phase = PhaseExpired
	case now.Before(gov.NotBefore):
		s.Phase = PhaseCountersigned
	case len(s.SuspendedBy) > 0:
		s.Phase = PhaseSuspended
	case !s.TerminationAt.IsZero():
		s.Phase = PhaseTerminating
	default:
		s.Phase = PhaseActive
	}
	return s
}

// CheckNext reports whether next is a legal next step for the agreement with
// the given history: nil if it verifies and the lifecycle allows it, else an
// error wrapping ErrIllegalTransition, ErrWrongVersion, ErrNotParty,
// ErrDocumentChanged, ErrIdentityMismatch, ErrUnknownKey or ErrBadSignature.
// versions must include the document next names; sigs are in the order
// received, and next is received after them.
func CheckNext(versions []*Document, sigs []Signature, keys KeyResolver, next Signature) error {
	m, err := fold(versions, sigs, keys, maxTime)
	if err != nil {
		return fault.Errorf("recorded history: %w", err)
	}
	return m.apply(next)
}

var maxTime = time.Unix(1<<62, 0)
