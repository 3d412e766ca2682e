package e2e

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/matching"
)

// TestAbandonedMatchSessionExpires (issue 16): a session the other side never
// joins ends on the server within matching.SessionWindow, the client waiting
// for round 1 is told so instead of polling for ever, and the handover that
// escrows round 2 is never listed as a case either side proposed.
func TestAbandonedMatchSessionExpires(t *testing.T) {
	w := newMatchWorld(t, 100)
	m, err := w.a.C.StartMatch(ctx, w.agreement)
	if err != nil {
		t.Fatal(err)
	}
	if limit := m.CreatedAt.Add(matching.SessionWindow); m.Deadline.After(limit) {
		t.Fatalf("session deadline %s is after start + SessionWindow %s", m.Deadline, limit)
	}
	if _, err := w.a.C.PutRound1(ctx, m.ID, bytes.NewReader(honestRound1(t, w.a, m, 100, emails("a", 0, 3)))); err != nil {
		t.Fatal(err)
	}

	// The round-2 escrow is plumbing of the session, not a proposed case.
	for _, p := range []*Party{w.a, w.b} {
		hs, err := p.C.Handovers(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			if h.ID == m.Handover {
				t.Fatalf("%s's handover list shows the session's round-2 escrow %s", p.Name, h.ID)
			}
		}
	}

	// bravo never joins. A sweep past the window expires the session.
	sweeper := escrow.New(w.s.Srv.Store, w.s.Srv.Ex)
	sweeper.SetClock(func() time.Time { return time.Now().UTC().Add(matching.SessionWindow + time.Minute) })
	if _, err := sweeper.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := w.a.C.Match(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "expired" {
		t.Fatalf("abandoned session is %q after its deadline, want expired", got.State)
	}
	// alpha's client, waiting for bravo's round 1, gets a final answer.
	err = w.a.C.PeerRound1(ctx, m.ID, func(io.Reader) error { return nil })
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict || ae.Code != "conflict" {
		t.Fatalf("waiting on an expired session: %v, want 409 conflict (not not_ready, which means wait on)", err)
	}
}
