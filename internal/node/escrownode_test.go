package node

import (
	"errors"
	"testing"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
)

// A relaying node attacks the escrow node both parties chose (issue 14
// item 4): it cannot swap, add or drop it in transit, nor name the
// receiving node itself or a node the receiving node's operator has not
// pinned; B refuses each, coded and signed, and keeps serving. (A swap to
// a node B did not pin is refused earlier, as wrong_node.)
func TestHostilePeerEscrowNode(t *testing.T) {
	a, b, bob := twoNodes(t)
	c := newFedNode(t, "carol") // the escrow node both sides pinned
	a.pin(t, "charlie", c)
	b.pin(t, "charlie", c)
	d := newFedNode(t, "dave") // a node only A pinned
	a.pin(t, "delta", d)
	e := newFedNode(t, "erin") // another node both pinned, which the parties did not choose
	a.pin(t, "echo", e)
	b.pin(t, "echo", e)
	aliceCard, err := a.ex.LocalParty(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}

	doc := a.document(t, bob)
	doc.EscrowNode = c.id.Public.VKey
	if err := doc.Validate(); err != nil {
		t.Fatal(err)
	}
	sig := a.sign(t, doc, agreement.ActionPropose)

	swapped := *doc
	swapped.EscrowNode = e.id.Public.VKey
	dropped := *doc
	dropped.EscrowNode = ""
	plain := *doc
	plain.EscrowNode = ""
	added := plain
	added.EscrowNode = e.id.Public.VKey
	unpinned := *doc
	unpinned.EscrowNode = d.id.Public.VKey
	onB := *doc
	onB.EscrowNode = b.id.Public.VKey

	for _, c := range []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"escrow node swapped in transit", stepBody(t, aliceCard, swapped.Canonical(), sig), 422, "document_changed"},
		{"escrow node dropped in transit", stepBody(t, aliceCard, dropped.Canonical(), sig), 422, "document_changed"},
		{"escrow node added in transit", stepBody(t, aliceCard, added.Canonical(), a.sign(t, &plain, agreement.ActionPropose)), 422, "document_changed"},
		{"escrow node B never pinned", stepBody(t, aliceCard, unpinned.Canonical(), a.sign(t, &unpinned, agreement.ActionPropose)), 422, "wrong_node"},
		{"escrow node is B itself", stepBody(t, aliceCard, onB.Canonical(), a.sign(t, &onB, agreement.ActionPropose)), 422, "invalid_document"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, code := refusedCode(t, a, c.body)
			if status != c.status || code != c.code {
				t.Fatalf("refused %d %s, want %d %s", status, code, c.status, c.code)
			}
		})
	}
	for _, id := range []string{doc.ID, unpinned.ID} {
		if _, err := b.ex.Agreement(ctx, b.me, id); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("a refused proposal was stored: %v", err)
		}
	}

	// The genuine proposal reaches B with the escrow node both will sign.
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), sig); err != nil {
		t.Fatal(err)
	}
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d", got)
	}
	ag, err := b.ex.Agreement(ctx, b.me, doc.ID)
	if err != nil {
		t.Fatalf("B refused the genuine proposal: %v", err)
	}
	if ag.Status.Document.EscrowNode != c.id.Public.VKey {
		t.Fatalf("on B the escrow node is %q, want C's key", ag.Status.Document.EscrowNode)
	}
}
