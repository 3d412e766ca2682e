package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

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

// TestMatchRound1OverTheCapAcrossNodes: a round 1 of one element more
// than a session between nodes takes is refused on the sender's own node
// from its header, saying why, before anything is stored or sent; and a
// part stating a size over the cap is refused on the receiving node.
func TestMatchRound1OverTheCapAcrossNodes(t *testing.T) {
	w := newEscrowWorldWith(t, func(d *agreement.Document) { d.MatchCap = 2 * matching.MaxElementsAcrossNodes })
	a, b := w.a, w.b
	alice, bob := a.me.PartyID, b.me.PartyID
	started, err := a.mat.Start(ctx, a.me, w.doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if started.Session.Cap != matching.MaxElementsAcrossNodes || matching.MaxElementsAcrossNodes < agreement.DefaultMatchCap {
		t.Fatalf("cap %d, want %d (at least the default match_cap, %d)", started.Session.Cap, matching.MaxElementsAcrossNodes, agreement.DefaultMatchCap)
	}
	id, sid := started.Session.ID, started.Session.SessionID
	a.fed.SendDue(ctx)
	// A real message whose header claims one element over the cap: the
	// header is refused before a single element is read.
	over := round1(t, sid, alice, bob, psi.RoleInitiator, 1, "u@example.org")
	binary.BigEndian.PutUint64(over[40:48], matching.MaxElementsAcrossNodes+1)
	_, err = a.mat.PutRound1(ctx, a.me, id, bytes.NewReader(over))
	if !errors.Is(err, matching.ErrOverCap) || !strings.Contains(err.Error(), fmt.Sprintf("across nodes a session takes at most %d", matching.MaxElementsAcrossNodes)) {
		t.Fatalf("one element over: %v", err)
	}
	if n := a.fed.SendDue(ctx); n != 0 {
		t.Fatalf("A sent %d messages after a refused round 1", n)
	}
	msg := round1Message(id, alice, over)
	msg.Size = matching.Round1Size(matching.MaxElementsAcrossNodes + 1)
	if status, code, _ := call(t, a, b, PathMatchRound1, msg); code != "over_cap" || status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a part of a round 1 over the cap: %d %q, want 413 over_cap", status, code)
	}
}

// parts splits a round-1 message into the node messages its node sends.
func parts(id, partyID string, content []byte) []matching.Round1Message {
	sum := sha256.Sum256(content)
	var out []matching.Round1Message
	for i := 0; i*matching.Round1PartSize < len(content); i++ {
		out = append(out, matching.Round1Message{Match: id, Party: partyID, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)),
			Part: i, Content: content[i*matching.Round1PartSize : min((i+1)*matching.Round1PartSize, len(content))]})
	}
	return out
}

func emailItems(list []string) iter.Seq[psi.Item] {
	return func(yield func(psi.Item) bool) {
		for _, e := range list {
			if !yield(psi.Item{Kind: psi.KindEmail, Value: e}) {
				return
			}
		}
	}
}

// startAcrossNodes is a world of two nodes and an escrow node under an
// agreement with match_cap 1,000,000, and a session alice started on A.
func startAcrossNodes(t *testing.T) (*escrowWorld, matching.Started) {
	t.Helper()
	w := newEscrowWorld(t)
	started, err := w.a.mat.Start(ctx, w.a.me, w.doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	return w, started
}

// roundOnes is both sides' sessions (sid, at most n elements a side) and
// round 1s of alice's and bob's lists, with each side's order.
func roundOnes(t *testing.T, sid []byte, alice, bob string, n int, aliceList, bobList []string) (sa, sb *psi.Session, orderA, orderB *psi.Order, r1a, r1b []byte) {
	t.Helper()
	side := func(self, peer string, role psi.Role, list []string) (*psi.Session, *psi.Order, []byte) {
		s, err := psi.NewSession(psi.Config{SessionID: sid, Self: self, Peer: peer, Role: role, MaxElements: n})
		if err != nil {
			t.Fatal(err)
		}
		var r1 bytes.Buffer
		order, err := s.Round1(ctx, emailItems(list), &r1)
		if err != nil {
			t.Fatal(err)
		}
		return s, order, r1.Bytes()
	}
	sa, orderA, r1a = side(alice, bob, psi.RoleInitiator, aliceList)
	sb, orderB, r1b = side(bob, alice, psi.RoleResponder, bobList)
	return sa, sb, orderA, orderB, r1a, r1b
}

// TestMatchAcrossNodesInParts runs a session of 20,000 × 20,000 elements
// (over the 16,384 one node request once carried) with 5,000 in common
// between alice on A and bob on B, through the node endpoints: each round
// 1 crosses in parts, round 2 goes through the escrow node, and each side
// finds exactly the 5,000. Before that, a hostile pinned A sends alice's
// round 1 in parts out of order, out of range, too large, over the cap,
// for bob, for an unknown session, again with other bytes, under another
// announcement, and with a last part that does not hash to it: each is
// refused by name, none changes B's session or ledger, and a part sent
// again is answered as a duplicate.
func TestMatchAcrossNodesInParts(t *testing.T) {
	w, started := startAcrossNodes(t) // match_cap 1,000,000
	a, b := w.a, w.b
	alice, bob := a.me.PartyID, b.me.PartyID
	id, sid, hid := started.Session.ID, started.Session.SessionID, started.Handover.ID
	a.fed.SendDue(ctx)
	b.fed.SendDue(ctx)
	const n, common = 20000, 5000
	var aliceList, bobList []string
	for i := range n - common {
		aliceList = append(aliceList, fmt.Sprintf("alice%d@example.org", i))
		bobList = append(bobList, fmt.Sprintf("bob%d@example.org", i))
	}
	for i := range common {
		aliceList = append(aliceList, fmt.Sprintf("both%d@example.org", i))
		bobList = append(bobList, fmt.Sprintf("both%d@example.org", i))
	}
	sa, sb, orderA, orderB, r1a, r1b := roundOnes(t, sid, alice, bob, n, aliceList, bobList)
	ps := parts(id, alice, r1a)
	if len(ps) != 2 {
		t.Fatalf("alice's round 1 of %d bytes is %d parts, want 2", len(r1a), len(ps))
	}

	size, err := b.st.Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(m matching.Round1Message, f func(*matching.Round1Message)) matching.Round1Message {
		m.Content = bytes.Clone(m.Content)
		f(&m)
		return m
	}
	other := edit(ps[0], func(m *matching.Round1Message) { m.SHA256 = hex.EncodeToString(make([]byte, 32)) })
	for _, c := range []struct {
		name   string
		msg    matching.Round1Message
		code   string
		status int
	}{
		{"part 1 before part 0", ps[1], "part_out_of_order", http.StatusConflict},
		{"a part out of range", edit(ps[1], func(m *matching.Round1Message) { m.Part = 2 }), "part_out_of_range", http.StatusUnprocessableEntity},
		{"a part larger than its place", edit(ps[1], func(m *matching.Round1Message) { m.Content = append(m.Content, 0) }), "part_too_large", http.StatusRequestEntityTooLarge},
		{"a size over the session's cap", edit(ps[0], func(m *matching.Round1Message) { m.Size = matching.Round1Size(matching.MaxElementsAcrossNodes + 1) }), "over_cap", http.StatusRequestEntityTooLarge},
		{"a part for bob", edit(ps[0], func(m *matching.Round1Message) { m.Party = bob }), "not_party_node", http.StatusForbidden},
		{"a part of an unknown session", edit(ps[0], func(m *matching.Round1Message) { m.Match = "match--00000000-0000-4000-8000-000000000000" }), "not_found", http.StatusNotFound},
		{"accepted: part 0", ps[0], "", http.StatusOK},
		{"part 0 again, with other bytes", edit(ps[0], func(m *matching.Round1Message) { m.Content[100] ^= 1 }), "part_mismatch", http.StatusConflict},
		{"part 0 of another message", other, "part_mismatch", http.StatusConflict},
		{"part 1 of another message", edit(ps[1], func(m *matching.Round1Message) { m.SHA256 = other.SHA256 }), "part_mismatch", http.StatusConflict},
		{"part 1 stating another size", edit(ps[1], func(m *matching.Round1Message) { m.Size -= 32; m.Content = m.Content[:len(m.Content)-32] }), "part_mismatch", http.StatusConflict},
		// The last part with a flipped byte: the whole does not pass its
		// checks, and the parts staged are dropped.
		{"a last part that spoils the whole", edit(ps[1], func(m *matching.Round1Message) { m.Content[10] ^= 1 }), "invalid", http.StatusUnprocessableEntity},
		{"part 1 once part 0 was dropped", ps[1], "part_out_of_order", http.StatusConflict},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, code, _ := call(t, a, b, PathMatchRound1, c.msg)
			if code != c.code || status != c.status {
				t.Fatalf("got %d %q, want %d %q", status, code, c.status, c.code)
			}
		})
	}
	if v, _ := b.mat.Get(ctx, b.me, id); v.Session.Initiator.Done() {
		t.Fatal("refused parts completed alice's round 1 on B")
	}
	if after, _ := b.st.Ledger().Size(ctx); after != size {
		t.Fatalf("parts changed B's ledger: %d entries, was %d", after, size)
	}
	if ups, err := b.st.Matches().Uploads(ctx, id, alice); err != nil || len(ups) != 0 {
		t.Fatalf("B keeps staged parts %v (%v) of a message that failed its checks", ups, err)
	}

	// The real round 1s, through each node's outbox, in parts.
	if _, err := a.mat.PutRound1(ctx, a.me, id, bytes.NewReader(r1a)); err != nil {
		t.Fatal(err)
	}
	if got := a.fed.SendDue(ctx); got != 2 {
		t.Fatalf("A delivered %d messages, want alice's round 1 in 2 parts", got)
	}
	v, err := b.mat.Get(ctx, b.me, id)
	if err != nil || v.Session.Initiator.Count != n || v.Session.Initiator.Size != int64(len(r1a)) {
		t.Fatalf("alice's round 1 on B: %+v, %v", v.Session.Initiator, err)
	}
	for _, p := range ps {
		if status, _, out := call(t, a, b, PathMatchRound1, p); status != http.StatusOK || !bytes.Contains(out, []byte(`"duplicate":true`)) {
			t.Fatalf("part %d again: %d %s", p.Part, status, out)
		}
	}
	if _, code, _ := call(t, a, b, PathMatchRound1, edit(ps[1], func(m *matching.Round1Message) { m.Content[10] ^= 1 })); code != "conflict" {
		t.Fatalf("part 1 with other bytes after completion: %q, want conflict", code)
	}
	if _, err := b.mat.PutRound1(ctx, b.me, id, bytes.NewReader(r1b)); err != nil {
		t.Fatal(err)
	}
	if got := b.fed.SendDue(ctx); got != 2 {
		t.Fatalf("B delivered %d messages, want bob's round 1 in 2 parts", got)
	}

	gotA, gotB := finishMatch(t, w, id, hid, sa, sb, orderA, orderB)
	for _, c := range []struct {
		name string
		got  []int
	}{{"alice", gotA}, {"bob", gotB}} {
		if len(c.got) != common || c.got[0] != n-common || c.got[common-1] != n-1 {
			t.Fatalf("%s matched %d items (first %v), want the %d in common (%d to %d)", c.name, len(c.got), c.got[:min(3, len(c.got))], common, n-common, n-1)
		}
	}
}

// finishMatch runs round 2 of session id (handover hid) once both round
// 1s are on both nodes: each side computes its own from the other's round
// 1 its node serves, deposits it sealed to the other, the escrow node
// releases both, and each side's result (indexes into its own list) is
// returned.
func finishMatch(t *testing.T, w *escrowWorld, id, hid string, sa, sb *psi.Session, orderA, orderB *psi.Order) (alice, bob []int) {
	t.Helper()
	a, b, e := w.a, w.b, w.e
	round2 := func(n *fedNode, s *psi.Session, to *fedNode) []byte {
		peer, err := n.mat.OpenPeerRound1(ctx, n.me, id)
		if err != nil {
			t.Fatal(err)
		}
		var r2 bytes.Buffer
		if err := s.Round2(ctx, peer, &r2); err != nil {
			t.Fatalf("%s's round 2: %v", n.me.Name, err)
		}
		deposit(t, n, hid, sealTo(t, to, r2.String()))
		if got := n.fed.SendDue(ctx); got != 1 {
			t.Fatalf("%s's node delivered %d messages, want the deposit", n.me.Name, got)
		}
		return r2.Bytes()
	}
	r2a, r2b := round2(a, sa, b), round2(b, sb, a)
	if got := e.fed.SendDue(ctx); got != 2 {
		t.Fatalf("E delivered %d messages, want the verdict to A and B", got)
	}
	result := func(n *fedNode, s *psi.Session, order *psi.Order, own []byte) []int {
		d, err := n.esc.Fetch(ctx, n.me, hid, "")
		if err != nil {
			t.Fatalf("%s fetches the other's round 2: %v", n.me.Name, err)
		}
		r, err := age.Decrypt(bytes.NewReader(d.Content), n.keys.Sealing)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := s.Result(ctx, order, bytes.NewReader(own), r)
		if err != nil {
			t.Fatalf("%s's result: %v", n.me.Name, err)
		}
		return idx
	}
	return result(a, sa, orderA, r2a), result(b, sb, orderB, r2b)
}

// TestMatchAcrossNodesAboveOldCap runs a session between alice on A and
// bob on B in which alice's list is 300,000 elements, over the 262,144 a
// session across nodes once took (issue 14): the session's cap is the
// agreement's match_cap (1,000,000), alice's round 1 (9.6 MB) reaches B in
// parts through A's outbox, bob's round 2 for it (4.8 MB sealed) goes
// through the escrow node, and each side finds exactly the elements in
// common. Bob's list is short to keep the test affordable under -race: the
// bound lifted is per side.
func TestMatchAcrossNodesAboveOldCap(t *testing.T) {
	w, started := startAcrossNodes(t) // match_cap 1,000,000
	a, b := w.a, w.b
	alice, bob := a.me.PartyID, b.me.PartyID
	if started.Session.Cap != 1_000_000 {
		t.Fatalf("the session's cap is %d, want the agreement's match_cap 1,000,000", started.Session.Cap)
	}
	id, sid, hid := started.Session.ID, started.Session.SessionID, started.Handover.ID
	a.fed.SendDue(ctx)
	b.fed.SendDue(ctx)
	const n, nb, common = 300_000, 1000, 250
	aliceList := make([]string, 0, n)
	var bobList []string
	for i := range n {
		aliceList = append(aliceList, fmt.Sprintf("alice%d@example.org", i))
	}
	for i := range nb - common {
		bobList = append(bobList, fmt.Sprintf("bob%d@example.org", i))
	}
	for i := range common {
		// Spread over alice's list, the last one its last element.
		bobList = append(bobList, aliceList[n-1-i*997])
	}
	sa, sb, orderA, orderB, r1a, r1b := roundOnes(t, sid, alice, bob, n, aliceList, bobList)
	if _, err := a.mat.PutRound1(ctx, a.me, id, bytes.NewReader(r1a)); err != nil {
		t.Fatalf("alice's round 1 of %d elements: %v", n, err)
	}
	if got, want := a.fed.SendDue(ctx), len(parts(id, alice, r1a)); got != want {
		t.Fatalf("A delivered %d messages, want alice's round 1 in %d parts", got, want)
	}
	if v, err := b.mat.Get(ctx, b.me, id); err != nil || v.Session.Initiator.Count != n || v.Session.Initiator.Size != int64(len(r1a)) {
		t.Fatalf("alice's round 1 on B: %+v, %v", v.Session.Initiator, err)
	}
	if _, err := b.mat.PutRound1(ctx, b.me, id, bytes.NewReader(r1b)); err != nil {
		t.Fatal(err)
	}
	if got := b.fed.SendDue(ctx); got != 1 {
		t.Fatalf("B delivered %d messages, want bob's round 1 in 1 part", got)
	}
	gotA, gotB := finishMatch(t, w, id, hid, sa, sb, orderA, orderB)
	wantA := make([]int, 0, common)
	for i := common - 1; i >= 0; i-- {
		wantA = append(wantA, n-1-i*997)
	}
	wantB := make([]int, 0, common)
	for i := range common {
		wantB = append(wantB, nb-common+i)
	}
	if fmt.Sprint(gotA) != fmt.Sprint(wantA) {
		t.Fatalf("alice matched %d items (first %v), want the %d in common (first %v)", len(gotA), gotA[:min(3, len(gotA))], common, wantA[:3])
	}
	if fmt.Sprint(gotB) != fmt.Sprint(wantB) {
		t.Fatalf("bob matched %d items (first %v), want the %d in common (first %v)", len(gotB), gotB[:min(3, len(gotB))], common, wantB[:3])
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
