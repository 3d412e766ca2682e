package e2e

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// streamEndDeadline bounds the wait for a revoked token's stream to end.
// The server re-checks every second (api.tokenRecheck); the slack is for
// a loaded machine. Before the fix the stream never ended.
const streamEndDeadline = 15 * time.Second

// TestAttackRevokedTokenStream (issue 12, finding 12): an event stream
// opened with a token keeps delivering handover and request texts only
// while that token is valid. Revoking it ends the stream within about a
// second (measured and logged, not asserted), a reconnect with it is
// refused, a stream of the same party's other token is unaffected, and a
// dashboard session signed in with the revoked token ends at its next
// page.
func TestAttackRevokedTokenStream(t *testing.T) {
	w := newAttackWorld(t)
	for _, busy := range []bool{true, false} {
		name := map[bool]string{true: "counterpart-keeps-writing", false: "idle-stream"}[busy]
		t.Run(name, func(t *testing.T) { revokeDuringStream(t, w, busy) })
	}
}

// revokeDuringStream revokes a token of bravo's while its event stream is
// open; with busy, alpha keeps proposing handovers (events for bravo)
// until the stream ends.
func revokeDuringStream(t *testing.T, w *attackWorld, busy bool) {
	secret, tokenID, err := w.s.Srv.Parties.AddToken(ctx, w.bravo.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	stolen, err := client.New(w.s.URL+"/taxii2/", client.WithToken(secret))
	if err != nil {
		t.Fatal(err)
	}
	bravo2 := *w.bravo
	bravo2.Token = secret
	cookie, _ := w.signIn(t, &bravo2)

	type seen struct {
		text string
		at   time.Time
	}
	follow := func(c *client.Client) (<-chan seen, <-chan error, context.CancelFunc) {
		sctx, cancel := context.WithTimeout(ctx, 2*streamEndDeadline)
		evs, done := make(chan seen, 100), make(chan error, 1)
		go func() {
			done <- c.Events(sctx, 0, true, func(ev client.Event) error {
				evs <- seen{string(ev.Data), time.Now()}
				return nil
			})
		}()
		return evs, done, cancel
	}
	stolenEvents, stolenDone, cancel := follow(stolen)
	defer cancel()
	ownEvents, _, cancelOwn := follow(w.bravo.C)
	defer cancelOwn()

	propose := func(text string) {
		t.Helper()
		if _, err := w.alpha.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: w.ag, Delivers: text, Expects: "yours"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(evs <-chan seen, text string) {
		t.Helper()
		deadline := time.After(streamEndDeadline)
		for {
			select {
			case ev := <-evs:
				if strings.Contains(ev.text, text) {
					return
				}
			case <-deadline:
				t.Fatalf("the stream never delivered %q", text)
			}
		}
	}
	before := "dossier before revocation of " + tokenID
	propose(before)
	waitFor(stolenEvents, before)
	waitFor(ownEvents, before)

	if err := w.s.Srv.Parties.RevokeToken(ctx, tokenID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	// The counterpart keeps writing while the stream is open.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for busy {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := w.alpha.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: w.ag, Delivers: "dossier after revocation", Expects: "yours"}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	select {
	case err := <-stolenDone:
		ended := time.Since(revoked)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Errorf("the stream ended with %v, want a clean end", err)
		}
		late := 0
		for len(stolenEvents) > 0 {
			if ev := <-stolenEvents; strings.Contains(ev.text, "after revocation") {
				late++
			}
		}
		// Validity is checked before each delivery, after the events
		// were read, so nothing made after the revocation goes out.
		if late > 0 {
			t.Errorf("the revoked token's stream delivered %d events made after the revocation", late)
		}
		t.Logf("stream of the revoked token ended %v after revocation", ended.Round(time.Millisecond))
	case <-time.After(streamEndDeadline):
		close(stop)
		wg.Wait()
		t.Fatalf("the revoked token's event stream is still open %v after revocation", streamEndDeadline)
	}

	// Reconnecting with the revoked token is refused.
	err = stolen.Events(ctx, 0, false, func(client.Event) error { return nil })
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 401 {
		t.Errorf("reconnect with the revoked token: %v, want 401", err)
	}
	// The party's other token still streams.
	after := "dossier after revocation of " + tokenID
	propose(after)
	waitFor(ownEvents, after)
	// The dashboard session of the revoked token is over.
	r := w.send(t, req{Path: "/ui/", Header: map[string]string{"Cookie": cookie}})
	if r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "/ui/signin") {
		t.Errorf("dashboard with the revoked token's session: %s", r)
	}
	r = w.send(t, req{Path: "/ui/agreements/" + w.ag, Header: map[string]string{"Cookie": cookie}})
	if r.Status != 303 || strings.Contains(string(r.Body), "dossier") {
		t.Errorf("agreement page with the revoked token's session: %s", r)
	}
}
