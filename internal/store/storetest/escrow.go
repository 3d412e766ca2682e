package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// esc returns h: the handover, request and event stores are part of every
// Handle.
func esc(t *testing.T, h store.Handle) store.Handle {
	t.Helper()
	return h
}

// escrowFixture makes two parties and an agreement between them.
func escrowFixture(t *testing.T, st store.Store) (store.Handle, store.Party, store.Party, string) {
	t.Helper()
	e := esc(t, st)
	x := ext(t, st)
	a, b := mustParty(t, st, "alpha"), mustParty(t, st, "bravo")
	ag := "agreement--00000000-0000-4000-8000-000000000001"
	if err := x.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return e, a, b, ag
}

func testHandovers(t *testing.T, st store.Store) {
	e, a, b, ag := escrowFixture(t, st)
	h := store.Handover{ID: "handover--1", AgreementID: ag, Proposer: a.ID, Counterpart: b.ID, ProposerDelivers: "dossier X",
		CounterpartDelivers: "dossier Y", Deadline: t0.Add(time.Hour), State: store.HandoverProposed, CreatedAt: t0}
	if err := e.Handovers().Create(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := e.Handovers().Create(ctx, h); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate handover: %v", err)
	}
	bad := h
	bad.ID, bad.AgreementID = "handover--2", "agreement--ghost"
	if err := e.Handovers().Create(ctx, bad); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("handover of unknown agreement: %v", err)
	}
	got, err := e.Handovers().Get(ctx, h.ID)
	if err != nil || got != h {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, h)
	}
	if _, err := e.Handovers().Get(ctx, "handover--nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get unknown: %v", err)
	}
	h.State, h.DecidedAt, h.NearNotified = store.HandoverAccepted, t0.Add(time.Minute), true
	if err := e.Handovers().Update(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Handovers().Get(ctx, h.ID); got != h {
		t.Fatalf("after Update: %+v, want %+v", got, h)
	}
	if err := e.Handovers().Update(ctx, store.Handover{ID: "handover--nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update unknown: %v", err)
	}
	for _, p := range []string{a.ID, b.ID} {
		list, err := e.Handovers().ListByParty(ctx, p, "")
		if err != nil || len(list) != 1 || list[0].ID != h.ID {
			t.Fatalf("ListByParty(%s) = %+v, %v", p, list, err)
		}
	}
	if list, err := e.Handovers().ListByParty(ctx, a.ID, "agreement--other"); err != nil || len(list) != 0 {
		t.Fatalf("ListByParty of another agreement = %+v, %v", list, err)
	}

	content := []byte(`{"type":"bundle"}`)
	d := store.Deposit{HandoverID: h.ID, PartyID: a.ID, Content: content, SHA256: sha256.Sum256(content), Objects: 3, DepositedAt: t0.Add(2 * time.Minute), LedgerIndex: 7}
	if err := e.Handovers().PutDeposit(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := e.Handovers().PutDeposit(ctx, d); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second deposit by one party: %v", err)
	}
	ghost := d
	ghost.HandoverID = "handover--nope"
	if err := e.Handovers().PutDeposit(ctx, ghost); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deposit in unknown case: %v", err)
	}
	gd, err := e.Handovers().Deposit(ctx, h.ID, a.ID)
	if err != nil || string(gd.Content) != string(content) || gd.SHA256 != d.SHA256 || gd.Objects != 3 || gd.LedgerIndex != 7 || !gd.DepositedAt.Equal(d.DepositedAt) || gd.Sealed {
		t.Fatalf("Deposit = %+v, %v", gd, err)
	}
	sealed := store.Deposit{HandoverID: h.ID, PartyID: b.ID, Sealed: true, Content: []byte("age..."), SHA256: sha256.Sum256([]byte("age...")), DepositedAt: t0.Add(3 * time.Minute),
		Manifest: []byte(`{"objects":3}`)}
	if err := e.Handovers().PutDeposit(ctx, sealed); err != nil {
		t.Fatal(err)
	}
	ds, err := e.Handovers().Deposits(ctx, h.ID)
	if err != nil || len(ds) != 2 || ds[0].PartyID != a.ID || ds[1].PartyID != b.ID || !ds[1].Sealed || ds[0].Content != nil {
		t.Fatalf("Deposits = %+v, %v", ds, err)
	}
	if ds[0].Manifest != nil || string(ds[1].Manifest) != `{"objects":3}` {
		t.Fatalf("manifests = %q, %q; want none and the one stored", ds[0].Manifest, ds[1].Manifest)
	}
	if err := e.Handovers().SetDispute(ctx, h.ID, b.ID, "not what was promised", []byte(`{"sig":"x"}`), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.Handovers().SetDispute(ctx, h.ID, b.ID, "again", nil, t0.Add(time.Hour)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second dispute: %v", err)
	}
	if err := e.Handovers().SetDispute(ctx, "handover--nope", b.ID, "x", nil, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("dispute of missing deposit: %v", err)
	}
	if gd, _ := e.Handovers().Deposit(ctx, h.ID, b.ID); gd.Dispute != "not what was promised" || !gd.DisputedAt.Equal(t0.Add(time.Hour)) ||
		string(gd.DisputeStatement) != `{"sig":"x"}` || string(gd.Manifest) != `{"objects":3}` {
		t.Fatalf("after dispute: %+v", gd)
	}
	if ok, err := e.Handovers().DeleteDeposit(ctx, h.ID, a.ID); !ok || err != nil {
		t.Fatalf("DeleteDeposit = %v, %v", ok, err)
	}
	if ok, err := e.Handovers().DeleteDeposit(ctx, h.ID, a.ID); ok || err != nil {
		t.Fatalf("DeleteDeposit twice = %v, %v", ok, err)
	}
	if _, err := e.Handovers().Deposit(ctx, h.ID, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted deposit: %v", err)
	}
}

func testHandoversDue(t *testing.T, st store.Store) {
	e, a, b, ag := escrowFixture(t, st)
	mk := func(id string, deadline time.Duration, state string, near bool) {
		h := store.Handover{ID: id, AgreementID: ag, Proposer: a.ID, Counterpart: b.ID, Deadline: t0.Add(deadline), State: state, CreatedAt: t0, NearNotified: near}
		if err := e.Handovers().Create(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	mk("handover--past", time.Minute, store.HandoverAccepted, true)
	mk("handover--past-proposed", 2*time.Minute, store.HandoverProposed, false)
	mk("handover--released", time.Minute, store.HandoverReleased, false)
	mk("handover--near", 30*time.Minute, store.HandoverAccepted, false)
	mk("handover--near-told", 30*time.Minute, store.HandoverAccepted, true)
	mk("handover--far", 10*time.Hour, store.HandoverAccepted, false)
	due, err := e.Handovers().Due(ctx, t0.Add(5*time.Minute), t0.Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range due {
		ids = append(ids, h.ID)
	}
	want := []string{"handover--past", "handover--past-proposed", "handover--near"}
	if !slices.Equal(ids, want) {
		t.Fatalf("Due = %v, want %v", ids, want)
	}
	if due, _ := e.Handovers().Due(ctx, t0.Add(5*time.Minute), t0.Add(time.Hour), 1); len(due) != 1 || due[0].ID != "handover--past" {
		t.Fatalf("Due with limit 1 = %+v", due)
	}
}

// testDepositRollsBack: a deposit and the state change beside it commit
// together or not at all, which release-to-both-or-neither rests on.
func testDepositRollsBack(t *testing.T, st store.Store) {
	e, a, b, ag := escrowFixture(t, st)
	h := store.Handover{ID: "handover--1", AgreementID: ag, Proposer: a.ID, Counterpart: b.ID, Deadline: t0.Add(time.Hour), State: store.HandoverAccepted, CreatedAt: t0}
	if err := e.Handovers().Create(ctx, h); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := st.Update(ctx, func(tx store.Handle) error {
		te := esc(t, tx)
		if err := te.Handovers().PutDeposit(ctx, store.Deposit{HandoverID: h.ID, PartyID: a.ID, Content: []byte("x"), DepositedAt: t0}); err != nil {
			return err
		}
		h2 := h
		h2.State = store.HandoverReleased
		if err := te.Handovers().Update(ctx, h2); err != nil {
			return err
		}
		if _, err := te.Events().Append(ctx, store.Event{PartyID: b.ID, Kind: "handover.released", Subject: h.ID, At: t0}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if got, _ := e.Handovers().Get(ctx, h.ID); got.State != store.HandoverAccepted {
		t.Fatalf("state after rollback: %s", got.State)
	}
	if ds, _ := e.Handovers().Deposits(ctx, h.ID); len(ds) != 0 {
		t.Fatalf("deposits after rollback: %+v", ds)
	}
	if seq, err := e.Events().Append(ctx, store.Event{PartyID: b.ID, Kind: "k", Subject: "s", At: t0}); err != nil || seq != 1 {
		t.Fatalf("first event after a rolled-back one: seq %d, %v; want 1", seq, err)
	}
}

func testRequests(t *testing.T, st store.Store) {
	e, a, b, ag := escrowFixture(t, st)
	r := store.Request{ID: "request--1", AgreementID: ag, Requester: a.ID, Responder: b.ID, Subject: "crew X", Refs: []string{"threat-actor--1", "alias:xx"},
		Reason: "investigation 42", Urgency: "high", State: store.RequestFiled, FiledAt: t0, AckBy: t0.Add(time.Hour), FulfilBy: t0.Add(10 * time.Hour)}
	if err := e.Requests().Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := e.Requests().Create(ctx, r); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate request: %v", err)
	}
	ghost := r
	ghost.ID, ghost.Responder = "request--2", "party--ghost"
	if err := e.Requests().Create(ctx, ghost); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("request to unknown party: %v", err)
	}
	got, err := e.Requests().Get(ctx, r.ID)
	if err != nil || !slices.Equal(got.Refs, r.Refs) || got.Subject != r.Subject || !got.AckBy.Equal(r.AckBy) || got.State != store.RequestFiled {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := e.Requests().Get(ctx, "request--nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get unknown: %v", err)
	}
	r.State, r.AnsweredAt, r.Ground, r.GroundText, r.AckOverdue = store.RequestRefused, t0.Add(2*time.Hour), "other", "text", true
	if err := e.Requests().Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, _ = e.Requests().Get(ctx, r.ID)
	if got.State != store.RequestRefused || got.Ground != "other" || got.GroundText != "text" || !got.AckOverdue || !got.AnsweredAt.Equal(r.AnsweredAt) {
		t.Fatalf("after Update: %+v", got)
	}
	if err := e.Requests().Update(ctx, store.Request{ID: "request--nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update unknown: %v", err)
	}
	r2 := store.Request{ID: "request--3", AgreementID: ag, Requester: b.ID, Responder: a.ID, Subject: "wallets", State: store.RequestFiled,
		FiledAt: t0.Add(time.Minute), AckBy: t0.Add(time.Hour), FulfilBy: t0.Add(10 * time.Hour)}
	if err := e.Requests().Create(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Requests().Get(ctx, r2.ID); got.Refs == nil || len(got.Refs) != 0 {
		t.Fatalf("nil refs read back as %#v, want empty", got.Refs)
	}
	list, err := e.Requests().ListByParty(ctx, a.ID, ag)
	if err != nil || len(list) != 2 || list[0].ID != r2.ID {
		t.Fatalf("ListByParty = %+v, %v", list, err)
	}
	list, err = e.Requests().ListByAgreement(ctx, ag)
	if err != nil || len(list) != 2 || list[0].ID != r.ID {
		t.Fatalf("ListByAgreement = %+v, %v", list, err)
	}
	// Due: r is answered (never due); r2 is filed.
	for _, tc := range []struct {
		before, near time.Duration
		want         int
	}{
		{30 * time.Minute, 30 * time.Minute, 0},
		{30 * time.Minute, 2 * time.Hour, 1}, // ack deadline near
		{2 * time.Hour, 2 * time.Hour, 1},    // ack deadline passed
	} {
		due, err := e.Requests().Due(ctx, t0.Add(tc.before), t0.Add(tc.near), 10)
		if err != nil || len(due) != tc.want {
			t.Fatalf("Due(%v, %v) = %+v, %v; want %d", tc.before, tc.near, due, err, tc.want)
		}
	}
	r2.AckOverdue, r2.NearNotified = true, true
	if err := e.Requests().Update(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if due, _ := e.Requests().Due(ctx, t0.Add(2*time.Hour), t0.Add(2*time.Hour), 10); len(due) != 0 {
		t.Fatalf("flagged request still due: %+v", due)
	}
	if due, _ := e.Requests().Due(ctx, t0.Add(11*time.Hour), t0.Add(11*time.Hour), 10); len(due) != 1 {
		t.Fatalf("answer deadline passed: %+v", due)
	}
	// Closed undelivered (between nodes), r2 is never due again, its
	// answer deadline passed or not.
	r2.State, r2.Ground, r2.GroundText = store.RequestUndelivered, "not_in_force", "suspended there"
	if err := e.Requests().Update(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Requests().Get(ctx, r2.ID); got.State != store.RequestUndelivered || got.Ground != "not_in_force" || got.GroundText != "suspended there" {
		t.Fatalf("undelivered read back as %+v", got)
	}
	if due, _ := e.Requests().Due(ctx, t0.Add(11*time.Hour), t0.Add(11*time.Hour), 10); len(due) != 0 {
		t.Fatalf("an undelivered request is due: %+v", due)
	}
}

func testEvents(t *testing.T, st store.Store) {
	e, a, b, _ := escrowFixture(t, st)
	for i := 1; i <= 3; i++ {
		seq, err := e.Events().Append(ctx, store.Event{PartyID: a.ID, Kind: "k", Subject: fmt.Sprint(i), Data: []byte(`{"n":1}`), At: t0})
		if err != nil || seq != int64(i) {
			t.Fatalf("Append %d = %d, %v", i, seq, err)
		}
	}
	if seq, err := e.Events().Append(ctx, store.Event{PartyID: b.ID, Kind: "k", Subject: "b", At: t0}); err != nil || seq != 1 {
		t.Fatalf("other party's first event = %d, %v", seq, err)
	}
	if _, err := e.Events().Append(ctx, store.Event{PartyID: "party--ghost", Kind: "k", Subject: "x", At: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("event for unknown party: %v", err)
	}
	evs, err := e.Events().After(ctx, a.ID, 1, 10)
	if err != nil || len(evs) != 2 || evs[0].Seq != 2 || evs[1].Subject != "3" || string(evs[0].Data) != `{"n":1}` || !evs[0].At.Equal(t0) {
		t.Fatalf("After = %+v, %v", evs, err)
	}
	if evs, err := e.Events().After(ctx, a.ID, 0, 1); err != nil || len(evs) != 1 || evs[0].Seq != 1 {
		t.Fatalf("After with limit = %+v, %v", evs, err)
	}
	if evs, err := e.Events().After(ctx, b.ID, 1, 10); err != nil || len(evs) != 0 {
		t.Fatalf("After the end = %+v, %v", evs, err)
	}
	if evs, err := e.Events().Before(ctx, a.ID, 0, 2); err != nil || len(evs) != 2 || evs[0].Seq != 3 || evs[1].Seq != 2 || evs[0].Subject != "3" || !evs[0].At.Equal(t0) {
		t.Fatalf("Before from the end = %+v, %v", evs, err)
	}
	if evs, err := e.Events().Before(ctx, a.ID, 2, 10); err != nil || len(evs) != 1 || evs[0].Seq != 1 {
		t.Fatalf("Before 2 = %+v, %v", evs, err)
	}
	if evs, err := e.Events().Before(ctx, a.ID, 1, 10); err != nil || len(evs) != 0 {
		t.Fatalf("Before the start = %+v, %v", evs, err)
	}
	if evs, err := e.Events().Before(ctx, "party--ghost", 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("Before for a party without events = %+v, %v", evs, err)
	}
	// Concurrent appends never share a number.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			err := st.Update(ctx, func(tx store.Handle) error {
				_, err := esc(t, tx).Events().Append(ctx, store.Event{PartyID: b.ID, Kind: "k", Subject: "c", At: t0})
				return err
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	evs, err = e.Events().After(ctx, b.ID, 0, 100)
	if err != nil || len(evs) != 21 {
		t.Fatalf("after concurrent appends: %d events, %v", len(evs), err)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
	}
}
