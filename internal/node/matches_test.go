package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/psi"
	"github.com/parley-cti/parley/internal/store"
)

// round1 is a real round-1 message of self in a session with sid.
func round1(t *testing.T, sid []byte, self, peer string, role psi.Role, maxElements int, emails ...string) []byte {
	t.Helper()
	s, err := psi.NewSession(psi.Config{SessionID: sid, Self: self, Peer: peer, Role: role, MaxElements: maxElements})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	items := func(yield func(psi.Item) bool) {
		for _, e := range emails {
			if !yield(psi.Item{Kind: psi.KindEmail, Value: e}) {
				return
			}
		}
	}
	if _, err := s.Round1(ctx, items, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func round1Message(id, partyID string, content []byte) matching.Round1Message {
	sum := sha256.Sum256(content)
	return matching.Round1Message{Match: id, Party: partyID, SHA256: hex.EncodeToString(sum[:]), Content: content}
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMatchAcrossNodes runs a session between alice on A and bob on B up
// to both round 1s, with every refusal of B's round-1 endpoint: a node
// speaking for a party it does not host, the wrong role, a message from
// another session, over the cap, a wrong digest, an unknown session, a
// second round 1, an agreement suspended on B; none changes B's session
// or ledger, and bob hears of each. Round 2 through the escrow node is the handover machinery's
// (handovers_test.go; internal/tests/nodescripts' match_nodes.txtar runs the whole).
func TestMatchAcrossNodes(t *testing.T) {
	w := newEscrowWorldWith(t, func(d *agreement.Document) { d.MatchCap = 3 })
	a, b, e := w.a, w.b, w.e
	alice, bob := a.me.PartyID, b.me.PartyID
	started, err := a.mat.Start(ctx, a.me, w.doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	id, sid := started.Session.ID, started.Session.SessionID
	if n := a.fed.SendDue(ctx); n != 2 {
		t.Fatalf("A delivered %d messages, want 2 (the session to B, the case to E)", n)
	}
	v, err := b.mat.Get(ctx, b.me, id)
	if err != nil {
		t.Fatalf("the session is not on B: %v", err)
	}
	if !bytes.Equal(v.Session.SessionID, sid) || v.Session.Cap != 3 || v.Session.Initiator.PartyID != alice ||
		v.Handover.ID != started.Handover.ID || v.Handover.State != store.HandoverAccepted || !v.Handover.Deadline.Equal(started.Handover.Deadline) {
		t.Fatalf("B's copy of the session: %+v, handover %+v", v.Session, v.Handover)
	}
	if n := b.fed.SendDue(ctx); n != 1 {
		t.Fatalf("B delivered %d messages, want 1 (bob's acceptance to E)", n)
	}
	if held, err := e.esc.HeldCase(ctx, started.Handover.ID); err != nil || held.State != store.HeldAccepted {
		t.Fatalf("E holds the round-2 case as %q (%v), want accepted", held.State, err)
	}
	// The session again is a duplicate and changes nothing.
	sm := matching.SessionMessage{Match: id, Agreement: w.doc.ID, SessionID: hex.EncodeToString(sid), Handover: started.Handover.ID,
		Initiator: alice, Responder: bob, Cap: 3, Deadline: started.Handover.Deadline, DocumentSHA256: "sha256:" + hex.EncodeToString(sha(w.doc))}
	if status, code, out := call(t, a, b, PathMatchSession, sm); status != http.StatusOK || !bytes.Contains(out, []byte(`"duplicate":true`)) {
		t.Fatalf("the session again: %d %s %s", status, code, out)
	}

	good := round1(t, sid, alice, bob, psi.RoleInitiator, 3, "a@example.org", "b@example.org")
	other := make([]byte, len(sid))
	copy(other, sid)
	other[0] ^= 1
	tampered := round1Message(id, alice, good)
	tampered.SHA256 = hex.EncodeToString(make([]byte, 32))
	unknown := round1Message("match--00000000-0000-4000-8000-000000000000", alice, good)
	size, err := b.st.Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		from *fedNode
		msg  matching.Round1Message
		code string
	}{
		{"the escrow node speaks for alice", e, round1Message(id, alice, good), "not_party_node"},
		{"alice's node speaks for bob", a, round1Message(id, bob, round1(t, sid, bob, alice, psi.RoleResponder, 3, "x@example.org")), "not_party_node"},
		// A message of this session in bob's role, relayed as alice's.
		{"alice's round 1 in bob's role", a, round1Message(id, alice, round1(t, sid, bob, alice, psi.RoleResponder, 3, "a@example.org")), "invalid"},
		{"a message of another session (replay)", a, round1Message(id, alice, round1(t, other, alice, bob, psi.RoleInitiator, 3, "a@example.org")), "invalid"},
		{"over the cap", a, round1Message(id, alice, round1(t, sid, alice, bob, psi.RoleInitiator, 4, "1@x.org", "2@x.org", "3@x.org", "4@x.org")), "over_cap"},
		{"a digest that does not match", a, tampered, "invalid"},
		{"a session B does not hold", a, unknown, "not_found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, code, _ := call(t, c.from, b, PathMatchRound1, c.msg)
			if code != c.code {
				t.Fatalf("got %d %q, want %q", status, code, c.code)
			}
		})
	}
	if v, _ := b.mat.Get(ctx, b.me, id); v.Session.Initiator.Done() {
		t.Fatal("a refused round 1 was stored on B")
	}
	if after, _ := b.st.Ledger().Size(ctx); after != size {
		t.Fatalf("refusals changed B's ledger: %d entries, was %d", after, size)
	}
	evs, err := b.st.Events().After(ctx, bob, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, ev := range evs {
		if ev.Kind == matching.EventRefused && ev.Subject == id {
			refused++
		}
	}
	if refused != 6 { // all but the unknown session's
		t.Fatalf("bob heard of %d refusals, want 6", refused)
	}

	// alice's real round 1 goes through A's outbox.
	if _, err := a.mat.PutRound1(ctx, a.me, id, bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	if n := a.fed.SendDue(ctx); n != 1 {
		t.Fatalf("A delivered %d messages, want alice's round 1", n)
	}
	if v, _ := b.mat.Get(ctx, b.me, id); !v.Session.Initiator.Done() || v.Session.Initiator.Count != 2 {
		t.Fatalf("alice's round 1 on B: %+v", v.Session.Initiator)
	}
	if status, _, out := call(t, a, b, PathMatchRound1, round1Message(id, alice, good)); status != http.StatusOK || !bytes.Contains(out, []byte(`"duplicate":true`)) {
		t.Fatalf("the same round 1 again: %d %s", status, out)
	}
	if _, code, _ := call(t, a, b, PathMatchRound1, round1Message(id, alice, round1(t, sid, alice, bob, psi.RoleInitiator, 3, "c@example.org"))); code != "conflict" {
		t.Fatalf("another round 1 for alice: %q, want conflict", code)
	}
	// bob sends his on B; each node then serves the other side's.
	bobs := round1(t, sid, bob, alice, psi.RoleResponder, 3, "b@example.org")
	if _, err := b.mat.PutRound1(ctx, b.me, id, bytes.NewReader(bobs)); err != nil {
		t.Fatal(err)
	}
	got, err := b.mat.OpenPeerRound1(ctx, b.me, id)
	if err != nil || !bytes.Equal(readAll(t, got), good) {
		t.Fatalf("B serves bob alice's round 1: %v", err)
	}
	if n := b.fed.SendDue(ctx); n != 1 {
		t.Fatalf("B delivered %d messages, want bob's round 1", n)
	}
	got, err = a.mat.OpenPeerRound1(ctx, a.me, id)
	if err != nil || !bytes.Equal(readAll(t, got), bobs) {
		t.Fatalf("A serves alice bob's round 1: %v", err)
	}

	// A second session reaches B; bob suspends the agreement on B (A not
	// told yet): alice's round 1 relayed now is refused there.
	second, err := a.mat.Start(ctx, a.me, w.doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	if _, err := b.mat.Get(ctx, b.me, second.Session.ID); err != nil {
		t.Fatalf("the second session is not on B: %v", err)
	}
	if _, _, err := b.ex.Sign(ctx, b.me, w.doc.ID, b.sign(t, w.doc, agreement.ActionSuspend)); err != nil {
		t.Fatal(err)
	}
	msg := round1Message(second.Session.ID, alice, round1(t, second.Session.SessionID, alice, bob, psi.RoleInitiator, 3, "a@example.org"))
	if _, code, _ := call(t, a, b, PathMatchRound1, msg); code != "forbidden" {
		t.Fatalf("a round 1 under a suspended agreement: %q, want forbidden", code)
	}
	if v, _ := b.mat.Get(ctx, b.me, second.Session.ID); v.Session.Initiator.Done() {
		t.Fatal("a round 1 under a suspended agreement was stored")
	}
}

func sha(d *agreement.Document) []byte { h := d.Hash(); return h[:] }

// TestMatchSessionAcrossNodesRefused: sessions B must not open. None
// leaves a session on B.
func TestMatchSessionAcrossNodesRefused(t *testing.T) {
	w := newEscrowWorld(t)
	a, b, e := w.a, w.b, w.e
	alice, bob := a.me.PartyID, b.me.PartyID
	// A second agreement, proposed but never countersigned: not in force.
	pending := a.document(t, w.bob)
	pending.EscrowNode = e.id.Public.VKey
	if _, _, err := a.ex.Propose(ctx, a.me, pending.Canonical(), a.sign(t, pending, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	base := func(doc *agreement.Document) matching.SessionMessage {
		return matching.SessionMessage{Match: "match--00000000-0000-4000-8000-000000000001", Agreement: doc.ID,
			SessionID: hex.EncodeToString(bytes.Repeat([]byte{7}, 32)), Handover: "handover--00000000-0000-4000-8000-000000000001",
			Initiator: alice, Responder: bob, Cap: 10, Deadline: time.Now().Add(time.Minute), DocumentSHA256: "sha256:" + hex.EncodeToString(sha(doc))}
	}
	edit := func(f func(*matching.SessionMessage)) matching.SessionMessage {
		m := base(w.doc)
		f(&m)
		return m
	}
	for _, c := range []struct {
		name string
		from *fedNode
		msg  matching.SessionMessage
		code string
	}{
		{"from the escrow node", e, base(w.doc), "not_party_node"},
		{"naming bob as its starter", a, edit(func(m *matching.SessionMessage) { m.Initiator, m.Responder = bob, alice }), "not_party_node"},
		{"under another document version", a, edit(func(m *matching.SessionMessage) { m.DocumentSHA256 = "sha256:00" }), "document_mismatch"},
		{"over the cap", a, edit(func(m *matching.SessionMessage) { m.Cap = matching.MaxElementsAcrossNodes + 1 }), "invalid"},
		{"a deadline past the session window", a, edit(func(m *matching.SessionMessage) { m.Deadline = time.Now().Add(48 * time.Hour) }), "invalid"},
		{"a short session id", a, edit(func(m *matching.SessionMessage) { m.SessionID = "07" }), "invalid"},
		{"under an agreement not in force", a, base(pending), "forbidden"},
		{"under an agreement B does not hold", a, edit(func(m *matching.SessionMessage) { m.Agreement = agreement.NewID() }), "not_party"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, code, _ := call(t, c.from, b, PathMatchSession, c.msg)
			if code != c.code {
				t.Fatalf("got %d %q, want %q", status, code, c.code)
			}
		})
	}
	ms, err := b.st.Matches().ListByParty(ctx, bob, "")
	if err != nil || len(ms) != 0 {
		t.Fatalf("B holds %d sessions after refusals (%v)", len(ms), err)
	}
}

// TestMatchRound1AtTheCapAcrossNodes: a round 1 of the most elements a
// session between nodes takes crosses in one signed node request (the
// limit is set so that it does), and one more element is refused on the
// sender's own node, saying why, before anything is stored or sent.
func TestMatchRound1AtTheCapAcrossNodes(t *testing.T) {
	w := newEscrowWorld(t) // match_cap 1,000,000
	a, b := w.a, w.b
	alice, bob := a.me.PartyID, b.me.PartyID
	started, err := a.mat.Start(ctx, a.me, w.doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if started.Session.Cap != matching.MaxElementsAcrossNodes {
		t.Fatalf("cap %d, want %d", started.Session.Cap, matching.MaxElementsAcrossNodes)
	}
	id, sid := started.Session.ID, started.Session.SessionID
	a.fed.SendDue(ctx)
	emails := make([]string, matching.MaxElementsAcrossNodes+1)
	for i := range emails {
		emails[i] = fmt.Sprintf("u%d@example.org", i)
	}
	over := round1(t, sid, alice, bob, psi.RoleInitiator, len(emails), emails...)
	_, err = a.mat.PutRound1(ctx, a.me, id, bytes.NewReader(over))
	if !errors.Is(err, matching.ErrOverCap) || !strings.Contains(err.Error(), "across nodes a session takes at most 16384") {
		t.Fatalf("one element over: %v", err)
	}
	full := round1(t, sid, alice, bob, psi.RoleInitiator, matching.MaxElementsAcrossNodes, emails[:matching.MaxElementsAcrossNodes]...)
	if _, err := a.mat.PutRound1(ctx, a.me, id, bytes.NewReader(full)); err != nil {
		t.Fatal(err)
	}
	if n := a.fed.SendDue(ctx); n != 1 {
		t.Fatalf("A delivered %d messages, want the round 1 of %d bytes", n, len(full))
	}
	v, err := b.mat.Get(ctx, b.me, id)
	if err != nil || v.Session.Initiator.Count != matching.MaxElementsAcrossNodes || v.Session.Initiator.Size != int64(len(full)) {
		t.Fatalf("on B: %+v, %v", v.Session.Initiator, err)
	}
}

// TestMatchSessionIDReusedAcrossNodes: the starter's node draws a
// session's id, and a session's messages are bound to that id and the two
// parties only, so a hostile starter that sends a new session under an id
// B already holds is refused (conflict), and B keeps only the first.
func TestMatchSessionIDReusedAcrossNodes(t *testing.T) {
	w := newEscrowWorld(t)
	a, b := w.a, w.b
	alice, bob := a.me.PartyID, b.me.PartyID
	msg := matching.SessionMessage{Match: "match--00000000-0000-4000-8000-000000000001", Agreement: w.doc.ID,
		SessionID: hex.EncodeToString(bytes.Repeat([]byte{7}, 32)), Handover: "handover--00000000-0000-4000-8000-000000000001",
		Initiator: alice, Responder: bob, Cap: 10, Deadline: time.Now().Add(time.Minute), DocumentSHA256: "sha256:" + hex.EncodeToString(sha(w.doc))}
	if status, code, _ := call(t, a, b, PathMatchSession, msg); status/100 != 2 {
		t.Fatalf("first session: %d %q", status, code)
	}
	again := msg
	again.Match, again.Handover = "match--00000000-0000-4000-8000-000000000002", "handover--00000000-0000-4000-8000-000000000002"
	if status, code, _ := call(t, a, b, PathMatchSession, again); code != "conflict" {
		t.Fatalf("a second session under the same session id: %d %q, want conflict", status, code)
	}
	ms, err := b.st.Matches().ListByParty(ctx, bob, "")
	if err != nil || len(ms) != 1 || ms[0].ID != msg.Match {
		t.Fatalf("B holds %v (%v), want only %s", ms, err, msg.Match)
	}
	if _, err := b.st.Handovers().Get(ctx, again.Handover); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused session's handover: %v, want not found", err)
	}
}
