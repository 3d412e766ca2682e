package agreement

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	north = "cert-north"
	south = "cyber-unit-south"
	day   = 24 * time.Hour
)

// The example document runs from 2026-01-01 to 2027-01-01 with 30 days'
// termination notice. Proposal and countersignature come before not_before.
func TestLifecycleOverTime(t *testing.T) {
	f := newFixture(t)
	propose := f.sign(t, f.v1, north, ActionPropose, t0.Add(-10*day))
	counter := f.sign(t, f.v1, south, ActionCountersign, t0.Add(-5*day))
	suspend := f.sign(t, f.v1, south, ActionSuspend, t0.Add(30*day), because("investigating a leak", t0.Add(30*day)))
	resume := f.sign(t, f.v1, south, ActionResume, t0.Add(40*day))
	terminate := f.sign(t, f.v1, north, ActionTerminate, t0.Add(100*day), because("mandate ends", t0.Add(100*day)))
	sigs := []Signature{propose, counter, suspend, resume, terminate} // in the order received

	cases := []struct {
		at      time.Time
		want    Phase
		inForce bool
	}{
		{t0.Add(-8 * day), PhaseProposed, false},
		{t0.Add(-1 * day), PhaseCountersigned, false},
		{t0, PhaseActive, true},
		{t0.Add(35 * day), PhaseSuspended, false},
		{t0.Add(50 * day), PhaseActive, true},
		{t0.Add(110 * day), PhaseTerminating, true}, // 30 days' notice
		{t0.Add(130 * day), PhaseTerminated, false},
	}
	for _, tc := range cases {
		t.Run(tc.at.Format(time.DateOnly), func(t *testing.T) {
			st, err := State([]*Document{f.v1}, sigs, f.ring, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if st.Phase != tc.want {
				t.Errorf("phase = %s, want %s", st.Phase, tc.want)
			}
			if got := st.InForce(tc.at); got != tc.inForce {
				t.Errorf("InForce = %v, want %v", got, tc.inForce)
			}
		})
	}
	st, err := State([]*Document{f.v1}, sigs, f.ring, t0.Add(110*day))
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(130 * day); !st.TerminationAt.Equal(want) {
		t.Errorf("TerminationAt = %v, want %v (signed + notice)", st.TerminationAt, want)
	}
	// The snapshot predicts its own future when nothing more is signed.
	if st.InForce(t0.Add(131 * day)) {
		t.Error("in force after the termination took effect")
	}
}

func TestExpiry(t *testing.T) {
	f := newFixture(t)
	sigs := []Signature{
		f.sign(t, f.v1, north, ActionPropose, t0.Add(-2*day)),
		f.sign(t, f.v1, south, ActionCountersign, t0.Add(-day)),
	}
	after := f.v1.NotAfter
	st, err := State([]*Document{f.v1}, sigs, f.ring, after)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != PhaseExpired || st.InForce(after) {
		t.Errorf("at not_after: phase %s, in force %v", st.Phase, st.InForce(after))
	}
	late := f.sign(t, f.v1, north, ActionSuspend, after.Add(time.Hour), because("x", after))
	if err := CheckNext([]*Document{f.v1}, sigs, f.ring, late); !errors.Is(err, ErrIllegalTransition) {
		t.Errorf("suspending an expired agreement: %v", err)
	}
	// An unanswered proposal lapses too.
	st, err = State([]*Document{f.v1}, sigs[:1], f.ring, after)
	if err != nil || st.Phase != PhaseExpired {
		t.Errorf("lapsed proposal: %v, %v", st.Phase, err)
	}
}

func TestAmendment(t *testing.T) {
	f := newFixture(t)
	v2 := amended(f.v1, 2, func(d *Document) { d.Reciprocity.Grace = 100 })
	docs := []*Document{f.v1, v2}
	sigs := []Signature{
		f.sign(t, f.v1, north, ActionPropose, t0.Add(-2*day)),
		f.sign(t, f.v1, south, ActionCountersign, t0.Add(-day)),
		f.sign(t, v2, south, ActionAmend, t0.Add(10*day)),
	}
	st, err := State(docs, sigs, f.ring, t0.Add(11*day))
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != 1 || st.Pending == nil || st.Pending.Version != 2 || st.Proposer != south || !st.InForce(t0.Add(11*day)) {
		t.Fatalf("pending amendment: version %d pending %v proposer %q", st.Version, st.Pending, st.Proposer)
	}
	// The amender cannot countersign its own amendment.
	self := f.sign(t, v2, south, ActionCountersign, t0.Add(12*day))
	if err := CheckNext(docs, sigs, f.ring, self); !errors.Is(err, ErrNotParty) {
		t.Errorf("amender countersigning: %v", err)
	}
	// A countersignature of the old version does not count for the new one.
	old := f.sign(t, f.v1, north, ActionCountersign, t0.Add(12*day))
	if err := CheckNext(docs, sigs, f.ring, old); !errors.Is(err, ErrWrongVersion) {
		t.Errorf("countersigning the superseded version: %v", err)
	}
	counter := f.sign(t, v2, north, ActionCountersign, t0.Add(12*day))
	if err := CheckNext(docs, sigs, f.ring, counter); err != nil {
		t.Fatalf("counterpart countersigning: %v", err)
	}
	sigs = append(sigs, counter)
	st, err = State(docs, sigs, f.ring, t0.Add(13*day))
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != 2 || st.Document.Reciprocity.Grace != 100 || st.Pending != nil || st.Phase != PhaseActive {
		t.Errorf("after countersignature: version %d, grace %d, pending %v, phase %s", st.Version, st.Document.Reciprocity.Grace, st.Pending, st.Phase)
	}
	// Suspension must now name version 2.
	stale := f.sign(t, f.v1, north, ActionSuspend, t0.Add(14*day), because("x", t0.Add(14*day)))
	if err := CheckNext(docs, sigs, f.ring, stale); !errors.Is(err, ErrWrongVersion) {
		t.Errorf("suspending with a version 1 signature: %v", err)
	}
}

func TestTransitionRules(t *testing.T) {
	f := newFixture(t)
	propose := f.sign(t, f.v1, north, ActionPropose, t0.Add(-2*day))
	counter := f.sign(t, f.v1, south, ActionCountersign, t0.Add(-day))
	suspendS := f.sign(t, f.v1, south, ActionSuspend, t0.Add(day), because("x", t0.Add(day)))
	terminateN := f.sign(t, f.v1, north, ActionTerminate, t0.Add(2*day), because("done", t0.Add(2*day)))
	cases := []struct {
		name    string
		history []Signature
		next    Signature
		want    error // nil: legal
	}{
		{"propose", nil, propose, nil},
		{"countersign before propose", nil, f.sign(t, f.v1, south, ActionCountersign, t0), ErrIllegalTransition},
		{"proposer countersigns", []Signature{propose}, f.sign(t, f.v1, north, ActionCountersign, t0), ErrNotParty},
		{"counterpart countersigns", []Signature{propose}, counter, nil},
		{"countersign twice", []Signature{propose, counter}, f.sign(t, f.v1, south, ActionCountersign, t0), ErrIllegalTransition},
		{"propose twice", []Signature{propose}, f.sign(t, f.v1, south, ActionPropose, t0), ErrIllegalTransition},
		{"suspend a proposal", []Signature{propose}, f.sign(t, f.v1, south, ActionSuspend, t0, because("x", t0)), ErrIllegalTransition},
		{"either party suspends", []Signature{propose, counter}, suspendS, nil},
		{"suspend twice", []Signature{propose, counter, suspendS}, f.sign(t, f.v1, south, ActionSuspend, t0.Add(2*day), because("y", t0.Add(2*day))), ErrIllegalTransition},
		{"other party cannot lift a suspension", []Signature{propose, counter, suspendS}, f.sign(t, f.v1, north, ActionResume, t0.Add(2*day)), ErrIllegalTransition},
		{"suspender resumes", []Signature{propose, counter, suspendS}, f.sign(t, f.v1, south, ActionResume, t0.Add(2*day)), nil},
		{"either party terminates", []Signature{propose, counter}, terminateN, nil},
		{"terminate twice", []Signature{propose, counter, terminateN}, f.sign(t, f.v1, south, ActionTerminate, t0.Add(3*day), because("z", t0.Add(3*day))), ErrIllegalTransition},
		{"amend while terminating", []Signature{propose, counter, terminateN}, f.sign(t, amended(f.v1, 2, nil), south, ActionAmend, t0.Add(3*day)), ErrIllegalTransition},
		// A step signed "before" the previous one is not refused (that would
		// let one side's clock lock the other out); it takes effect at the
		// previous step's time (TestStepsInReceiptOrder).
		{"backdated step", []Signature{propose, counter}, f.sign(t, f.v1, north, ActionSuspend, t0.Add(-3*day), because("x", t0)), nil},
		{"proposal signed with another party's key", nil, func() Signature {
			sig, err := Sign(f.south, StatementFor(f.v1, ActionPropose, north, f.south.KeyID(), t0))
			if err != nil {
				t.Fatal(err)
			}
			return sig
		}(), ErrNotParty},
		{"amendment changing a party", []Signature{propose, counter}, func() Signature {
			v2 := amended(f.v1, 2, func(d *Document) { d.Parties[1].PartyID = "someone-else" })
			return f.sign(t, v2, north, ActionAmend, t0)
		}(), ErrIllegalTransition},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs := []*Document{f.v1}
			if tc.next.Version == 2 {
				v2 := amended(f.v1, 2, nil)
				if tc.name == "amendment changing a party" {
					v2.Parties[1].PartyID = "someone-else"
				}
				docs = append(docs, v2)
			}
			err := CheckNext(docs, tc.history, f.ring, tc.next)
			if tc.want == nil && err != nil {
				t.Errorf("refused a legal step: %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("CheckNext = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestStateRefusesForgedHistory(t *testing.T) {
	f := newFixture(t)
	propose := f.sign(t, f.v1, north, ActionPropose, t0.Add(-2*day))
	forged := f.sign(t, f.v1, south, ActionCountersign, t0.Add(-day))
	forged.Sig = slices.Clone(forged.Sig)
	forged.Sig[5] ^= 0x40
	if _, err := State([]*Document{f.v1}, []Signature{propose, forged}, f.ring, t0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("State with a forged countersignature: %v", err)
	}
	if _, err := State([]*Document{f.v1}, nil, f.ring, t0); !errors.Is(err, ErrIllegalTransition) {
		t.Errorf("State with no signatures: %v", err)
	}
}

// Withdrawal: terminating an unanswered proposal ends it at once.
func TestWithdrawProposal(t *testing.T) {
	f := newFixture(t)
	sigs := []Signature{
		f.sign(t, f.v1, north, ActionPropose, t0.Add(-2*day)),
		f.sign(t, f.v1, north, ActionTerminate, t0.Add(-day), because("withdrawn", t0.Add(-day))),
	}
	st, err := State([]*Document{f.v1}, sigs, f.ring, t0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != PhaseTerminated || st.InForce(t0) {
		t.Errorf("withdrawn proposal: %s", st.Phase)
	}
	late := f.sign(t, f.v1, south, ActionCountersign, t0)
	if err := CheckNext([]*Document{f.v1}, sigs, f.ring, late); !errors.Is(err, ErrIllegalTransition) {
		t.Errorf("countersigning a withdrawn proposal: %v", err)
	}
}

// TestStatusAt: a status computed once, after every signature, answers for
// any later time exactly as State computed at that time would.
func TestStatusAt(t *testing.T) {
	f := newFixture(t)
	sigs := []Signature{
		f.sign(t, f.v1, north, ActionPropose, t0.Add(-10*day)),
		f.sign(t, f.v1, south, ActionCountersign, t0.Add(-5*day)),
		f.sign(t, f.v1, south, ActionSuspend, t0.Add(30*day), because("investigating a leak", t0.Add(30*day))),
		f.sign(t, f.v1, south, ActionResume, t0.Add(40*day)),
		f.sign(t, f.v1, north, ActionTerminate, t0.Add(100*day), because("mandate ends", t0.Add(100*day))),
	}
	once, err := State([]*Document{f.v1}, sigs, f.ring, t0.Add(100*day))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []int{100, 105, 129, 130, 131, 400} {
		at := t0.Add(time.Duration(d) * day)
		want, err := State([]*Document{f.v1}, sigs, f.ring, at)
		if err != nil {
			t.Fatal(err)
		}
		got := once.At(at)
		if got.Phase != want.Phase || got.Version != want.Version || got.InForce(at) != want.InForce(at) ||
			len(got.SuspendedBy) != len(want.SuspendedBy) || !got.TerminationAt.Equal(want.TerminationAt) {
			t.Errorf("day %d: At gives %s v%d suspended %v, State gives %s v%d suspended %v", d, got.Phase, got.Version, got.SuspendedBy, want.Phase, want.Version, want.SuspendedBy)
		}
	}
}

// TestStepsInReceiptOrder: steps apply in the order received, each taking
// effect no earlier than the one before, so a step dated in the future by
// one side neither refuses nor reorders the other side's later steps.
func TestStepsInReceiptOrder(t *testing.T) {
	f := newFixture(t)
	propose := f.sign(t, f.v1, north, ActionPropose, t0.Add(-2*day))
	counter := f.sign(t, f.v1, south, ActionCountersign, t0.Add(-day))
	// south suspends, dated two days ahead; north then terminates and
	// suspends with its true time, before south's date.
	future := f.sign(t, f.v1, south, ActionSuspend, t0.Add(2*day), because("ahead", t0.Add(2*day)))
	terminate := f.sign(t, f.v1, north, ActionTerminate, t0, because("over", t0))
	history := []Signature{propose, counter, future}
	if err := CheckNext([]*Document{f.v1}, history, f.ring, terminate); err != nil {
		t.Fatalf("the counterpart's terminate after a future-dated suspend: %v", err)
	}
	if err := CheckNext([]*Document{f.v1}, history, f.ring, f.sign(t, f.v1, north, ActionSuspend, t0, because("mine", t0))); err != nil {
		t.Fatalf("the counterpart's suspend after a future-dated suspend: %v", err)
	}
	v2 := amended(f.v1, 2, nil)
	if err := CheckNext([]*Document{f.v1, v2}, history, f.ring, f.sign(t, v2, north, ActionAmend, t0)); err != nil {
		t.Fatalf("the counterpart's amendment after a future-dated suspend: %v", err)
	}
	sigs := append(history, terminate)
	st, err := State([]*Document{f.v1}, sigs, f.ring, t0.Add(day))
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != PhaseActive || !st.TerminationAt.IsZero() {
		t.Errorf("before south's date: phase %s, termination %v; want active with nothing pending", st.Phase, st.TerminationAt)
	}
	// The termination takes effect when the step before it does, not before.
	st, err = State([]*Document{f.v1}, sigs, f.ring, t0.Add(3*day))
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(2*day + 30*day); !st.TerminationAt.Equal(want) {
		t.Errorf("termination at %v, want %v (south's date + 30 days' notice)", st.TerminationAt, want)
	}
	// The arrival order decides, not the dates: the same steps received the
	// other way round give north's termination its own date.
	st, err = State([]*Document{f.v1}, []Signature{propose, counter, terminate, future}, f.ring, t0.Add(3*day))
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(30 * day); !st.TerminationAt.Equal(want) {
		t.Errorf("termination received first: at %v, want %v", st.TerminationAt, want)
	}
}

// TestSignerKeyIsTheNamedKey: a proposal, amendment or countersignature
// must be signed with exactly the key the document names for the signer,
// even when the signer holds another valid key.
func TestSignerKeyIsTheNamedKey(t *testing.T) {
	f := newFixture(t)
	newNorth, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	rot, err := RotateKeys(f.north, north, newNorth.Public(), t0.Add(-3*day))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ring.Rotate(rot); err != nil {
		t.Fatal(err)
	}
	// v1 still names north's old key; north signs with its new, valid one.
	sig, err := Sign(newNorth, StatementFor(f.v1, ActionPropose, north, newNorth.KeyID(), t0.Add(-2*day)))
	if err != nil {
		t.Fatal(err)
	}
	err = CheckNext([]*Document{f.v1}, nil, f.ring, sig)
	if !errors.Is(err, ErrIdentityMismatch) || !strings.Contains(err.Error(), f.north.KeyID()) {
		t.Fatalf("proposal signed with a key the document does not name: %v", err)
	}
	// Naming the key that signs makes it legal.
	v1 := *f.v1
	v1.Parties[0].KeyID = newNorth.KeyID()
	sig, err = Sign(newNorth, StatementFor(&v1, ActionPropose, north, newNorth.KeyID(), t0.Add(-2*day)))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckNext([]*Document{&v1}, nil, f.ring, sig); err != nil {
		t.Fatalf("proposal naming its signing key: %v", err)
	}
	// The countersigner is held to the key named for it too.
	newSouth, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	rot, err = RotateKeys(f.south, south, newSouth.Public(), t0.Add(-2*day))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ring.Rotate(rot); err != nil {
		t.Fatal(err)
	}
	counter, err := Sign(newSouth, StatementFor(&v1, ActionCountersign, south, newSouth.KeyID(), t0.Add(-day)))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckNext([]*Document{&v1}, []Signature{sig}, f.ring, counter); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("countersignature with a key the document does not name: %v", err)
	}
}
