package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
)

// escrowWorld is alice on A and bob on B under an agreement naming E as
// escrow node, countersigned and delivered; E pinned both and both pinned E.
type escrowWorld struct {
	a, b, e *fedNode
	bob     exchange.RemoteParty
	doc     *agreement.Document
}

func newEscrowWorld(t *testing.T) *escrowWorld { return newEscrowWorldWith(t, nil) }

// newEscrowWorldWith is newEscrowWorld with the document changed by edit
// (when not nil) before it is proposed.
func newEscrowWorldWith(t *testing.T, edit func(*agreement.Document)) *escrowWorld {
	t.Helper()
	a, b, bob := twoNodes(t)
	e := newFedNode(t, "erin")
	a.pin(t, "echo", e)
	b.pin(t, "echo", e)
	e.pin(t, "alpha", a)
	e.pin(t, "bravo", b)
	doc := a.document(t, bob)
	doc.EscrowNode = e.id.Public.VKey
	if edit != nil {
		edit(doc)
	}
	if err := doc.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), a.sign(t, doc, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	if _, _, err := b.ex.Sign(ctx, b.me, doc.ID, b.sign(t, doc, agreement.ActionCountersign)); err != nil {
		t.Fatal(err)
	}
	if b.fed.SendDue(ctx) != 1 {
		t.Fatal("the countersignature did not reach A")
	}
	return &escrowWorld{a: a, b: b, e: e, bob: bob, doc: doc}
}

// sealTo encrypts plain to n's first party's sealing recipient.
func sealTo(t *testing.T, n *fedNode, plain string) []byte {
	t.Helper()
	r, err := age.ParseX25519Recipient(n.keys.Public().SealingRecipient)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(plain))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deposit(t *testing.T, n *fedNode, id string, content []byte) escrow.DepositResult {
	t.Helper()
	sum := sha256.Sum256(content)
	r, err := n.esc.Deposit(ctx, n.me, id, escrow.DepositInput{Sealed: true, Content: content, SHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// call sends body to path on to, as from's node, and returns the coded
// refusal (status 200 and "" when it was accepted).
func call(t *testing.T, from *fedNode, to *fedNode, path string, body any) (int, string, []byte) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var peer store.Peer
	peers, err := from.st.Nodes().Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if p.Key == to.id.Public.VKey {
			peer = p
		}
	}
	if peer.Key == "" {
		t.Fatal("the caller has not pinned the callee")
	}
	status, out, err := from.fed.client(peer).Do(ctx, http.MethodPost, path, raw)
	var re *RefusedError
	if errors.As(err, &re) {
		if !re.Signed {
			t.Fatalf("refusal %s is not signed", re.Code)
		}
		return re.Status, re.Code, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return status, "", out
}

func caseState(t *testing.T, n *fedNode, id string) string {
	t.Helper()
	h, err := n.st.Handovers().Get(ctx, id)
	if err != nil {
		t.Fatalf("case %s on %s: %v", id, n.me.Name, err)
	}
	return h.State
}

func heldState(t *testing.T, w *escrowWorld, id string) string {
	t.Helper()
	c, err := w.e.esc.HeldCase(ctx, id)
	if err != nil {
		t.Fatalf("held case %s: %v", id, err)
	}
	return c.State
}

func ledgerKinds(t *testing.T, st store.Store, subject string) []string {
	t.Helper()
	size, err := st.Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.Ledger().ReadEntries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, raw := range es {
		var e ledger.Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		if e.Subject == subject {
			out = append(out, string(e.Kind))
		}
	}
	return out
}

// A whole escrowed handover between two nodes through the escrow node:
// the case and the acceptance relayed to the other party's node and to E,
// each side's sealed deposit forwarded to E, released by E in one
// transaction, each party node told, fetching the other side's deposit
// from E and releasing its case by the one-server path.
func TestHandoverThroughEscrowNode(t *testing.T) {
	w := newEscrowWorld(t)
	a, b, e := w.a, w.b, w.e
	prop, err := a.esc.Propose(ctx, a.me, escrow.ProposeInput{AgreementID: w.doc.ID, Delivers: "our dossier on X", Expects: "yours on Y"})
	if err != nil {
		t.Fatal(err)
	}
	id := prop.Handover.ID
	if got := a.fed.SendDue(ctx); got != 2 {
		t.Fatalf("A's SendDue closed %d, want the case to B and to E", got)
	}
	if s := caseState(t, b, id); s != store.HandoverProposed {
		t.Fatalf("on B the case is %s", s)
	}
	if s := heldState(t, w, id); s != store.HeldProposed {
		t.Fatalf("on E the case is %s", s)
	}
	if _, err := b.esc.Decide(ctx, b.me, id, true); err != nil {
		t.Fatal(err)
	}
	if got := b.fed.SendDue(ctx); got != 2 {
		t.Fatalf("B's SendDue closed %d, want the acceptance to A and to E", got)
	}
	if s := caseState(t, a, id); s != store.HandoverAccepted {
		t.Fatalf("on A the case is %s", s)
	}
	// A plain deposit across nodes is refused on the depositor's node.
	if _, err := a.esc.Deposit(ctx, a.me, id, escrow.DepositInput{Content: []byte(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000001","objects":[` + string(ind(1, 1)) + `]}`)}); !errors.Is(err, escrow.ErrSealedOnly) {
		t.Fatalf("plain deposit across nodes: %v, want sealed_only", err)
	}
	aliceSealed := sealTo(t, b, "alice's dossier")
	deposit(t, a, id, aliceSealed)
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("A's SendDue closed %d, want the deposit to E", got)
	}
	if _, err := e.esc.HeldCase(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Neither party node can fetch anything before the release.
	if status, code, _ := call(t, b, e, PathEscrowFetch, escrow.FetchRequest{Handover: id, Depositor: a.me.PartyID}); status != 409 || code != "not_released" {
		t.Fatalf("fetch before release: %d %s", status, code)
	}
	bobSealed := sealTo(t, a, "bob's dossier")
	deposit(t, b, id, bobSealed)
	if got := b.fed.SendDue(ctx); got != 1 {
		t.Fatalf("B's SendDue closed %d, want the deposit to E", got)
	}
	if s := heldState(t, w, id); s != store.HeldReleased {
		t.Fatalf("on E the case is %s after both deposits", s)
	}
	// Before E's verdict arrives, neither side has the other's deposit.
	if _, err := a.esc.Fetch(ctx, a.me, id, ""); err == nil {
		t.Fatal("A served bob's deposit before E's verdict")
	}
	if got := e.fed.SendDue(ctx); got != 2 {
		t.Fatalf("E's SendDue closed %d, want the verdict to A and B", got)
	}
	for _, c := range []struct {
		n    *fedNode
		want []byte
	}{{a, bobSealed}, {b, aliceSealed}} {
		if s := caseState(t, c.n, id); s != store.HandoverReleased {
			t.Fatalf("on %s the case is %s", c.n.me.Name, s)
		}
		d, err := c.n.esc.Fetch(ctx, c.n.me, id, "")
		if err != nil || !bytes.Equal(d.Content, c.want) || !d.Sealed {
			t.Fatalf("%s fetches %d bytes sealed %v, %v", c.n.me.Name, len(d.Content), d.Sealed, err)
		}
		got := strings.Join(ledgerKinds(t, c.n.st, id), " ")
		if !strings.HasSuffix(got, "handover.deposit_committed handover.deposit_committed handover.released") {
			t.Fatalf("%s's ledger for the case: %s", c.n.me.Name, got)
		}
	}
	if got := strings.Join(ledgerKinds(t, e.st, id), " "); got != "handover.proposed handover.proposed handover.deposit_committed handover.deposit_committed handover.released" {
		t.Fatalf("E's ledger for the case: %s", got)
	}
	// The verdict again changes nothing.
	a.mu.Lock()
	heard := len(a.heard)
	a.mu.Unlock()
	v := escrow.VerdictMessage{Handover: id, State: store.HandoverReleased}
	if status, _, out := call(t, e, a, PathHandoverVerdict, v); status != 200 || !bytes.Contains(out, []byte(`"duplicate":true`)) {
		t.Fatalf("verdict again: %d %s", status, out)
	}
	if heard+1 != len(a.heard) {
		t.Fatal("a recorded verdict made A fetch again")
	}
}

// Hostile nodes with valid, pinned keys: each attempt is refused with a
// code, changes nothing, the local party hears of what concerns its case,
// and the nodes keep serving.
func TestHostileNodesAroundEscrow(t *testing.T) {
	w := newEscrowWorld(t)
	a, b, e := w.a, w.b, w.e
	d := newFedNode(t, "dave") // pinned by everyone, named by no document
	for _, n := range []*fedNode{a, b, e} {
		n.pin(t, "delta", d)
		d.pin(t, n.me.Name, n)
	}
	prop, err := a.esc.Propose(ctx, a.me, escrow.ProposeInput{AgreementID: w.doc.ID, Delivers: "x", Expects: "y"})
	if err != nil {
		t.Fatal(err)
	}
	id := prop.Handover.ID
	var toE escrow.CaseMessage
	for _, o := range a.pending(t) {
		if o.Kind == escrow.OutboxHeldCase {
			if err := json.Unmarshal(o.Body, &toE); err != nil {
				t.Fatal(err)
			}
		}
	}
	if toE.Handover != id {
		t.Fatal("no case for E in A's outbox")
	}
	changed := toE
	changed.DocumentSHA256 = "sha256:" + strings.Repeat("0", 64)
	// D relays alice's case as if it were her node.
	if status, code, _ := call(t, d, e, PathEscrowCase, toE); status != 403 || code != "not_party_node" {
		t.Fatalf("case relayed by a node not alice's: %d %s", status, code)
	}
	// A sends the case to D, which the document does not name as escrow.
	if status, code, _ := call(t, a, d, PathEscrowCase, toE); status != 403 || code != "not_escrow_node" {
		t.Fatalf("case sent to a node not named escrow: %d %s", status, code)
	}
	if status, code, _ := call(t, a, e, PathEscrowCase, changed); status != 409 || code != "document_mismatch" {
		t.Fatalf("case whose document hash does not match: %d %s", status, code)
	}
	if _, err := e.esc.HeldCase(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("E holds a case it refused: %v", err)
	}
	toB := toE
	toB.Document, toB.Signer, toB.Signature = nil, nil, nil
	changedB := toB
	changedB.DocumentSHA256 = changed.DocumentSHA256
	if status, code, _ := call(t, a, b, PathHandoverCase, changedB); status != 409 || code != "document_mismatch" {
		t.Fatalf("B took a case under another document: %d %s", status, code)
	}
	// The genuine messages go through, and the acceptance.
	if got := a.fed.SendDue(ctx); got != 2 {
		t.Fatalf("A's SendDue closed %d", got)
	}
	if _, err := b.esc.Decide(ctx, b.me, id, true); err != nil {
		t.Fatal(err)
	}
	b.fed.SendDue(ctx)
	if s := heldState(t, w, id); s != store.HeldAccepted {
		t.Fatalf("on E the case is %s", s)
	}
	sealed := sealTo(t, b, "alice's part")
	sum := sha256.Sum256(sealed)
	dep := escrow.DepositMessage{Handover: id, Party: a.me.PartyID, SHA256: hex.EncodeToString(sum[:]), Content: sealed}
	// B forwards a deposit in alice's name.
	if status, code, _ := call(t, b, e, PathEscrowDeposit, dep); status != 403 || code != "not_party_node" {
		t.Fatalf("deposit forwarded by the other side's node: %d %s", status, code)
	}
	// An unsealed deposit, from the right node.
	plain := dep
	plain.Content = []byte(`{"type":"bundle"}`)
	psum := sha256.Sum256(plain.Content)
	plain.SHA256 = hex.EncodeToString(psum[:])
	if status, code, _ := call(t, a, e, PathEscrowDeposit, plain); status != 422 || code != "sealed_only" {
		t.Fatalf("unsealed deposit: %d %s", status, code)
	}
	deposit(t, a, id, sealed)
	a.fed.SendDue(ctx)
	// The same deposit again is a duplicate; another one from alice's node
	// is refused; neither changes what E holds.
	if status, _, out := call(t, a, e, PathEscrowDeposit, dep); status != 200 || !bytes.Contains(out, []byte(`"duplicate":true`)) {
		t.Fatalf("replayed deposit: %d %s", status, out)
	}
	other := sealTo(t, b, "something else")
	osum := sha256.Sum256(other)
	if status, code, _ := call(t, a, e, PathEscrowDeposit, escrow.DepositMessage{Handover: id, Party: a.me.PartyID, SHA256: hex.EncodeToString(osum[:]), Content: other}); status != 409 || code != "conflict" {
		t.Fatalf("second deposit of one side: %d %s", status, code)
	}
	held, err := e.st.HeldCases().Deposit(ctx, id, a.me.PartyID)
	if err != nil || !bytes.Equal(held.Content, sealed) {
		t.Fatalf("E holds %d bytes for alice, %v", len(held.Content), err)
	}
	deposit(t, b, id, sealTo(t, a, "bob's part"))
	b.fed.SendDue(ctx)
	// A release fetched by a node that is not the recipient's.
	for _, c := range []struct {
		from      *fedNode
		depositor string
	}{{d, a.me.PartyID}, {a, a.me.PartyID}, {b, b.me.PartyID}} {
		if status, code, _ := call(t, c.from, e, PathEscrowFetch, escrow.FetchRequest{Handover: id, Depositor: c.depositor}); status != 403 || code != "not_party_node" {
			t.Fatalf("fetch by %s of %s's deposit: %d %s", c.from.me.Name, c.depositor, status, code)
		}
	}
	// A verdict from a node that is not the escrow node: refused, and
	// alice is told.
	if status, code, _ := call(t, d, a, PathHandoverVerdict, escrow.VerdictMessage{Handover: id, State: store.HandoverExpired}); status != 403 || code != "not_escrow_node" {
		t.Fatalf("verdict from a node not the escrow node: %d %s", status, code)
	}
	if s := caseState(t, a, id); s != store.HandoverAccepted {
		t.Fatalf("a forged verdict moved A's case to %s", s)
	}
	evs, err := a.st.Events().After(ctx, a.me.PartyID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	told := false
	for _, ev := range evs {
		told = told || (ev.Kind == "node.handover_refused" && ev.Subject == id && bytes.Contains(ev.Data, []byte("not_escrow_node")))
	}
	if !told {
		t.Fatal("alice was not told of the forged verdict")
	}
	// E keeps serving: the genuine verdict releases both.
	if got := e.fed.SendDue(ctx); got != 2 {
		t.Fatalf("E's SendDue closed %d", got)
	}
	if caseState(t, a, id) != store.HandoverReleased || caseState(t, b, id) != store.HandoverReleased {
		t.Fatal("the genuine release did not reach both nodes")
	}
}

// With one deposit in, the deadline decides at E: both parties' nodes hear
// the case expired and destroy what they hold; nothing was released.
func TestEscrowNodeExpiresAtDeadline(t *testing.T) {
	w := newEscrowWorld(t)
	a, b, e := w.a, w.b, w.e
	prop, err := a.esc.Propose(ctx, a.me, escrow.ProposeInput{AgreementID: w.doc.ID, Delivers: "x", Expects: "y", Deadline: time.Now().Add(30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	id := prop.Handover.ID
	a.fed.SendDue(ctx)
	if _, err := b.esc.Decide(ctx, b.me, id, true); err != nil {
		t.Fatal(err)
	}
	b.fed.SendDue(ctx)
	deposit(t, a, id, sealTo(t, b, "alice's part"))
	a.fed.SendDue(ctx)
	// A's own sweeper leaves an accepted case between nodes to E.
	late := func() time.Time { return time.Now().Add(time.Hour) }
	a.esc.SetClock(late)
	if n, err := a.esc.Sweep(ctx); err != nil || n != 0 || caseState(t, a, id) != store.HandoverAccepted {
		t.Fatalf("A's sweep expired %d (%v); the case is %s", n, err, caseState(t, a, id))
	}
	e.esc.SetClock(late)
	if n, err := e.esc.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("E's sweep expired %d, %v", n, err)
	}
	if heldState(t, w, id) != store.HeldExpired {
		t.Fatal("E did not expire the case")
	}
	if _, err := e.st.HeldCases().Deposit(ctx, id, a.me.PartyID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("E kept alice's deposit after expiry: %v", err)
	}
	// bob's deposit now comes too late.
	bs := sealTo(t, a, "bob's part")
	bsum := sha256.Sum256(bs)
	if status, code, _ := call(t, b, e, PathEscrowDeposit, escrow.DepositMessage{Handover: id, Party: b.me.PartyID, SHA256: hex.EncodeToString(bsum[:]), Content: bs}); status != 409 || code != "conflict" {
		t.Fatalf("deposit after expiry: %d %s", status, code)
	}
	// E's verdicts were written at its (late) clock: send them now.
	for _, o := range e.pending(t) {
		if err := e.ex.OutboxRetry(ctx, o.Seq, 0, time.Now(), ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.fed.SendDue(ctx); got != 2 {
		t.Fatalf("E's SendDue closed %d", got)
	}
	for _, n := range []*fedNode{a, b} {
		if s := caseState(t, n, id); s != store.HandoverExpired {
			t.Fatalf("on %s the case is %s", n.me.Name, s)
		}
	}
	if _, err := a.st.Handovers().Deposit(ctx, id, a.me.PartyID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("A kept alice's deposit after E's expiry: %v", err)
	}
}

// A request alice filed on A, answered by bob with a handover he proposes
// on B, is fulfilled on both nodes by the escrowed release: the case
// carries the request's id to A, bob's fulfilment reaches A once A holds
// the case, and each node's release (after E's verdict) runs the request
// hook in its own transaction.
func TestRequestFulfilledByEscrowedHandover(t *testing.T) {
	w := newEscrowWorld(t)
	a, b, e := w.a, w.b, w.e
	for _, n := range []*fedNode{a, b} {
		n.fed.Requests = request.New(n.st, n.ex)
	}
	res, err := a.fed.Requests.File(ctx, a.me, request.FileInput{AgreementID: w.doc.ID, Subject: "crew X", Reason: "case 7"})
	if err != nil {
		t.Fatal(err)
	}
	reqID := res.Request.ID
	a.fed.SendDue(ctx)
	prop, err := b.esc.Propose(ctx, b.me, escrow.ProposeInput{AgreementID: w.doc.ID, Delivers: "crew X dossier", Expects: "receipt", RequestID: reqID})
	if err != nil {
		t.Fatal(err)
	}
	id := prop.Handover.ID
	if _, err := b.fed.Requests.Fulfil(ctx, b.me, reqID, id); err != nil {
		t.Fatal(err)
	}
	if got := b.fed.SendDue(ctx); got != 3 {
		t.Fatalf("B's SendDue closed %d, want the case to A and E and the answer to A", got)
	}
	if h, err := a.st.Handovers().Get(ctx, id); err != nil || h.RequestID != reqID {
		t.Fatalf("on A the case answers %q, %v", h.RequestID, err)
	}
	if _, err := a.esc.Decide(ctx, a.me, id, true); err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	deposit(t, b, id, sealTo(t, a, "bob's dossier"))
	deposit(t, a, id, sealTo(t, b, "alice's receipt"))
	b.fed.SendDue(ctx)
	a.fed.SendDue(ctx)
	if got := e.fed.SendDue(ctx); got != 2 {
		t.Fatalf("E's SendDue closed %d", got)
	}
	for _, c := range []struct {
		n  *fedNode
		rs *request.Service
	}{{a, a.fed.Requests}, {b, b.fed.Requests}} {
		r, err := c.rs.Get(ctx, c.n.me, reqID)
		if err != nil || r.State != store.RequestFulfilled || r.HandoverID != id {
			t.Fatalf("on %s the request is %+v, %v", c.n.me.Name, r, err)
		}
		if got := ledgerKinds(t, c.n.st, reqID); got[len(got)-1] != "request.fulfilled" {
			t.Fatalf("on %s the request's ledger: %v", c.n.me.Name, got)
		}
	}
}

// A case the escrow node refused ends on both party nodes at its
// deadline, as on one server: neither side gets anything. E had not
// pinned bravo when alice's case came, so it refused the case (its
// operator pins bravo later); bob's acceptance is answered too_early
// until the deadline, then deadline_passed; each party node, knowing E
// refused something the release needs, expires its case and destroys its
// deposit. A release verdict from E after that is refused and recorded as
// a peer incident on A, and the case stays expired there.
func TestRefusedCaseExpiresOnPartyNodes(t *testing.T) {
	w := newEscrowWorld(t)
	a, b, e := w.a, w.b, w.e
	if err := NewPeers(e.st).Remove(ctx, "bravo"); err != nil {
		t.Fatal(err)
	}
	prop, err := a.esc.Propose(ctx, a.me, escrow.ProposeInput{AgreementID: w.doc.ID, Delivers: "x", Expects: "y", Deadline: time.Now().Add(30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	id := prop.Handover.ID
	a.fed.SendDue(ctx)
	if _, err := e.esc.HeldCase(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("E holds a case whose counterpart's node it has not pinned: %v", err)
	}
	e.pin(t, "bravo", b)
	if _, err := b.esc.Decide(ctx, b.me, id, true); err != nil {
		t.Fatal(err)
	}
	b.fed.SendDue(ctx)
	deposit(t, a, id, sealTo(t, b, "alice's part"))
	a.fed.SendDue(ctx)
	deposit(t, b, id, sealTo(t, a, "bob's part"))
	b.fed.SendDue(ctx)
	for _, n := range []*fedNode{a, b} {
		if s := caseState(t, n, id); s != store.HandoverAccepted {
			t.Fatalf("on %s the case is %s before the deadline", n.me.Name, s)
		}
	}
	// Before the deadline, B's sweeper leaves its case to E: bob's
	// acceptance is still waiting for the case at E.
	if n, err := b.esc.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("B's sweep before the deadline expired %d, %v", n, err)
	}
	late := func() time.Time { return time.Now().Add(time.Hour) }
	for _, n := range []*fedNode{a, b} {
		n.esc.SetClock(late)
	}
	// B has no word from E yet that it cannot release: the case stays.
	if n, err := b.esc.Sweep(ctx); err != nil || n != 0 || caseState(t, b, id) != store.HandoverAccepted {
		t.Fatalf("B's sweep expired %d (%v) with bob's acceptance still pending at E", n, err)
	}
	// Past the deadline on E's clock, E says so to bob's acceptance, and
	// bob's deposit behind it is refused as for no case.
	e.esc.SetClock(late)
	for _, o := range b.pending(t) {
		if err := b.ex.OutboxRetry(ctx, o.Seq, 0, time.Now(), ""); err != nil {
			t.Fatal(err)
		}
	}
	b.fed.SendDue(ctx)
	if p := b.pending(t); len(p) != 0 {
		t.Fatalf("B still owes %d messages", len(p))
	}
	for _, n := range []*fedNode{a, b} {
		if got, err := n.esc.Sweep(ctx); err != nil || got != 1 {
			t.Fatalf("%s's sweep expired %d, %v", n.me.Name, got, err)
		}
		if s := caseState(t, n, id); s != store.HandoverExpired {
			t.Fatalf("on %s the case is %s after the deadline", n.me.Name, s)
		}
		if _, err := n.st.Handovers().Deposit(ctx, id, n.me.PartyID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s kept its party's deposit after expiry: %v", n.me.Name, err)
		}
		kinds := ledgerKinds(t, n.st, id)
		if kinds[len(kinds)-1] != string(ledger.KindHandoverExpired) {
			t.Fatalf("%s's ledger for the case ends with %v", n.me.Name, kinds)
		}
	}
	// E's late word that it released (a hostile or confused escrow node)
	// does not release A's case, and A records it.
	v := escrow.VerdictMessage{Handover: id, State: store.HandoverReleased, LedgerIndex: 99,
		Deposits: map[string]string{a.me.PartyID: strings.Repeat("a", 64), w.bob.PartyID: strings.Repeat("b", 64)}}
	for range 2 {
		if status, code, _ := call(t, e, a, PathHandoverVerdict, v); status != http.StatusConflict || code != "deadline_passed" {
			t.Fatalf("a late release verdict: %d %s, want 409 deadline_passed", status, code)
		}
	}
	if s := caseState(t, a, id); s != store.HandoverExpired {
		t.Fatalf("after the late verdict A's case is %s", s)
	}
	is, err := a.st.PeerLogs().PeerIncidents(ctx, 10)
	if err != nil || len(is) != 1 || is[0].Kind != escrow.IncidentLateRelease || is[0].Peer != "echo" || !strings.Contains(is[0].Detail, id) {
		t.Fatalf("A's incidents = %+v, %v; want one late_release by echo", is, err)
	}
	if kinds := ledgerKinds(t, a.st, is[0].KeyID); len(kinds) != 1 || kinds[0] != string(ledger.KindNodePeerIncident) {
		t.Fatalf("A's ledger under E's key id: %v", kinds)
	}
	// An expiry verdict, as an honest E would send, changes nothing.
	if status, code, _ := call(t, e, b, PathHandoverVerdict, escrow.VerdictMessage{Handover: id, State: store.HandoverExpired}); status != 200 || code != "" {
		t.Fatalf("an expiry verdict after the local expiry: %d %s", status, code)
	}
}

// TestLargeDepositThroughEscrowNode: a sealed deposit larger than one
// node request (5 MiB; a round 2 of private matching at the cap across
// nodes is about 4) reaches the escrow node as its first part, E reads
// the rest from the depositor's node in parts, releases both, and each
// party node fetches the other's in parts: both hold the same bytes.
// Only E is answered by the depositor's node, and only about its own
// party's deposit.
func TestLargeDepositThroughEscrowNode(t *testing.T) {
	w := newEscrowWorld(t)
	a, b, e := w.a, w.b, w.e
	prop, err := a.esc.Propose(ctx, a.me, escrow.ProposeInput{AgreementID: w.doc.ID, Delivers: "a large dossier", Expects: "a small one"})
	if err != nil {
		t.Fatal(err)
	}
	id := prop.Handover.ID
	a.fed.SendDue(ctx)
	if _, err := b.esc.Decide(ctx, b.me, id, true); err != nil {
		t.Fatal(err)
	}
	b.fed.SendDue(ctx)
	large := sealTo(t, b, strings.Repeat("0123456789abcdef", 5<<20/16))
	deposit(t, a, id, large)
	a.depositBytes.Store(0)
	// Before E asks for it, only E may read the rest of alice's deposit.
	rest := escrow.FetchRequest{Handover: id, Depositor: a.me.PartyID, Offset: escrow.PartAcrossNodes}
	for _, c := range []struct {
		name string
		from *fedNode
		req  escrow.FetchRequest
		code string
	}{
		{"bob's node asks for alice's deposit", b, rest, "not_escrow_node"},
		{"E asks for a deposit of bob's on alice's node", e, escrow.FetchRequest{Handover: id, Depositor: b.me.PartyID}, "not_found"},
		{"E asks past the end", e, escrow.FetchRequest{Handover: id, Depositor: a.me.PartyID, Offset: int64(len(large))}, "invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, code, _ := call(t, c.from, a, PathHandoverDeposit, c.req); code != c.code {
				t.Fatalf("got %q, want %q", code, c.code)
			}
		})
	}
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("A's SendDue closed %d, want the deposit to E", got)
	}
	held, err := e.st.HeldCases().Deposit(ctx, id, a.me.PartyID)
	if err != nil || !bytes.Equal(held.Content, large) {
		t.Fatalf("E holds %d bytes of alice's %d (%v)", len(held.Content), len(large), err)
	}
	// A read of its store no more than the parts it served, not the whole
	// deposit for each part (nor for the asks it refused).
	if got, want := a.depositBytes.Load(), int64(len(large)-escrow.PartAcrossNodes); got != want {
		t.Fatalf("A read %d bytes of deposits to serve %d", got, want)
	}
	e.depositBytes.Store(0)
	// The same deposit again is a duplicate, without reading the rest.
	sum := sha256.Sum256(large)
	first := escrow.DepositMessage{Handover: id, Party: a.me.PartyID, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(large)), Content: large[:escrow.PartAcrossNodes]}
	if status, _, out := call(t, a, e, PathEscrowDeposit, first); status != 200 || !bytes.Contains(out, []byte(`"duplicate":true`)) {
		t.Fatalf("the deposit again: %d %s", status, out)
	}
	small := sealTo(t, a, "bob's short dossier")
	deposit(t, b, id, small)
	b.fed.SendDue(ctx)
	if got := e.fed.SendDue(ctx); got != 2 {
		t.Fatalf("E's SendDue closed %d, want the verdict to A and B", got)
	}
	// E read of its store the two deposits once, in the parts it served,
	// and none of their bytes to see the duplicate or to release.
	if got, want := e.depositBytes.Load(), int64(len(large)+len(small)); got != want {
		t.Fatalf("E read %d bytes of deposits to serve %d", got, want)
	}
	for _, c := range []struct {
		n    *fedNode
		want []byte
	}{{a, small}, {b, large}} {
		d, err := c.n.esc.Fetch(ctx, c.n.me, id, "")
		if err != nil || !bytes.Equal(d.Content, c.want) {
			t.Fatalf("%s fetches %d bytes, want %d (%v)", c.n.me.Name, len(d.Content), len(c.want), err)
		}
	}
	// B read alice's 5 MiB from E in parts of at most FetchPartSize, and
	// E the rest of it from A the same way.
	count := func(n *fedNode) int {
		n.mu.Lock()
		defer n.mu.Unlock()
		asks := 0
		for _, r := range n.heard {
			if bytes.Contains(r, []byte(`"depositor":"`+a.me.PartyID+`"`)) {
				asks++
			}
		}
		return asks
	}
	if got, want := count(e), (len(large)+escrow.FetchPartSize-1)/escrow.FetchPartSize; got != want {
		t.Fatalf("E answered %d asks for alice's deposit, want %d (parts of %d bytes)", got, want, escrow.FetchPartSize)
	}
	if got, want := count(a), 2+(len(large)-escrow.PartAcrossNodes+escrow.FetchPartSize-1)/escrow.FetchPartSize; got != want {
		t.Fatalf("A answered %d asks for alice's deposit, want %d (2 refused, the rest in parts of %d bytes)", got, want, escrow.FetchPartSize)
	}
}
