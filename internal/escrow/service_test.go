package escrow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange/exchangetest"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

var ctx = context.Background()

type fixture struct {
	*exchangetest.Fixture
	s *Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{Fixture: exchangetest.New(t, db, nil)}
	f.s = New(db, f.Ex)
	f.s.SetClock(f.Clock())
	return f
}

func bundle(ids ...int) []byte {
	var objs []string
	for _, i := range ids {
		objs = append(objs, fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.1.0.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, i, i))
	}
	return []byte(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000001","objects":[` + strings.Join(objs, ",") + `]}`)
}

// propose opens a case of A's with B, accepted when accept is set.
func (f *fixture) propose(accept bool) store.Handover {
	f.T.Helper()
	r, err := f.s.Propose(ctx, f.A.P, ProposeInput{AgreementID: f.AgreementID, Delivers: "dossier A", Expects: "dossier B"})
	if err != nil {
		f.T.Fatal(err)
	}
	if accept {
		if _, err := f.s.Decide(ctx, f.B.P, r.Handover.ID, true); err != nil {
			f.T.Fatal(err)
		}
	}
	return r.Handover
}

// refuses checks err wraps want and that the refused step left no ledger
// entry behind.
func (f *fixture) refuses(name string, size int64, err, want error) {
	f.T.Helper()
	if !errors.Is(err, want) {
		f.T.Errorf("%s: %v, want %v", name, err, want)
	}
	if got := f.LedgerSize(); got != size {
		f.T.Errorf("%s: the refused step left %d ledger entries", name, got-size)
	}
}

func TestProposeRefuses(t *testing.T) {
	f := newFixture(t)
	ok := ProposeInput{AgreementID: f.AgreementID, Delivers: "a", Expects: "b"}
	with := func(edit func(*ProposeInput)) ProposeInput { in := ok; edit(&in); return in }
	for _, tc := range []struct {
		name string
		p    party.Principal
		in   ProposeInput
		want error
	}{
		{"nothing delivered", f.A.P, with(func(in *ProposeInput) { in.Delivers = "  " }), ErrInvalid},
		{"nothing expected", f.A.P, with(func(in *ProposeInput) { in.Expects = "" }), ErrInvalid},
		{"description too long", f.A.P, with(func(in *ProposeInput) { in.Delivers = strings.Repeat("x", MaxText+1) }), ErrInvalid},
		{"description not UTF-8", f.A.P, with(func(in *ProposeInput) { in.Expects = "\xff" }), ErrInvalid},
		{"no such agreement", f.A.P, with(func(in *ProposeInput) { in.AgreementID = "agreement--missing" }), ErrNotFound},
		{"an outsider to the agreement", f.Outsider.P, ok, ErrNotFound},
		{"deadline in the past", f.A.P, with(func(in *ProposeInput) { in.Deadline = f.Now.Add(-time.Minute) }), ErrInvalid},
		{"deadline past the escrow deadline", f.A.P, with(func(in *ProposeInput) { in.Deadline = f.Now.Add(73 * time.Hour) }), ErrInvalid},
		{"no such request", f.A.P, with(func(in *ProposeInput) { in.RequestID = "request--missing" }), ErrInvalid},
	} {
		size := f.LedgerSize()
		_, err := f.s.Propose(ctx, tc.p, tc.in)
		f.refuses(tc.name, size, err, tc.want)
	}
	f.Step(f.B, agreement.ActionSuspend)
	size := f.LedgerSize()
	_, err := f.s.Propose(ctx, f.A.P, ok)
	f.refuses("under a suspended agreement", size, err, ErrForbidden)
}

func TestDepositRefusesMalformed(t *testing.T) {
	f := newFixture(t)
	h := f.propose(true)
	plain := bundle(1)
	sum := sha256.Sum256(plain)
	sealed := seal(t, plain)
	sealedSum := sha256.Sum256(sealed)
	outOfScope := []byte(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000002","objects":[{"type":"tool","spec_version":"2.1","id":"tool--00000000-0000-4000-8000-000000000001","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"x"}]}`)
	for _, tc := range []struct {
		name string
		in   DepositInput
		want error
	}{
		{"empty", DepositInput{}, ErrInvalid},
		{"too large", DepositInput{Content: make([]byte, MaxDeposit+1)}, ErrInvalid},
		{"not a bundle", DepositInput{Content: []byte(`{"type":"indicator"}`)}, ErrInvalid},
		{"not JSON", DepositInput{Content: []byte("hello")}, ErrInvalid},
		{"stated hash of other content", DepositInput{Content: plain, SHA256: hex.EncodeToString(make([]byte, 32))}, ErrHashMismatch},
		{"stated hash not hex", DepositInput{Content: plain, SHA256: "xyz"}, ErrInvalid},
		{"sealed without a hash", DepositInput{Sealed: true, Content: sealed}, ErrInvalid},
		{"sealed, not an age file", DepositInput{Sealed: true, Content: plain, SHA256: hex.EncodeToString(sum[:])}, ErrNotAgeFile},
		{"another agreement named", DepositInput{Content: plain, AgreementID: "agreement--other"}, ErrInvalid},
		{"outside the scope", DepositInput{Content: outOfScope}, agreement.ErrOutOfScope},
		{"a manifest that is not one", DepositInput{Sealed: true, Content: sealed, SHA256: hex.EncodeToString(sealedSum[:]), Manifest: []byte(`{}`)}, ErrInvalid},
	} {
		size := f.LedgerSize()
		_, err := f.s.Deposit(ctx, f.A.P, h.ID, tc.in)
		f.refuses(tc.name, size, err, tc.want)
	}
	v, err := f.s.Show(ctx, f.A.P, h.ID)
	if err != nil || len(v.Deposits) != 0 {
		t.Fatalf("after refused deposits: %+v, %v; want no deposit", v.Deposits, err)
	}
}

// TestHostileCounterpart: every step refuses a party acting on a case it
// is not a side of (as if the case did not exist), a side taking the other
// side's step, and steps the case's state no longer allows.
func TestHostileCounterpart(t *testing.T) {
	f := newFixture(t)
	proposed := f.propose(false)
	accepted := f.propose(true)
	plain := DepositInput{Content: bundle(1)}
	type step struct {
		name string
		run  func() error
		want error
	}
	run := func(steps []step) {
		t.Helper()
		for _, s := range steps {
			size := f.LedgerSize()
			f.refuses(s.name, size, s.run(), s.want)
		}
	}
	out := f.Outsider.P
	run([]step{
		{"outsider accepts", func() error { _, err := f.s.Decide(ctx, out, proposed.ID, true); return err }, ErrNotFound},
		{"outsider deposits", func() error { _, err := f.s.Deposit(ctx, out, accepted.ID, plain); return err }, ErrNotFound},
		{"outsider withdraws", func() error { _, err := f.s.Withdraw(ctx, out, accepted.ID); return err }, ErrNotFound},
		{"outsider disputes", func() error { _, err := f.s.Dispute(ctx, out, accepted.ID, "bad", nil); return err }, ErrNotFound},
		{"outsider looks", func() error { _, err := f.s.Show(ctx, out, accepted.ID); return err }, ErrNotFound},
		{"outsider fetches", func() error { _, err := f.s.Fetch(ctx, out, accepted.ID, ""); return err }, ErrNotFound},
		{"no such case", func() error { _, err := f.s.Deposit(ctx, f.A.P, "handover--missing", plain); return err }, ErrNotFound},
		{"proposer accepts its own proposal", func() error { _, err := f.s.Decide(ctx, f.A.P, proposed.ID, true); return err }, ErrForbidden},
		{"deposit before acceptance", func() error { _, err := f.s.Deposit(ctx, f.A.P, proposed.ID, plain); return err }, ErrConflict},
		{"withdraw with nothing deposited", func() error { _, err := f.s.Withdraw(ctx, f.A.P, accepted.ID); return err }, ErrConflict},
		{"dispute before release", func() error { _, err := f.s.Dispute(ctx, f.B.P, accepted.ID, "bad", nil); return err }, ErrConflict},
		{"accept twice", func() error { _, err := f.s.Decide(ctx, f.B.P, accepted.ID, true); return err }, ErrConflict},
		{"fetch a depositor who is not a side", func() error { _, err := f.s.Fetch(ctx, f.A.P, accepted.ID, out.PartyID); return err }, ErrInvalid},
	})

	if _, err := f.s.Deposit(ctx, f.A.P, accepted.ID, plain); err != nil {
		t.Fatal(err)
	}
	run([]step{
		{"deposit twice", func() error { _, err := f.s.Deposit(ctx, f.A.P, accepted.ID, plain); return err }, ErrConflict},
		{"fetch the other side's deposit before release", func() error { _, err := f.s.Fetch(ctx, f.B.P, accepted.ID, ""); return err }, ErrConflict},
	})
	// Before release B sees that A deposited, not a hash to test guesses
	// of plain content against.
	if v, err := f.s.Show(ctx, f.B.P, accepted.ID); err != nil || len(v.Deposits) != 1 || v.Deposits[0].SHA256 != "" {
		t.Fatalf("B's view before release: %+v, %v", v.Deposits, err)
	}
	res, err := f.s.Deposit(ctx, f.B.P, accepted.ID, DepositInput{Content: bundle(2, 3)})
	if err != nil || !res.Released {
		t.Fatalf("second deposit: %+v, %v; want the release", res, err)
	}
	run([]step{
		{"deposit after release", func() error { _, err := f.s.Deposit(ctx, f.A.P, accepted.ID, plain); return err }, ErrConflict},
		{"withdraw after release", func() error { _, err := f.s.Withdraw(ctx, f.A.P, accepted.ID); return err }, ErrConflict},
		{"decline after release", func() error { _, err := f.s.Decide(ctx, f.B.P, accepted.ID, false); return err }, ErrConflict},
	})
	if _, err := f.s.Dispute(ctx, f.B.P, accepted.ID, "not what was promised", nil); err != nil {
		t.Fatal(err)
	}
	run([]step{
		{"dispute twice", func() error { _, err := f.s.Dispute(ctx, f.B.P, accepted.ID, "again", nil); return err }, ErrConflict},
		{"empty dispute", func() error { _, err := f.s.Dispute(ctx, f.A.P, accepted.ID, " ", nil); return err }, ErrInvalid},
	})

	// The agreement suspended: no new deposit, and no acceptance.
	other := f.propose(false)
	third := f.propose(true)
	f.Step(f.B, agreement.ActionSuspend)
	run([]step{
		{"accept under a suspended agreement", func() error { _, err := f.s.Decide(ctx, f.B.P, other.ID, true); return err }, ErrForbidden},
		{"deposit under a suspended agreement", func() error { _, err := f.s.Deposit(ctx, f.A.P, third.ID, plain); return err }, ErrForbidden},
	})
	// Declining needs no agreement in force.
	if _, err := f.s.Decide(ctx, f.B.P, other.ID, false); err != nil {
		t.Fatalf("decline under a suspended agreement: %v", err)
	}
}

// TestRelease: the second deposit releases both in its transaction: plain
// objects in each recipient's handover collection, one release entry, both
// sides told, each side's deposit fetchable by the other.
func TestRelease(t *testing.T) {
	f := newFixture(t)
	h := f.propose(true)
	if _, err := f.s.Deposit(ctx, f.A.P, h.ID, DepositInput{Content: bundle(1, 2)}); err != nil {
		t.Fatal(err)
	}
	sealed := seal(t, []byte("for bravo"))
	sum := sha256.Sum256(sealed)
	res, err := f.s.Deposit(ctx, f.B.P, h.ID, DepositInput{Sealed: true, Content: sealed, SHA256: hex.EncodeToString(sum[:])})
	if err != nil || !res.Released || res.Handover.State != store.HandoverReleased {
		t.Fatalf("release: %+v, %v", res, err)
	}
	cs, err := f.St.Collections().List(ctx, f.AgreementID)
	if err != nil {
		t.Fatal(err)
	}
	var handed []store.Collection
	for _, c := range cs {
		if c.Kind == store.KindHandover {
			handed = append(handed, c)
		}
	}
	// A's plain bundle went to B; B's sealed one is only downloadable.
	if len(handed) != 1 || !slices.Equal(handed[0].Readers, []string{f.B.P.PartyID}) {
		t.Fatalf("handover collections = %+v, want one, B's", handed)
	}
	if d, err := f.s.Fetch(ctx, f.A.P, h.ID, ""); err != nil || string(d.Content) != string(sealed) {
		t.Fatalf("A fetches B's sealed deposit: %v", err)
	}
	for _, p := range []party.Principal{f.A.P, f.B.P} {
		if got := f.Events(p, h.ID); !slices.Contains(got, EventReleased) {
			t.Errorf("%s's events %v lack %s", p.PartyID, got, EventReleased)
		}
	}
}

// TestSweep: the sweeper warns once before the deadline and expires the
// case at it, destroying the deposits; a second sweep changes nothing.
func TestSweep(t *testing.T) {
	f := newFixture(t)
	h := f.propose(true)
	if _, err := f.s.Deposit(ctx, f.A.P, h.ID, DepositInput{Content: bundle(1)}); err != nil {
		t.Fatal(err)
	}
	f.Advance(h.Deadline.Sub(f.Now) - 30*time.Minute)
	for range 2 {
		if n, err := f.s.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("sweep before the deadline: %d expired, %v", n, err)
		}
	}
	if got := f.Events(f.B.P, h.ID); slices.Index(got, EventDeadlineNear) != len(got)-1 || strings.Count(strings.Join(got, " "), EventDeadlineNear) != 1 {
		t.Fatalf("B's events %v: want one deadline warning, last", got)
	}
	f.Advance(time.Hour)
	size := f.LedgerSize()
	if n, err := f.s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep past the deadline: %d expired, %v", n, err)
	}
	if n, err := f.s.Sweep(ctx); err != nil || n != 0 || f.LedgerSize() != size+1 {
		t.Fatalf("second sweep: %d expired, %v, ledger +%d; want nothing more", n, err, f.LedgerSize()-size)
	}
	v, err := f.s.Show(ctx, f.A.P, h.ID)
	if err != nil || v.State != store.HandoverExpired || len(v.Deposits) != 0 {
		t.Fatalf("after expiry: %s with %d deposits, %v", v.State, len(v.Deposits), err)
	}
	size = f.LedgerSize()
	_, err = f.s.Deposit(ctx, f.B.P, h.ID, DepositInput{Content: bundle(2)})
	f.refuses("deposit after expiry", size, err, ErrDeadlinePassed)
}
