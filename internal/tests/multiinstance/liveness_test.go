package multiinstance

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/psi"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/tests/e2e"
)

// stallAfter is how long a workflow may go without finishing a step
// before the test calls it stuck. It is a liveness bound, not a speed
// requirement: every step here takes milliseconds, and the machine is
// shared, so the bound is generous.
const stallAfter = 30 * time.Second

// TestWorkflowsLiveOnSmallPool runs every workflow at once against one
// server whose PostgreSQL pool has two connections: ingest under an
// agreement from both sides, handover steps (deposit, withdraw, re-deposit,
// release), request steps (file, acknowledge, answer, refuse), private
// matching, and reads (objects, balance, lists, readiness). A transaction
// that needs a second connection while holding the agreement's lock
// deadlocks here (issue 15: everything stopped within seconds). A
// watchdog fails the test when any workflow makes no progress for
// stallAfter, and every request must succeed.
func TestWorkflowsLiveOnSmallPool(t *testing.T) {
	db := pgSchemaURL(t)
	st, err := postgres.Open(ctx, db, postgres.Options{Migrate: true, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	base, srv := serveStore(t, st)
	a, b := newParty(t, srv, base, "alpha"), newParty(t, srv, base, "bravo")
	ag := activate(t, a, b, document(t, a, b, map[string]any{"ratio": "1:1", "grace": 1000}))
	ownA, theirsA := collections(t, a, ag.ID)
	ownB, _ := collections(t, b, ag.ID)

	// The watchdog cancels everything when a workflow stalls, so a
	// deadlock ends the test instead of hanging it.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type progress struct {
		name string
		last atomic.Int64 // unix nanoseconds of the last finished step
		n    atomic.Int64
	}
	var flows []*progress
	track := func(name string) *progress {
		p := &progress{name: name}
		p.last.Store(time.Now().UnixNano())
		flows = append(flows, p)
		return p
	}
	step := func(p *progress) { p.n.Add(1); p.last.Store(time.Now().UnixNano()) }

	var errMu sync.Mutex
	var errs []error
	fail := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
		cancel()
	}

	var wg sync.WaitGroup
	// Ingest: four writers per side, small batches, overlapping ids.
	for side, p := range []*e2e.Party{a, b} {
		own := []string{ownA, ownB}[side]
		for w := range 4 {
			pr := track(fmt.Sprintf("ingest %s/%d", p.Name, w))
			wg.Go(func() {
				for k := range 25 {
					from := side*1_000_000 + w*1000 + k*3
					if _, err := p.C.AddObjects(wctx, ag.ID, own, indicators(from, 5)); err != nil {
						fail(fmt.Errorf("%s: %w", pr.name, err))
						return
					}
					step(pr)
				}
			})
		}
	}
	// Handovers: propose, accept, deposit, withdraw, deposit again, the
	// other side deposits, released; and a declined one.
	for w := range 2 {
		pr := track(fmt.Sprintf("handover/%d", w))
		wg.Go(func() {
			for k := range 6 {
				if err := handoverRound(wctx, a, b, ag.ID, w*100+k, func() { step(pr) }); err != nil {
					fail(fmt.Errorf("%s round %d: %w", pr.name, k, err))
					return
				}
			}
		})
	}
	// Requests: file, acknowledge, answer through a handover; file,
	// refuse.
	{
		pr := track("request")
		wg.Go(func() {
			for k := range 6 {
				if err := requestRound(wctx, a, b, ag.ID, k, func() { step(pr) }); err != nil {
					fail(fmt.Errorf("%s round %d: %w", pr.name, k, err))
					return
				}
			}
		})
	}
	// Private matching, both sides.
	{
		pr := track("matching")
		wg.Go(func() {
			for k := range 2 {
				if err := matchRound(wctx, a, b, ag.ID, k); err != nil {
					fail(fmt.Errorf("%s round %d: %w", pr.name, k, err))
					return
				}
				step(pr)
			}
		})
	}
	// Reads: the counterpart's feed, balance, lists, readiness.
	{
		pr := track("reads")
		hc := &http.Client{}
		wg.Go(func() {
			for range 30 {
				for _, f := range []func() error{
					func() error { _, err := a.C.GetObjects(wctx, ag.ID, theirsA, client.Filter{Limit: 50}); return err },
					func() error { _, err := a.C.Balance(wctx, ag.ID); return err },
					func() error { _, err := b.C.Handovers(wctx, ag.ID); return err },
					func() error { _, err := b.C.Requests(wctx, ag.ID); return err },
					func() error { _, err := a.C.Agreement(wctx, ag.ID); return err },
					func() error { return ready(wctx, hc, base) },
				} {
					if err := f(); err != nil {
						fail(fmt.Errorf("%s: %w", pr.name, err))
						return
					}
					step(pr)
				}
			}
		})
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
watch:
	for {
		select {
		case <-done:
			break watch
		case <-tick.C:
			for _, p := range flows {
				if idle := time.Since(time.Unix(0, p.last.Load())); idle > stallAfter {
					var state []string
					for _, q := range flows {
						state = append(state, fmt.Sprintf("%s: %d steps, idle %s", q.name, q.n.Load(), time.Since(time.Unix(0, q.last.Load())).Round(time.Second)))
					}
					fail(fmt.Errorf("stalled: %s finished no step for %s (pool of 2 connections)\n%v", p.name, idle.Round(time.Second), state))
					<-done
					break watch
				}
			}
		}
	}
	// A workflow that finished is not stalled; one that failed says why.
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for _, p := range flows {
		if p.n.Load() == 0 {
			t.Errorf("%s made no step", p.name)
		}
	}
}

// newParty creates a party on srv and registers fresh keys through base.
func newParty(t testing.TB, srv *server.Server, base, name string) *e2e.Party {
	t.Helper()
	p, token, err := srv.Parties.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	c := clientFor(t, base, &e2e.Party{Token: token})
	keys, err := agreement.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterKeys(ctx, keys.Public()); err != nil {
		t.Fatal(err)
	}
	return &e2e.Party{ID: p.ID, Name: name, Token: token, Keys: keys, C: c}
}

func bundle(from, n int) []byte {
	objs := indicators(from, n)
	out := []byte(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000001","objects":[`)
	for i, o := range objs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, o...)
	}
	return append(out, "]}"...)
}

// handoverRound walks one case through every step, the withdrawal and
// re-deposit included, and declines a second case.
func handoverRound(ctx context.Context, a, b *e2e.Party, ag string, k int, step func()) error {
	h, err := a.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: ag, Delivers: "dossier X", Expects: "dossier Y"})
	if err != nil {
		return fmt.Errorf("propose: %w", err)
	}
	step()
	if _, err := b.C.AcceptHandover(ctx, h.ID); err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	step()
	if _, err := a.C.Deposit(ctx, h.ID, bundle(5_000_000+k*10, 2), client.DepositOptions{}); err != nil {
		return fmt.Errorf("deposit: %w", err)
	}
	step()
	if _, err := a.C.Withdraw(ctx, h.ID); err != nil {
		return fmt.Errorf("withdraw: %w", err)
	}
	step()
	if _, err := a.C.Deposit(ctx, h.ID, bundle(5_000_000+k*10, 3), client.DepositOptions{}); err != nil {
		return fmt.Errorf("re-deposit: %w", err)
	}
	step()
	res, err := b.C.Deposit(ctx, h.ID, bundle(6_000_000+k*10, 2), client.DepositOptions{})
	if err != nil {
		return fmt.Errorf("counterpart's deposit: %w", err)
	}
	if !res.Released {
		return fmt.Errorf("both deposited, case %s is %s", h.ID, res.Handover.State)
	}
	step()
	if _, err := b.C.FetchDeposit(ctx, h.ID, a.ID); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	step()
	d, err := b.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: ag, Delivers: "Z", Expects: "W"})
	if err != nil {
		return fmt.Errorf("propose: %w", err)
	}
	if _, err := a.C.DeclineHandover(ctx, d.ID); err != nil {
		return fmt.Errorf("decline: %w", err)
	}
	step()
	return nil
}

// requestRound files two requests: one answered through a handover, one
// refused.
func requestRound(ctx context.Context, a, b *e2e.Party, ag string, k int, step func()) error {
	r, err := a.C.FileRequest(ctx, client.NewRequest{Agreement: ag, Subject: fmt.Sprintf("subject %d", k), Reason: "investigation"})
	if err != nil {
		return fmt.Errorf("file: %w", err)
	}
	step()
	if _, err := b.C.AckRequest(ctx, r.ID); err != nil {
		return fmt.Errorf("acknowledge: %w", err)
	}
	step()
	h, err := b.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: ag, Delivers: "the answer", Expects: "receipt", Request: r.ID})
	if err != nil {
		return fmt.Errorf("answering handover: %w", err)
	}
	step()
	if _, err := a.C.AcceptHandover(ctx, h.ID); err != nil {
		return fmt.Errorf("accept the answer: %w", err)
	}
	step()
	if _, err := b.C.Deposit(ctx, h.ID, bundle(7_000_000+k*10, 2), client.DepositOptions{}); err != nil {
		return fmt.Errorf("deposit the answer: %w", err)
	}
	step()
	if _, err := a.C.Deposit(ctx, h.ID, bundle(8_000_000+k*10, 1), client.DepositOptions{}); err != nil {
		return fmt.Errorf("deposit the receipt: %w", err)
	}
	step()
	q, err := a.C.FileRequest(ctx, client.NewRequest{Agreement: ag, Subject: fmt.Sprintf("other %d", k), Reason: "investigation"})
	if err != nil {
		return fmt.Errorf("file: %w", err)
	}
	if _, err := b.C.RefuseRequest(ctx, q.ID, request.GroundOther, "not ours to give"); err != nil {
		return fmt.Errorf("refuse: %w", err)
	}
	step()
	return nil
}

// matchRound runs one private matching session to the end, a starting and
// b joining.
func matchRound(ctx context.Context, a, b *e2e.Party, ag string, k int) error {
	items := func(prefix string) func() iter.Seq[psi.Item] {
		var list []psi.Item
		for i := range 20 {
			list = append(list, psi.Item{Kind: psi.KindEmail, Value: fmt.Sprintf("%s%d-%d@example.org", prefix, i%12, k)})
		}
		return func() iter.Seq[psi.Item] { return slices.Values(list) }
	}
	c, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan string, 1)
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() {
		_, errA = a.C.RunMatch(c, client.MatchOptions{Agreement: ag, Items: items("x"), Identity: a.Keys.Sealing,
			Poll: 20 * time.Millisecond, OnSession: func(m client.Match) { started <- m.ID }})
		if errA != nil {
			cancel()
		}
	})
	wg.Go(func() {
		select {
		case id := <-started:
			_, errB = b.C.RunMatch(c, client.MatchOptions{Session: id, Items: items("x"), Identity: b.Keys.Sealing, Poll: 20 * time.Millisecond})
		case <-c.Done():
			errB = c.Err()
		}
		if errB != nil {
			cancel()
		}
	})
	wg.Wait()
	return errors.Join(errA, errB)
}

func ready(ctx context.Context, hc *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}
