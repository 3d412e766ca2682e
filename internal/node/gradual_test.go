package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/store"
)

// gradualWorld is alice on A and bob on B under an agreement that names
// no escrow node, countersigned and delivered.
type gradualWorld struct {
	a, b *fedNode
	doc  *agreement.Document
}

func newGradualWorld(t *testing.T) *gradualWorld {
	t.Helper()
	a, b, bob := twoNodes(t)
	doc := a.document(t, bob)
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
	return &gradualWorld{a: a, b: b, doc: doc}
}

// gradualCase proposes a case of n chunks on A and accepts it on B.
func (w *gradualWorld) gradualCase(t *testing.T, n int) string {
	t.Helper()
	prop, err := w.a.esc.Propose(ctx, w.a.me, escrow.ProposeInput{AgreementID: w.doc.ID, Delivers: "our dossier on X", Expects: "yours on Y", Chunks: n})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("A's SendDue closed %d, want the case to B only (no escrow node)", got)
	}
	id := prop.Handover.ID
	if _, err := w.b.esc.Decide(ctx, w.b.me, id, true); err != nil {
		t.Fatal(err)
	}
	if got := w.b.fed.SendDue(ctx); got != 1 {
		t.Fatalf("B's SendDue closed %d, want the acceptance to A", got)
	}
	if s := caseState(t, w.a, id); s != store.HandoverAccepted {
		t.Fatalf("on A the case is %s", s)
	}
	return id
}

// sealedChunks are n chunks from's party deposits, sealed to to's party.
func sealedChunks(t *testing.T, from, to *fedNode, n int) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range out {
		out[i] = sealTo(t, to, fmt.Sprintf(`{"type":"bundle","id":"bundle--%s","objects":[]} chunk %d of %s`, from.me.Name, i+1, from.me.Name))
	}
	return out
}

// commitment is keys' signed commitment of depositor to chunks in case id.
func commitment(t *testing.T, keys *agreement.PrivateKeys, id, depositor string, chunks [][]byte) json.RawMessage {
	t.Helper()
	c := agreement.ChunkCommitment{Handover: id, Depositor: depositor, SignedAt: time.Now()}
	for _, ch := range chunks {
		sum := sha256.Sum256(ch)
		c.Chunks = append(c.Chunks, agreement.ChunkRef{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(ch))})
	}
	signed, err := agreement.SignCommitment(keys, c)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(signed)
	return raw
}

// verdict is keys' signed verdict of recipient on chunk index of depositor.
func verdict(t *testing.T, keys *agreement.PrivateKeys, action, id, depositor, recipient string, index int, chunk []byte, reason string) json.RawMessage {
	t.Helper()
	sum := sha256.Sum256(chunk)
	v, err := agreement.SignChunkVerdict(keys, agreement.ChunkVerdict{Action: action, Handover: id, Depositor: depositor, Recipient: recipient,
		Index: index, SHA256: hex.EncodeToString(sum[:]), Reason: reason, SignedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(v)
	return raw
}

func depositChunks(t *testing.T, n *fedNode, id string, chunks [][]byte) {
	t.Helper()
	if _, err := n.esc.DepositChunks(ctx, n.me, id, commitment(t, n.keys, id, n.me.PartyID, chunks), chunks); err != nil {
		t.Fatal(err)
	}
}

// held returns the chunks of depositor n holds in case id, by index, with
// their content.
func held(t *testing.T, n *fedNode, id, depositor string) map[int][]byte {
	t.Helper()
	cs, err := n.st.Handovers().Chunks(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]byte{}
	for _, c := range cs {
		if c.Depositor != depositor || !c.Held {
			continue
		}
		full, err := n.st.Handovers().Chunk(ctx, id, depositor, c.Index)
		if err != nil {
			t.Fatal(err)
		}
		out[c.Index] = full.Content
	}
	return out
}

func ledgerSize(t *testing.T, n *fedNode) int64 {
	t.Helper()
	size, err := n.st.Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return size
}

// A whole gradual handover between two nodes without an escrow node:
// both commitments relayed, the chunks alternating, each sent only after
// its party confirmed the other side's chunk before, and neither party
// ever holding more than one chunk more than it gave; both nodes end
// released, each holding the other side's whole deposit.
func TestGradualRelease(t *testing.T) {
	w := newGradualWorld(t)
	a, b := w.a, w.b
	const n = 3
	id := w.gradualCase(t, n)
	mine, theirs := sealedChunks(t, a, b, n), sealedChunks(t, b, a, n)
	depositChunks(t, a, id, mine)
	if _, err := a.esc.DepositChunks(ctx, a.me, id, commitment(t, a.keys, id, a.me.PartyID, mine), mine); err == nil {
		t.Fatal("a second deposit of chunks was taken")
	}
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("A sent %d; want its commitment only (bob has not committed: no chunk yet)", got)
	}
	depositChunks(t, b, id, theirs)
	if got := b.fed.SendDue(ctx); got != 1 {
		t.Fatalf("B sent %d; want its commitment only (bob moves second)", got)
	}
	// The balance each step: alice holds of bob's what B sent, and
	// the other way round; never more than one apart.
	balance := func() {
		t.Helper()
		gotA, gotB := len(held(t, a, id, b.me.PartyID)), len(held(t, b, id, a.me.PartyID))
		if d := gotA - gotB; d > 1 || d < -1 {
			t.Fatalf("alice holds %d of bob's chunks, bob %d of alice's", gotA, gotB)
		}
	}
	for k := 1; k <= n; k++ {
		// A sends alice's chunk k (on bob's commitment for k=1, on
		// alice's confirmation of bob's k-1 after).
		want := 2 // alice's confirmation of bob's chunk k-1, and her chunk k
		if k == 1 {
			want = 1
		}
		if got := a.fed.SendDue(ctx); got != want {
			t.Fatalf("round %d: A sent %d, want %d", k, got, want)
		}
		balance()
		if got := held(t, b, id, a.me.PartyID); !bytes.Equal(got[k], mine[k-1]) {
			t.Fatalf("round %d: B does not hold alice's chunk %d", k, k)
		}
		if got := b.fed.SendDue(ctx); got != 0 {
			t.Fatalf("round %d: B sent %d before bob confirmed", k, got)
		}
		if _, err := b.esc.JudgeChunk(ctx, b.me, id, verdict(t, b.keys, agreement.ChunkConfirm, id, a.me.PartyID, b.me.PartyID, k, mine[k-1], "")); err != nil {
			t.Fatalf("round %d: bob confirms: %v", k, err)
		}
		if got := b.fed.SendDue(ctx); got != 2 {
			t.Fatalf("round %d: B sent %d, want bob's confirmation and his chunk", k, got)
		}
		balance()
		if got := a.fed.SendDue(ctx); got != 0 && k < n {
			t.Fatalf("round %d: A sent %d before alice confirmed", k, got)
		}
		if _, err := a.esc.JudgeChunk(ctx, a.me, id, verdict(t, a.keys, agreement.ChunkConfirm, id, b.me.PartyID, a.me.PartyID, k, theirs[k-1], "")); err != nil {
			t.Fatalf("round %d: alice confirms: %v", k, err)
		}
	}
	a.fed.SendDue(ctx) // alice's last confirmation
	for _, x := range []*fedNode{a, b} {
		if s := caseState(t, x, id); s != store.HandoverReleased {
			t.Fatalf("on %s the case is %s", x.me.Name, s)
		}
		v, err := x.esc.Show(ctx, x.me, id)
		if err != nil || v.Gradual == nil || v.Gradual.Chunks != n || len(v.Gradual.Committed) != 2 || len(v.Gradual.List) != 2*n {
			t.Fatalf("show on %s: %+v, %v", x.me.Name, v.Gradual, err)
		}
		for _, c := range v.Gradual.List {
			if c.MovedAt.IsZero() || c.Confirmed.IsZero() {
				t.Fatalf("on %s chunk %d of %s is not moved and confirmed: %+v", x.me.Name, c.Index, c.Depositor, c)
			}
		}
		kinds := ledgerKinds(t, x.st, id)
		count := map[string]int{}
		for _, k := range kinds {
			count[k]++
		}
		if count["handover.chunks_committed"] != 2 || count["handover.chunk_moved"] != 2*n || count["handover.chunk_confirmed"] != 2*n || count["handover.released"] != 1 {
			t.Fatalf("ledger of %s: %v", x.me.Name, count)
		}
	}
	for k, c := range held(t, a, id, b.me.PartyID) {
		if !bytes.Equal(c, theirs[k-1]) {
			t.Fatalf("alice's copy of bob's chunk %d differs", k)
		}
	}
	if len(held(t, a, id, b.me.PartyID)) != n || len(held(t, b, id, a.me.PartyID)) != n {
		t.Fatal("a side does not hold the other's whole deposit")
	}
	// Nothing is left to send.
	if got := len(a.pending(t)) + len(b.pending(t)); got != 0 {
		t.Fatalf("%d outbox entries left", got)
	}
}

// A hostile node A (valid credentials, pinned) attacks B's gradual case:
// every step out of turn, with the wrong bytes, with a signature not of
// the party's known key, with another chunk count, for a party not its
// own or a case B does not hold is refused with a code and stores
// nothing; replays are answered as duplicates and change nothing; a
// chunk with the wrong bytes is recorded as a peer incident.
func TestGradualHostilePeer(t *testing.T) {
	w := newGradualWorld(t)
	a, b := w.a, w.b
	const n = 3
	id := w.gradualCase(t, n)
	mine, theirs := sealedChunks(t, a, b, n), sealedChunks(t, b, a, n)
	depositChunks(t, b, id, theirs)
	if got := b.fed.SendDue(ctx); got != 1 {
		t.Fatalf("B sent %d, want bob's commitment", got)
	}
	alice := a.me.PartyID
	bobID := b.me.PartyID
	refused := func(what string, path string, body any, status int, code string) {
		t.Helper()
		before := ledgerSize(t, b)
		got, gotCode, _ := call(t, a, b, path, body)
		if got != status || gotCode != code {
			t.Fatalf("%s: %d %s, want %d %s", what, got, gotCode, status, code)
		}
		if ledgerSize(t, b) != before {
			t.Fatalf("%s: B's ledger grew", what)
		}
	}
	mallory, err := agreement.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	refused("a commitment not signed by alice's known key", PathHandoverCommitment,
		escrow.CommitmentMessage{Handover: id, Commitment: commitment(t, mallory, id, alice, mine)}, http.StatusUnprocessableEntity, "unknown_party_key")
	refused("a commitment to another chunk count", PathHandoverCommitment,
		escrow.CommitmentMessage{Handover: id, Commitment: commitment(t, a.keys, id, alice, sealedChunks(t, a, b, n+1))}, http.StatusUnprocessableEntity, "chunk_count")
	refused("bob's commitment relayed by A", PathHandoverCommitment,
		escrow.CommitmentMessage{Handover: id, Commitment: commitment(t, b.keys, id, bobID, theirs)}, http.StatusForbidden, "not_party_node")
	refused("a commitment for a case B does not hold", PathHandoverCommitment,
		escrow.CommitmentMessage{Handover: "handover--00000000-0000-4000-8000-00000000dead", Commitment: commitment(t, a.keys, "handover--00000000-0000-4000-8000-00000000dead", alice, mine)},
		http.StatusNotFound, "not_found")
	refused("a chunk before alice's commitment", PathHandoverChunk, chunkMsg(id, alice, 1, mine[0]), http.StatusConflict, "out_of_turn")
	refused("the case again with another chunk count", PathHandoverCase, escrow.CaseMessage{Handover: id, Agreement: w.doc.ID, Proposer: alice,
		Counterpart: bobID, ProposerDelivers: "our dossier on X", CounterpartDelivers: "yours on Y", Deadline: time.Now().Add(30 * time.Minute),
		Chunks: n + 1, DocumentSHA256: escrow.DocumentDigest(w.doc)}, http.StatusUnprocessableEntity, "chunk_count")
	if g, err := b.st.Handovers().Gradual(ctx, id); err != nil || g.ProposerCommitment != nil || g.Chunks != n {
		t.Fatalf("B's case after the refusals: %+v, %v", g, err)
	}

	// Alice deposits for real: her commitment reaches B, and A queues
	// her chunk 1 (bob committed). A hostile A sends other bytes first.
	depositChunks(t, a, id, mine)
	queued := a.pending(t)
	if len(queued) != 2 || queued[0].Kind != escrow.OutboxCommitment || queued[1].Kind != escrow.OutboxChunk {
		t.Fatalf("A queued %+v, want alice's commitment and her chunk 1", queued)
	}
	if status, code, _ := call(t, a, b, PathHandoverCommitment, json.RawMessage(queued[0].Body)); status != http.StatusOK {
		t.Fatalf("alice's commitment: %d %s", status, code)
	}
	other := sealTo(t, b, "not what alice committed to")
	before := ledgerSize(t, b)
	if status, code, _ := call(t, a, b, PathHandoverChunk, chunkMsg(id, alice, 1, other)); status != http.StatusUnprocessableEntity || code != "chunk_mismatch" {
		t.Fatalf("chunk 1 with other bytes: %d %s", status, code)
	}
	if ledgerSize(t, b) != before+1 {
		t.Fatalf("B's ledger after the mismatch: %d entries more; want the incident only", ledgerSize(t, b)-before)
	}
	incs, err := b.st.PeerLogs().PeerIncidents(ctx, 10)
	if err != nil || len(incs) != 1 || incs[0].Kind != escrow.IncidentChunkMismatch || incs[0].Peer != "alpha" {
		t.Fatalf("B's incidents: %+v, %v", incs, err)
	}
	if len(held(t, b, id, alice)) != 0 {
		t.Fatal("B stored a chunk it refused")
	}
	refused("chunk 2 before chunk 1", PathHandoverChunk, chunkMsg(id, alice, 2, mine[1]), http.StatusConflict, "out_of_turn")
	if got := a.fed.SendDue(ctx); got != 2 {
		t.Fatalf("A sent %d, want alice's commitment (a duplicate now) and her chunk 1", got)
	}
	before = ledgerSize(t, b)
	status, code, out := call(t, a, b, PathHandoverChunk, chunkMsg(id, alice, 1, mine[0]))
	var rc escrow.Receipt
	if status != http.StatusOK || code != "" || json.Unmarshal(out, &rc) != nil || !rc.Duplicate || ledgerSize(t, b) != before {
		t.Fatalf("replayed chunk 1: %d %s %s", status, code, out)
	}
	refused("chunk 2 out of turn (bob sent nothing yet)", PathHandoverChunk, chunkMsg(id, alice, 2, mine[1]), http.StatusConflict, "out_of_turn")
	refused("alice confirming bob's chunk 1 before it was sent", PathHandoverChunkVerdict,
		escrow.ChunkVerdictMessage{Handover: id, Verdict: verdict(t, a.keys, agreement.ChunkConfirm, id, bobID, alice, 1, theirs[0], "")},
		http.StatusConflict, "out_of_turn")
	refused("a chunk of bob's relayed by A", PathHandoverChunk, chunkMsg(id, bobID, 1, theirs[0]), http.StatusForbidden, "not_party_node")

	// Bob confirms alice's chunk 1: B sends his chunk 1. Before the
	// confirmation reaches A, a hostile B relays one of bob's not signed
	// with his key, and one of a chunk not sent.
	if _, err := b.esc.JudgeChunk(ctx, b.me, id, verdict(t, b.keys, agreement.ChunkConfirm, id, alice, bobID, 1, mine[0], "")); err != nil {
		t.Fatal(err)
	}
	refusedAtA := func(what, path string, body any, status int, code string) {
		t.Helper()
		before := ledgerSize(t, a)
		got, gotCode, _ := call(t, b, a, path, body)
		if got != status || gotCode != code {
			t.Fatalf("%s: %d %s, want %d %s", what, got, gotCode, status, code)
		}
		if ledgerSize(t, a) != before {
			t.Fatalf("%s: A's ledger grew", what)
		}
	}
	refusedAtA("a confirmation not signed by bob's known key", PathHandoverChunkVerdict,
		escrow.ChunkVerdictMessage{Handover: id, Verdict: verdict(t, mallory, agreement.ChunkConfirm, id, alice, bobID, 1, mine[0], "")},
		http.StatusUnprocessableEntity, "unknown_party_key")
	refusedAtA("a confirmation of alice's chunk 2, never sent", PathHandoverChunkVerdict,
		escrow.ChunkVerdictMessage{Handover: id, Verdict: verdict(t, b.keys, agreement.ChunkConfirm, id, alice, bobID, 2, mine[1], "")},
		http.StatusConflict, "out_of_turn")
	refusedAtA("bob's chunk 2 before alice confirmed his chunk 1", PathHandoverChunk, chunkMsg(id, bobID, 2, theirs[1]), http.StatusConflict, "out_of_turn")
	if got := b.fed.SendDue(ctx); got != 2 {
		t.Fatalf("B sent %d, want bob's confirmation and his chunk 1", got)
	}
	refusedAtA("a rejection of alice's chunk 1, which bob confirmed", PathHandoverChunkVerdict,
		escrow.ChunkVerdictMessage{Handover: id, Verdict: verdict(t, b.keys, agreement.ChunkReject, id, alice, bobID, 1, mine[0], "changed my mind")},
		http.StatusConflict, "out_of_turn")
	if got := held(t, a, id, bobID); len(got) != 1 || !bytes.Equal(got[1], theirs[0]) {
		t.Fatalf("A holds %d of bob's chunks", len(got))
	}
	// A replayed confirmation is a duplicate; it does not make A send.
	before = ledgerSize(t, a)
	status, code, _ = call(t, b, a, PathHandoverChunkVerdict,
		escrow.ChunkVerdictMessage{Handover: id, Verdict: mustConfirmation(t, a, id, alice, 1)})
	if status != http.StatusOK || code != "" || ledgerSize(t, a) != before || len(a.pending(t)) != 0 {
		t.Fatalf("replayed confirmation: %d %s, %d pending", status, code, len(a.pending(t)))
	}
	// A case B does not hold, and a one-step case, take no chunk.
	refused("a chunk for a case B does not hold", PathHandoverChunk,
		chunkMsg("handover--00000000-0000-4000-8000-00000000beef", alice, 1, mine[0]), http.StatusNotFound, "not_found")
}

// mustConfirmation is the confirmation n recorded of depositor's chunk.
func mustConfirmation(t *testing.T, n *fedNode, id, depositor string, index int) json.RawMessage {
	t.Helper()
	c, err := n.st.Handovers().Chunk(ctx, id, depositor, index)
	if err != nil || c.Confirmation == nil {
		t.Fatalf("confirmation of chunk %d: %v", index, err)
	}
	return c.Confirmation
}

func chunkMsg(id, depositor string, index int, content []byte) escrow.ChunkMessage {
	sum := sha256.Sum256(content)
	return escrow.ChunkMessage{Handover: id, Depositor: depositor, Index: index, SHA256: hex.EncodeToString(sum[:]), Content: content}
}

// A party that finds a chunk garbage rejects it: both nodes stop the
// exchange (ledger, events), nothing more is sent, each node destroys its
// party's chunks that did not leave it, and what was exchanged stays: at
// most one chunk apart. A deadline stops another case the same way.
func TestGradualRejectAndDeadline(t *testing.T) {
	w := newGradualWorld(t)
	a, b := w.a, w.b
	const n = 3
	id := w.gradualCase(t, n)
	mine, theirs := sealedChunks(t, a, b, n), sealedChunks(t, b, a, n)
	depositChunks(t, a, id, mine)
	a.fed.SendDue(ctx)
	depositChunks(t, b, id, theirs)
	b.fed.SendDue(ctx)
	a.fed.SendDue(ctx) // alice's chunk 1
	if _, err := b.esc.JudgeChunk(ctx, b.me, id, verdict(t, b.keys, agreement.ChunkConfirm, id, a.me.PartyID, b.me.PartyID, 1, mine[0], "")); err != nil {
		t.Fatal(err)
	}
	b.fed.SendDue(ctx) // bob's confirmation and his chunk 1
	var noReason agreement.ChunkVerdict
	json.Unmarshal(verdict(t, a.keys, agreement.ChunkConfirm, id, b.me.PartyID, a.me.PartyID, 1, theirs[0], ""), &noReason)
	noReason.Action = agreement.ChunkReject
	raw, _ := json.Marshal(noReason)
	if _, err := a.esc.JudgeChunk(ctx, a.me, id, raw); err == nil {
		t.Fatal("a rejection without a reason was taken")
	}
	if _, err := a.esc.JudgeChunk(ctx, a.me, id, verdict(t, a.keys, agreement.ChunkReject, id, b.me.PartyID, a.me.PartyID, 1, theirs[0], "not what was promised")); err != nil {
		t.Fatal(err)
	}
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("A sent %d, want the rejection only", got)
	}
	for _, x := range []*fedNode{a, b} {
		if s := caseState(t, x, id); s != store.HandoverStopped {
			t.Fatalf("on %s the case is %s", x.me.Name, s)
		}
		g, err := x.st.Handovers().Gradual(ctx, id)
		if err != nil || g.StoppedBy != a.me.PartyID || g.StopReason != "not what was promised" {
			t.Fatalf("on %s: %+v, %v", x.me.Name, g, err)
		}
		if !contains(ledgerKinds(t, x.st, id), "handover.stopped") {
			t.Fatalf("no handover.stopped on %s", x.me.Name)
		}
		if len(x.pending(t)) != 0 {
			t.Fatalf("%s has something left to send", x.me.Name)
		}
	}
	// Each holds the other's chunk 1; alice's chunks 2, 3 and bob's 2, 3
	// never left their nodes and are destroyed.
	if got := held(t, a, id, a.me.PartyID); len(got) != 1 || got[1] == nil {
		t.Fatalf("A holds alice's chunks %v; want only chunk 1 (sent)", keys(got))
	}
	if got := held(t, b, id, b.me.PartyID); len(got) != 1 || got[1] == nil {
		t.Fatalf("B holds bob's chunks %v; want only chunk 1 (sent)", keys(got))
	}
	if len(held(t, a, id, b.me.PartyID)) != 1 || len(held(t, b, id, a.me.PartyID)) != 1 {
		t.Fatal("what was exchanged did not stay")
	}
	// Nothing moves a stopped case: bob confirming more, a chunk sent
	// anyway.
	if _, err := b.esc.JudgeChunk(ctx, b.me, id, verdict(t, b.keys, agreement.ChunkConfirm, id, a.me.PartyID, b.me.PartyID, 2, mine[1], "")); err == nil {
		t.Fatal("a confirmation on a stopped case was taken")
	}
	if status, code, _ := call(t, a, b, PathHandoverChunk, chunkMsg(id, a.me.PartyID, 2, mine[1])); status != http.StatusConflict || code == "" {
		t.Fatalf("a chunk on a stopped case: %d %s", status, code)
	}

	// The deadline: a second case, one chunk exchanged each way, then
	// both nodes' clocks pass the deadline.
	id2 := w.gradualCase(t, 2)
	m2, t2 := sealedChunks(t, a, b, 2), sealedChunks(t, b, a, 2)
	depositChunks(t, a, id2, m2)
	a.fed.SendDue(ctx)
	depositChunks(t, b, id2, t2)
	b.fed.SendDue(ctx)
	a.fed.SendDue(ctx)
	if _, err := b.esc.JudgeChunk(ctx, b.me, id2, verdict(t, b.keys, agreement.ChunkConfirm, id2, a.me.PartyID, b.me.PartyID, 1, m2[0], "")); err != nil {
		t.Fatal(err)
	}
	b.fed.SendDue(ctx)
	later := time.Now().Add(2 * time.Hour)
	for _, x := range []*fedNode{a, b} {
		x.esc.SetClock(func() time.Time { return later })
		if _, err := x.esc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if s := caseState(t, x, id2); s != store.HandoverExpired {
			t.Fatalf("on %s the second case is %s", x.me.Name, s)
		}
	}
	if got := held(t, a, id2, a.me.PartyID); len(got) != 1 {
		t.Fatalf("after the deadline A holds alice's chunks %v; want chunk 1 only", keys(got))
	}
	if got := held(t, b, id2, b.me.PartyID); len(got) != 1 {
		t.Fatalf("after the deadline B holds bob's chunks %v; want chunk 1 only", keys(got))
	}
	if len(held(t, a, id2, b.me.PartyID)) != 1 || len(held(t, b, id2, a.me.PartyID)) != 1 {
		t.Fatal("what was exchanged before the deadline did not stay")
	}
	if status, code, _ := call(t, a, b, PathHandoverChunk, chunkMsg(id2, a.me.PartyID, 2, m2[1])); status != http.StatusConflict || code != "deadline_passed" {
		t.Fatalf("a chunk after the deadline: %d %s", status, code)
	}
}

// Without an escrow node and without chunks a handover across nodes is
// still refused, and the refusal names --chunks; chunks are refused
// where they mean nothing.
func TestGradualRefusals(t *testing.T) {
	w := newGradualWorld(t)
	_, err := w.a.esc.Propose(ctx, w.a.me, escrow.ProposeInput{AgreementID: w.doc.ID, Delivers: "x", Expects: "y"})
	if !errors.Is(err, exchange.ErrNotAcrossNodes) || !bytes.Contains([]byte(err.Error()), []byte("--chunks")) {
		t.Fatalf("propose without chunks: %v", err)
	}
	for _, c := range []int{1, 65, -2} {
		if _, err := w.a.esc.Propose(ctx, w.a.me, escrow.ProposeInput{AgreementID: w.doc.ID, Delivers: "x", Expects: "y", Chunks: c}); !errors.Is(err, escrow.ErrInvalid) {
			t.Fatalf("propose with %d chunks: %v", c, err)
		}
	}
	e := newEscrowWorld(t)
	if _, err := e.a.esc.Propose(ctx, e.a.me, escrow.ProposeInput{AgreementID: e.doc.ID, Delivers: "x", Expects: "y", Chunks: 4}); !errors.Is(err, escrow.ErrInvalid) {
		t.Fatalf("chunks under an agreement naming an escrow node: %v", err)
	}
	id := w.gradualCase(t, 2)
	content := sealTo(t, w.b, "one bundle")
	sum := sha256.Sum256(content)
	if _, err := w.a.esc.Deposit(ctx, w.a.me, id, escrow.DepositInput{Sealed: true, Content: content, SHA256: hex.EncodeToString(sum[:])}); !errors.Is(err, escrow.ErrNotGradual) {
		t.Fatalf("a one-step deposit in a gradual case: %v", err)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func keys(m map[int][]byte) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}
