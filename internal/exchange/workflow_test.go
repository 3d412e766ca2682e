package exchange_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

var errCaseNotFound = errors.New("no such case")

func TestWorkflowInAgreement(t *testing.T) {
	f := newFixture(t)
	ag := f.activate(nil)
	id := ag.Record.ID
	w := exchange.NewWorkflow(f.st, f.ex, errCaseNotFound)
	w.SetClock(func() time.Time { return f.now })
	stranger := party.Principal{PartyID: "party--stranger"}

	for _, tc := range []struct {
		name string
		p    party.Principal
		id   string
	}{{"no such agreement", f.a.p, "agreement--missing"}, {"a stranger", stranger, id}} {
		ran := false
		err := w.InAgreement(ctx, tc.p, tc.id, func(*exchange.Step) error { ran = true; return nil })
		if !errors.Is(err, errCaseNotFound) || ran {
			t.Errorf("%s: %v (step ran: %v), want the workflow's not-found sentinel and no step", tc.name, err, ran)
		}
	}

	events := func() int {
		es, err := f.st.Events().After(ctx, f.b.p.PartyID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	size := func() int64 {
		n, err := f.st.Ledger().Size(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before, beforeSize := events(), size()
	// A step that fails leaves neither its ledger entry nor its event.
	boom := errors.New("boom")
	err := w.InAgreement(ctx, f.a.p, id, func(st *exchange.Step) error {
		if st.Agreement.Record.ID != id || !st.Agreement.Status.InForce(st.Now) || !st.Now.Equal(f.now) {
			t.Errorf("step sees agreement %s (in force %v) at %v", st.Agreement.Record.ID, st.Agreement.Status.InForce(st.Now), st.Now)
		}
		if _, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindRequestFiled, Actor: f.a.p.PartyID, Agreement: id, Subject: "request--x",
			Time: st.Now, Parties: []string{f.a.p.PartyID, f.b.p.PartyID}}); err != nil {
			return err
		}
		if err := st.Notify(ctx, f.b.p.PartyID, "test.event", "x", map[string]any{"n": 1}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || events() != before || size() != beforeSize {
		t.Fatalf("failed step: %v, events %d→%d, ledger %d→%d; want boom and nothing kept", err, before, events(), beforeSize, size())
	}
	// One that succeeds keeps both.
	err = w.InAgreement(ctx, f.a.p, id, func(st *exchange.Step) error {
		if _, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindRequestFiled, Actor: f.a.p.PartyID, Agreement: id, Subject: "request--x",
			Time: st.Now, Parties: []string{f.a.p.PartyID, f.b.p.PartyID}}); err != nil {
			return err
		}
		return st.Notify(ctx, f.b.p.PartyID, "test.event", "x", map[string]any{"n": 1})
	})
	if err != nil || events() != before+1 || size() != beforeSize+1 {
		t.Fatalf("step: %v, events %d→%d, ledger %d→%d; want one more of each", err, before, events(), beforeSize, size())
	}
}

// TestWorkflowStepSeesStateAtLock: a suspension committed after a party's
// earlier read and before its step is what the step sees, since the
// agreement is read under the lock.
func TestWorkflowStepSeesStateAtLock(t *testing.T) {
	f := newFixture(t)
	ag := f.activate(nil)
	id := ag.Record.ID
	w := exchange.NewWorkflow(f.st, f.ex, errCaseNotFound)
	w.SetClock(func() time.Time { return f.now })
	if a, err := f.ex.Agreement(ctx, f.a.p, id); err != nil || !a.Status.InForce(f.now) {
		t.Fatalf("before: %v", err)
	}
	f.now = f.now.Add(time.Second)
	if _, _, err := f.ex.Sign(ctx, f.b.p, id, f.signDoc(f.b, ag.Status.Document, agreement.ActionSuspend)); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Second)
	err := w.InAgreement(ctx, f.a.p, id, func(st *exchange.Step) error {
		if st.Agreement.Status.InForce(st.Now) {
			t.Error("the step sees the agreement in force after its suspension")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWorkflowCaseSteps(t *testing.T) {
	f := newFixture(t)
	ag := f.activate(nil)
	w := exchange.NewWorkflow(f.st, f.ex, errCaseNotFound)
	refused := errors.New("not your case")
	err := w.OnCase(ctx, f.a.p, func(store.Handle) (string, error) { return "", refused }, func(*exchange.Step) error {
		t.Error("the step ran although find refused the case")
		return nil
	})
	if !errors.Is(err, refused) {
		t.Fatalf("OnCase with a refused case: %v", err)
	}
	var seen exchange.Agreement
	if err := w.OnCase(ctx, f.a.p, func(store.Handle) (string, error) { return ag.Record.ID, nil },
		func(st *exchange.Step) error { seen = st.Agreement; return nil }); err != nil || seen.Record.ID != ag.Record.ID {
		t.Fatalf("OnCase: %v, agreement %q", err, seen.Record.ID)
	}
	// The sweeper acts for nobody: it locks but reads no agreement.
	if err := w.SweepCase(ctx, func(store.Handle) (string, error) { return ag.Record.ID, nil },
		func(st *exchange.Step) error { seen = st.Agreement; return nil }); err != nil || seen.Record.ID != "" {
		t.Fatalf("SweepCase: %v, agreement %q", err, seen.Record.ID)
	}
	if err := w.SweepCase(ctx, func(store.Handle) (string, error) { return "agreement--missing", nil },
		func(*exchange.Step) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SweepCase on a missing agreement: %v, want store.ErrNotFound", err)
	}
}

// TestWorkflowRun: the shared sweeper loop sweeps until its context ends,
// and returns then.
func TestWorkflowRun(t *testing.T) {
	f := newFixture(t)
	w := exchange.NewWorkflow(f.st, f.ex, errCaseNotFound)
	w.SweepInterval = time.Millisecond
	c, cancel := context.WithCancel(ctx)
	defer cancel()
	n := 0
	done := make(chan struct{})
	go func() {
		w.Run(c, "test sweep", func(context.Context) (int, error) {
			if n++; n == 3 {
				cancel()
			}
			return 0, errors.New("logged, not fatal")
		})
		close(done)
	}()
	<-done
	if n != 3 {
		t.Fatalf("swept %d times, want 3 (until cancelled)", n)
	}
}
