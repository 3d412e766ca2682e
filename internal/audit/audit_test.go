package audit

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func agreementEntry(action, actor string) ledger.Entry {
	kind := map[string]ledger.Kind{"propose": ledger.KindAgreementProposed, "countersign": ledger.KindAgreementSigned,
		"suspend": ledger.KindAgreementSuspended, "resume": ledger.KindAgreementSigned, "terminate": ledger.KindAgreementTerminated}[action]
	return ledger.Entry{Kind: kind, Actor: actor, Agreement: "ag1", Subject: "ag1", Time: t0,
		Parties: []string{"A", "B"}, Attrs: map[string]string{"action": action}}
}

func batch(actor string, credited int) ledger.Entry {
	return ledger.Entry{Kind: ledger.KindFeedBatch, Actor: actor, Agreement: "ag1", Subject: "status--" + actor + strconv.Itoa(credited),
		Time: t0, Attrs: map[string]string{"credited": strconv.Itoa(credited)}}
}

func release(to, from string, a, b int) ledger.Entry {
	return ledger.Entry{Kind: ledger.KindFeedReleased, Agreement: "ag1", Subject: "release--" + to + strconv.Itoa(b), Time: t0,
		Attrs: map[string]string{"recipient": to, "contributor": from, "from": strconv.Itoa(a), "to": strconv.Itoa(b)}}
}

func handover(kind ledger.Kind, actor string, step ...string) ledger.Entry {
	e := ledger.Entry{Kind: kind, Actor: actor, Agreement: "ag1", Subject: "handover--1", Time: t0, Parties: []string{"A", "B"}}
	if len(step) > 0 {
		e.Attrs = map[string]string{"step": step[0]}
	}
	return e
}

func TestReplay(t *testing.T) {
	signed := []ledger.Entry{agreementEntry("propose", "A"), agreementEntry("countersign", "B")}
	tests := []struct {
		name    string
		entries []ledger.Entry
		wantErr error
		check   func(t *testing.T, r *Replay)
	}{
		{"balances", append(signed, batch("A", 10), release("B", "A", 1, 10), batch("B", 3), batch("B", 0), release("A", "B", 1, 3)), nil,
			func(t *testing.T, r *Replay) {
				a := r.Agreements["ag1"]
				if a.Contributed["A"] != 10 || a.Contributed["B"] != 3 || a.Released["A"] != 3 || a.Released["B"] != 10 || !a.Countersigned {
					t.Fatalf("replayed %+v", a)
				}
			}},
		{"suspension and termination", append(signed, agreementEntry("suspend", "A"), agreementEntry("resume", "A"), agreementEntry("suspend", "B"), agreementEntry("terminate", "B")), nil,
			func(t *testing.T, r *Replay) {
				a := r.Agreements["ag1"]
				if len(a.SuspendedBy) != 1 || a.SuspendedBy[0] != "B" || !a.TerminationAt.Equal(t0) {
					t.Fatalf("replayed %+v", a)
				}
			}},
		{"release beyond contributions", append(signed, batch("A", 2), release("B", "A", 1, 3)), ErrInvariant, nil},
		{"release with a gap", append(signed, batch("A", 5), release("B", "A", 2, 3)), ErrInvariant, nil},
		{"release to oneself", append(signed, batch("A", 5), release("A", "A", 1, 3)), ErrInvariant, nil},
		{"contribution before countersigning", append(signed[:1], batch("A", 1)), ErrInvariant, nil},
		{"contribution by an outsider", append(signed, batch("C", 1)), ErrInvariant, nil},
		{"signature by an outsider", append(signed, agreementEntry("suspend", "C")), ErrInvariant, nil},
		{"credited is not a count", append(signed, ledger.Entry{Kind: ledger.KindFeedBatch, Actor: "A", Agreement: "ag1", Subject: "s", Time: t0,
			Attrs: map[string]string{"credited": "-1"}}), ErrInvariant, nil},
		{"handover released after both deposits", []ledger.Entry{handover(ledger.KindHandoverProposed, "A"), handover(ledger.KindHandoverProposed, "B", "accepted"),
			handover(ledger.KindHandoverDepositCommitted, "A"), handover(ledger.KindHandoverDepositCommitted, "B"), handover(ledger.KindHandoverReleased, "")}, nil,
			func(t *testing.T, r *Replay) {
				if h := r.Handovers["handover--1"]; h.Outcome != ledger.KindHandoverReleased {
					t.Fatalf("handover %+v", h)
				}
			}},
		// Issue 15: a deposit withdrawn and made again is a normal history.
		{"handover released after a withdrawal and a new deposit", []ledger.Entry{handover(ledger.KindHandoverProposed, "A"), handover(ledger.KindHandoverProposed, "B", "accepted"),
			handover(ledger.KindHandoverDepositCommitted, "A"), handover(ledger.KindHandoverWithdrawn, "A", "deposit_withdrawn"),
			handover(ledger.KindHandoverDepositCommitted, "A"), handover(ledger.KindHandoverDepositCommitted, "B"), handover(ledger.KindHandoverReleased, "")}, nil,
			func(t *testing.T, r *Replay) {
				if h := r.Handovers["handover--1"]; h.State != "released" || h.Outcome != ledger.KindHandoverReleased {
					t.Fatalf("handover %+v", h)
				}
			}},
		{"handover released after a deposit was withdrawn", []ledger.Entry{handover(ledger.KindHandoverProposed, "A"), handover(ledger.KindHandoverProposed, "B", "accepted"),
			handover(ledger.KindHandoverDepositCommitted, "A"), handover(ledger.KindHandoverDepositCommitted, "B"),
			handover(ledger.KindHandoverWithdrawn, "B", "deposit_withdrawn"), handover(ledger.KindHandoverReleased, "")}, ErrInvariant, nil},
		{"handover released with one deposit", []ledger.Entry{handover(ledger.KindHandoverDepositCommitted, "A"), handover(ledger.KindHandoverReleased, "")}, ErrInvariant, nil},
		{"handover expired then released", []ledger.Entry{handover(ledger.KindHandoverDepositCommitted, "A"), handover(ledger.KindHandoverDepositCommitted, "B"),
			handover(ledger.KindHandoverExpired, ""), handover(ledger.KindHandoverReleased, "")}, ErrInvariant, nil},
		{"double deposit", []ledger.Entry{handover(ledger.KindHandoverDepositCommitted, "A"), handover(ledger.KindHandoverDepositCommitted, "A")}, ErrInvariant, nil},
		{"genesis entries are counted, not accounted", []ledger.Entry{{Kind: ledger.KindFeedBatch, Subject: "genesis--c", Time: t0,
			Attrs: map[string]string{"genesis": "true", "added": "4"}}}, nil,
			func(t *testing.T, r *Replay) {
				if r.Genesis != 1 || len(r.Agreements) != 0 {
					t.Fatalf("genesis %d, agreements %d", r.Genesis, len(r.Agreements))
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReplay()
			var err error
			for i, e := range tc.entries {
				if err = r.Apply(int64(i), nil, e); err != nil {
					break
				}
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	r := NewReplay()
	for i, e := range []ledger.Entry{agreementEntry("propose", "A"), agreementEntry("countersign", "B"), batch("A", 10),
		release("B", "A", 1, 10), batch("B", 4), release("A", "B", 1, 4)} {
		if err := r.Apply(int64(i), nil, e); err != nil {
			t.Fatal(err)
		}
	}
	good := client.Balance{Contributed: 10, Available: 4, Released: 4}
	tests := []struct {
		name  string
		ags   []client.Agreement
		bal   client.Balance
		wantE bool
	}{
		{"agrees", []client.Agreement{{ID: "ag1", Phase: "active"}}, good, false},
		{"inflated contribution", []client.Agreement{{ID: "ag1", Phase: "active"}}, client.Balance{Contributed: 11, Available: 4, Released: 4}, true},
		{"hidden counterpart contribution", []client.Agreement{{ID: "ag1", Phase: "active"}}, client.Balance{Contributed: 10, Available: 3, Released: 4}, true},
		{"release not in the ledger", []client.Agreement{{ID: "ag1", Phase: "active"}}, client.Balance{Contributed: 10, Available: 4, Released: 5}, true},
		{"terminated without an entry", []client.Agreement{{ID: "ag1", Phase: "terminated"}}, good, true},
		{"suspended without an entry", []client.Agreement{{ID: "ag1", Phase: "suspended"}}, good, true},
		{"agreement missing from the API", nil, good, true},
		{"agreement missing from the ledger", []client.Agreement{{ID: "ag1", Phase: "active"}, {ID: "ag2", Phase: "proposed"}}, good, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bals := map[string]*client.Balance{}
			for _, a := range tc.ags {
				b := tc.bal
				bals[a.ID] = &b
			}
			err := compare("A", r, tc.ags, bals, t0)
			if (err != nil) != tc.wantE || (err != nil && !errors.Is(err, ErrMismatch)) {
				t.Fatalf("compare = %v, want error %v", err, tc.wantE)
			}
		})
	}
}

func TestReceiptsFile(t *testing.T) {
	st := State{Dir: filepath.Join(t.TempDir(), "ledger", "p")}
	if rs, err := st.Receipts(); err != nil || len(rs) != 0 {
		t.Fatalf("empty state: %v, %v", rs, err)
	}
	for _, i := range []int64{7, 3, 7} {
		if err := st.RecordReceipt(Receipt{Index: i, Party: "A"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RecordReceipt(Receipt{Index: -1}); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("negative receipt: %v", err)
	}
	rs, err := st.Receipts()
	if err != nil || len(rs) != 2 || rs[0].Index != 3 || rs[1].Index != 7 {
		t.Fatalf("receipts = %+v, %v", rs, err)
	}
	h := ledger.ReceiptFor(3, []byte("x")).Hash
	rs[0].Hash = &h
	if err := st.saveReceipts(rs); err != nil {
		t.Fatal(err)
	}
	// A later unpinned duplicate does not unpin the hash.
	if err := st.RecordReceipt(Receipt{Index: 3}); err != nil {
		t.Fatal(err)
	}
	rs, err = st.Receipts()
	if err != nil || rs[0].Hash == nil || *rs[0].Hash != h {
		t.Fatalf("pinned hash lost: %+v, %v", rs, err)
	}
}

func TestPinWitness(t *testing.T) {
	st := State{Dir: t.TempDir()}
	_, vkey, err := ledger.GenerateWitnessKey("w1")
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ledger.GenerateWitnessKey("w1")
	if name, err := st.PinWitness(vkey); err != nil || name != "w1" {
		t.Fatalf("pin: %q, %v", name, err)
	}
	if _, err := st.PinWitness(vkey); err != nil {
		t.Fatalf("pinning again: %v", err)
	}
	if _, err := st.PinWitness(other); !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("another key under the same name: %v", err)
	}
	if _, err := st.PinWitness("w1+00000000+AAAA"); !errors.Is(err, ledger.ErrMalformed) {
		t.Fatalf("malformed key: %v", err)
	}
}

// fakeAPI answers with fixed agreements and balances.
type fakeAPI struct {
	ags  []client.Agreement
	bals map[string]client.Balance
}

func (f fakeAPI) Agreements(context.Context) ([]client.Agreement, error) { return f.ags, nil }
func (f fakeAPI) Balance(_ context.Context, id string) (*client.Balance, error) {
	b := f.bals[id]
	return &b, nil
}

// TestVerifyLocal runs Verify over an in-memory log: TOFU pinning, an
// explicit key mismatch, a receipt, a lying API, and a later rollback.
func TestVerifyLocal(t *testing.T) {
	ctx := context.Background()
	mem := ledger.NewMemStore()
	skey, vkey, err := ledger.GenerateSignerKey("test-log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	appendAndSign := func(es ...ledger.Entry) {
		t.Helper()
		if err := mem.Update(ctx, func(st ledger.Store) error {
			if _, err := ledger.Append(ctx, st, es...); err != nil {
				return err
			}
			_, _, err := ledger.NewCheckpoint(ctx, st, signer)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	appendAndSign(agreementEntry("propose", "A"), agreementEntry("countersign", "B"), batch("A", 5), release("B", "A", 1, 5))
	api := fakeAPI{ags: []client.Agreement{{ID: "ag1", Phase: "active"}}, bals: map[string]client.Balance{"ag1": {Contributed: 5}}}
	st := State{Dir: t.TempDir()}
	if err := st.RecordReceipt(Receipt{Index: 0, Party: "A", Kind: ledger.KindAgreementProposed}); err != nil {
		t.Fatal(err)
	}
	opt := Options{State: st, Remote: ledger.NewLocalRemote(mem), API: api, Party: "A",
		FetchKey: func(context.Context) (string, error) { return vkey, nil }}
	rep, err := Verify(ctx, opt)
	if err != nil || rep.Err() != nil || !rep.Pinned || rep.Size != 4 {
		t.Fatalf("first verify: %+v, %v, %v", rep, err, rep.Err())
	}
	if rs, _ := st.Receipts(); rs[0].Hash == nil {
		t.Fatal("receipt hash not pinned after a successful proof")
	}
	// An explicit key other than the pinned one is refused.
	_, other, _ := ledger.GenerateSignerKey("test-log")
	bad := opt
	bad.LogKey = other
	if rep, _ := Verify(ctx, bad); !errors.Is(rep.Err(), ErrKeyChanged) {
		t.Fatalf("other explicit key: %v", rep.Err())
	}
	// The API claims a release the ledger does not hold.
	lying := opt
	lying.API = fakeAPI{ags: api.ags, bals: map[string]client.Balance{"ag1": {Contributed: 5, Released: 2}}}
	if rep, _ := Verify(ctx, lying); !errors.Is(rep.Err(), ErrMismatch) {
		t.Fatalf("lying API: %v", rep.Err())
	}
	// A receipt for an entry about someone else.
	st2 := State{Dir: t.TempDir()}
	st2.RecordReceipt(Receipt{Index: 2, Party: "B"})
	o2 := opt
	o2.State = st2
	if rep, _ := Verify(ctx, o2); !errors.Is(rep.Err(), ErrReceipt) {
		t.Fatalf("foreign receipt: %v", rep.Err())
	}
	// The log grows consistently, then a fresh log of smaller size is a rollback.
	appendAndSign(batch("A", 1))
	api.bals["ag1"] = client.Balance{Contributed: 6}
	if rep, _ := Verify(ctx, opt); rep.Err() != nil || rep.Previous != 4 || rep.Size != 5 {
		t.Fatalf("grown log: %+v %v", rep, rep.Err())
	}
	small := ledger.NewMemStore()
	if err := small.Update(ctx, func(s ledger.Store) error {
		if _, err := ledger.Append(ctx, s, agreementEntry("propose", "A")); err != nil {
			return err
		}
		_, _, err := ledger.NewCheckpoint(ctx, s, signer)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rb := opt
	rb.Remote = ledger.NewLocalRemote(small)
	if rep, _ := Verify(ctx, rb); !errors.Is(rep.Err(), ledger.ErrRollback) {
		t.Fatalf("rollback: %v", rep.Err())
	}
}

// FuzzReplay feeds arbitrary entries (as a server could serve them) to the
// replay: it never panics, and whatever it accepts keeps its invariant —
// no recipient was released more than its counterpart contributed.
func FuzzReplay(f *testing.F) {
	for _, e := range []ledger.Entry{agreementEntry("propose", "A"), agreementEntry("countersign", "B"), batch("A", 3), release("B", "A", 1, 3),
		handover(ledger.KindHandoverDepositCommitted, "A"), handover(ledger.KindHandoverReleased, "")} {
		b, _ := e.Encode()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReplay()
		// Feed the seed history first so the fuzzed entry meets real state.
		for i, e := range []ledger.Entry{agreementEntry("propose", "A"), agreementEntry("countersign", "B"), batch("A", 3), batch("B", 2)} {
			if err := r.Apply(int64(i), nil, e); err != nil {
				t.Fatal(err)
			}
		}
		e, err := ledger.DecodeEntry(data)
		if err != nil {
			return
		}
		if err := r.Apply(4, data, e); err != nil {
			if !errors.Is(err, ErrInvariant) {
				t.Fatalf("replay error without a sentinel: %v", err)
			}
			return
		}
		for _, a := range r.Agreements {
			for rcpt, n := range a.Released {
				if other := a.Counterpart(rcpt); n > a.Contributed[other] {
					t.Fatalf("accepted a release of %d to %s beyond %d contributed", n, rcpt, a.Contributed[other])
				}
			}
		}
		for _, h := range r.Handovers {
			if h.Outcome == ledger.KindHandoverReleased && len(h.Depositors) < 2 {
				t.Fatalf("accepted a one-sided handover release: %+v", h)
			}
		}
	})
}

// TestCompareTerminationNotice: a termination takes effect after the
// agreement's notice period, so the API may call it terminating until then
// — but no longer than the longest notice its documents set allows, and
// never once its own termination time has passed.
func TestCompareTerminationNotice(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "agreement", "testdata", "example-agreement.json")) // notice 720h
	if err != nil {
		t.Fatal(err)
	}
	terminate := agreementEntry("terminate", "B")
	terminate.Time = t0.Add(-time.Hour)
	terminate.Attrs["effective_at"] = terminate.Time.Format(time.RFC3339Nano)
	r := NewReplay()
	for i, e := range []ledger.Entry{agreementEntry("propose", "A"), agreementEntry("countersign", "B"), terminate} {
		if e.Time.After(terminate.Time) {
			e.Time = terminate.Time
		}
		if err := r.Apply(int64(i), nil, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		phase string
		at    time.Time
		wantE bool
	}{
		{"terminating within the notice", "terminating", terminate.Time.Add(720 * time.Hour), false},
		{"terminating, dated up to the clock bound later", "terminating", terminate.Time.Add(720*time.Hour + 2*time.Minute), false},
		{"terminating beyond any notice", "terminating", terminate.Time.Add(800 * time.Hour), true},
		{"terminating though its time has passed", "terminating", t0.Add(-time.Minute), true},
		{"terminating with no time", "terminating", time.Time{}, true},
		{"active", "active", terminate.Time.Add(720 * time.Hour), true},
		{"terminated", "terminated", terminate.Time, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ag := client.Agreement{ID: "ag1", Phase: tc.phase, Versions: []json.RawMessage{doc}}
			if !tc.at.IsZero() {
				ag.TerminationAt = tc.at.Format(time.RFC3339Nano)
			}
			err := compare("A", r, []client.Agreement{ag}, map[string]*client.Balance{"ag1": {}}, t0)
			if (err != nil) != tc.wantE || (err != nil && !errors.Is(err, ErrMismatch)) {
				t.Fatalf("compare = %v, want error %v", err, tc.wantE)
			}
		})
	}
}
