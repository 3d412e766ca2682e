package request_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange/exchangetest"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

var ctx = context.Background()

type fixture struct {
	*exchangetest.Fixture
	s *request.Service
	h *escrow.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{Fixture: exchangetest.New(t, db, nil)}
	f.s, f.h = request.New(db, f.Ex), escrow.New(db, f.Ex)
	f.s.SetClock(f.Clock())
	f.h.SetClock(f.Clock())
	return f
}

// file files a request of A's to B.
func (f *fixture) file() store.Request {
	f.T.Helper()
	r, err := f.s.File(ctx, f.A.P, request.FileInput{AgreementID: f.AgreementID, Subject: "crew X", Reason: "case 1"})
	if err != nil {
		f.T.Fatal(err)
	}
	return r.Request
}

func (f *fixture) refuses(name string, size int64, err, want error) {
	f.T.Helper()
	if !errors.Is(err, want) {
		f.T.Errorf("%s: %v, want %v", name, err, want)
	}
	if got := f.LedgerSize(); got != size {
		f.T.Errorf("%s: the refused step left %d ledger entries", name, got-size)
	}
}

func TestFileRefuses(t *testing.T) {
	f := newFixture(t)
	ok := request.FileInput{AgreementID: f.AgreementID, Subject: "s", Reason: "r"}
	for _, tc := range []struct {
		name string
		p    party.Principal
		in   request.FileInput
		want error
	}{
		{"no subject", f.A.P, request.FileInput{AgreementID: f.AgreementID, Reason: "r"}, request.ErrInvalid},
		{"unknown urgency", f.A.P, request.FileInput{AgreementID: f.AgreementID, Subject: "s", Reason: "r", Urgency: "now!"}, request.ErrInvalid},
		{"too many refs", f.A.P, request.FileInput{AgreementID: f.AgreementID, Subject: "s", Reason: "r", Refs: make([]string, request.MaxRefs+1)}, request.ErrInvalid},
		{"no such agreement", f.A.P, request.FileInput{AgreementID: "agreement--missing", Subject: "s", Reason: "r"}, request.ErrNotFound},
		{"an outsider to the agreement", f.Outsider.P, ok, request.ErrNotFound},
	} {
		size := f.LedgerSize()
		_, err := f.s.File(ctx, tc.p, tc.in)
		f.refuses(tc.name, size, err, tc.want)
	}
	f.Step(f.A, agreement.ActionTerminate)
	size := f.LedgerSize()
	_, err := f.s.File(ctx, f.A.P, ok)
	f.refuses("under a terminated agreement", size, err, request.ErrForbidden)
}

// TestAnswerHostile: only the responder answers, only once, and only with
// a handover of the same agreement that names the request.
func TestAnswerHostile(t *testing.T) {
	f := newFixture(t)
	r := f.file()
	unrelated, err := f.h.Propose(ctx, f.B.P, escrow.ProposeInput{AgreementID: f.AgreementID, Delivers: "x", Expects: "y"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func() error
		want error
	}{
		{"outsider acknowledges", func() error { _, err := f.s.Acknowledge(ctx, f.Outsider.P, r.ID); return err }, request.ErrNotFound},
		{"outsider reads", func() error { _, err := f.s.Get(ctx, f.Outsider.P, r.ID); return err }, request.ErrNotFound},
		{"outsider's stats", func() error { _, err := f.s.Stats(ctx, f.Outsider.P, f.AgreementID); return err }, request.ErrNotFound},
		{"no such request", func() error { _, err := f.s.Acknowledge(ctx, f.B.P, "request--missing"); return err }, request.ErrNotFound},
		{"requester acknowledges its own request", func() error { _, err := f.s.Acknowledge(ctx, f.A.P, r.ID); return err }, request.ErrForbidden},
		{"requester refuses its own request", func() error { _, err := f.s.Refuse(ctx, f.A.P, r.ID, request.GroundNoDataHeld, ""); return err }, request.ErrForbidden},
		{"refusal without ground", func() error { _, err := f.s.Refuse(ctx, f.B.P, r.ID, "", ""); return err }, request.ErrInvalid},
		{"unknown ground", func() error { _, err := f.s.Refuse(ctx, f.B.P, r.ID, "bored", ""); return err }, request.ErrInvalid},
		{"other without text", func() error { _, err := f.s.Refuse(ctx, f.B.P, r.ID, request.GroundOther, " "); return err }, request.ErrInvalid},
		{"fulfil with no such handover", func() error { _, err := f.s.Fulfil(ctx, f.B.P, r.ID, "handover--missing"); return err }, request.ErrInvalid},
		{"fulfil with a handover not naming it", func() error { _, err := f.s.Fulfil(ctx, f.B.P, r.ID, unrelated.Handover.ID); return err }, request.ErrInvalid},
	} {
		size := f.LedgerSize()
		f.refuses(tc.name, size, tc.run(), tc.want)
	}
	if _, err := f.s.Acknowledge(ctx, f.B.P, r.ID); err != nil {
		t.Fatal(err)
	}
	size := f.LedgerSize()
	_, err = f.s.Acknowledge(ctx, f.B.P, r.ID)
	f.refuses("acknowledge twice", size, err, request.ErrConflict)
	if _, err := f.s.Refuse(ctx, f.B.P, r.ID, request.GroundNoDataHeld, ""); err != nil {
		t.Fatal(err)
	}
	size = f.LedgerSize()
	_, err = f.s.Refuse(ctx, f.B.P, r.ID, request.GroundNoDataHeld, "")
	f.refuses("refuse twice", size, err, request.ErrConflict)
	_, err = f.h.Propose(ctx, f.B.P, escrow.ProposeInput{AgreementID: f.AgreementID, Delivers: "x", Expects: "y", RequestID: r.ID})
	f.refuses("a handover answering a refused request", size, err, escrow.ErrConflict)
	if got := f.Events(f.A.P, r.ID); !slices.Equal(got, []string{request.EventAcknowledged, request.EventRefused}) {
		t.Fatalf("requester's events = %v", got)
	}
}

func bundle(i int) []byte {
	return []byte(fmt.Sprintf(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000001","objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.2.0.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}]}`, i, i))
}

// TestFulfilmentIsDelivery: naming a handover leaves the request pending;
// its failure reopens it, its release fulfils it.
func TestFulfilmentIsDelivery(t *testing.T) {
	f := newFixture(t)
	r := f.file()
	answer := func() store.Handover {
		t.Helper()
		h, err := f.h.Propose(ctx, f.B.P, escrow.ProposeInput{AgreementID: f.AgreementID, Delivers: "x", Expects: "receipt", RequestID: r.ID})
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.s.Fulfil(ctx, f.B.P, r.ID, h.Handover.ID)
		if err != nil || !request.Pending(res.Request) || res.Request.State != store.RequestFiled {
			t.Fatalf("fulfil with an open handover: %+v, %v; want pending", res.Request, err)
		}
		return h.Handover
	}
	declined := answer()
	size := f.LedgerSize()
	_, err := f.s.Fulfil(ctx, f.B.P, r.ID, declined.ID)
	f.refuses("name the pending handover again", size, err, request.ErrConflict)
	if _, err := f.h.Decide(ctx, f.A.P, declined.ID, false); err != nil {
		t.Fatal(err)
	}
	if got, err := f.s.Get(ctx, f.A.P, r.ID); err != nil || request.Pending(got) || got.HandoverID != "" {
		t.Fatalf("after the answering handover was declined: %+v, %v; want reopened", got, err)
	}
	size = f.LedgerSize()
	_, err = f.s.Fulfil(ctx, f.B.P, r.ID, declined.ID)
	f.refuses("fulfil with a declined handover", size, err, request.ErrConflict)

	h := answer()
	if _, err := f.h.Decide(ctx, f.A.P, h.ID, true); err != nil {
		t.Fatal(err)
	}
	for i, p := range []party.Principal{f.B.P, f.A.P} {
		if _, err := f.h.Deposit(ctx, p, h.ID, escrow.DepositInput{Content: bundle(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.s.Get(ctx, f.B.P, r.ID)
	if err != nil || got.State != store.RequestFulfilled || got.HandoverID != h.ID {
		t.Fatalf("after the release: %+v, %v; want fulfilled by %s", got, err, h.ID)
	}
	if ev := f.Events(f.A.P, r.ID); !slices.Contains(ev, request.EventReopened) || ev[len(ev)-1] != request.EventFulfilled {
		t.Fatalf("requester's events = %v", ev)
	}
}

// TestSweepFlagsOnce: an overdue acknowledgement is flagged once, with its
// ledger entry, however many sweeps pass.
func TestSweepFlagsOnce(t *testing.T) {
	f := newFixture(t)
	r := f.file()
	f.Advance(25 * time.Hour)
	size := f.LedgerSize()
	if n, err := f.s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d flagged, %v; want 1", n, err)
	}
	if n, err := f.s.Sweep(ctx); err != nil || n != 0 || f.LedgerSize() != size+1 {
		t.Fatalf("second sweep: %d flagged, %v, ledger +%d", n, err, f.LedgerSize()-size)
	}
	got, err := f.s.Get(ctx, f.B.P, r.ID)
	if err != nil || !got.AckOverdue || got.AnswerOverdue {
		t.Fatalf("after the sweep: %+v, %v", got, err)
	}
	if ev := strings.Join(f.Events(f.B.P, r.ID), " "); strings.Count(ev, request.EventOverdue) != 1 {
		t.Fatalf("responder's events: %s", ev)
	}
}
