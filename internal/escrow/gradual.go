package escrow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
)

// Gradual release (issue 14 item 4, docs/federation.md): a handover
// between two nodes under an agreement that names no escrow node. Each
// side splits its bundle into N chunks sealed to the other and commits,
// signed, to every chunk's SHA-256 and size; the commitment is recorded
// on its node and relayed to the other, which checks the party's
// signature with the key it holds for it. Once both commitments are in,
// the chunks move alternately, each node deciding only about its own
// party's chunks:
//
//   - the proposer's node sends its chunk k+1 only once its party
//     confirmed the counterpart's chunk k (chunk 1 at once);
//   - the counterpart's node sends its chunk k only once its party
//     confirmed the proposer's chunk k.
//
// So neither party ever holds more than one chunk more than it gave. A
// recipient that finds a chunk garbage rejects it, which stops the
// exchange on both nodes; a deadline stops it too. What was exchanged
// stays; what was not is destroyed. Every move goes through the outbox
// in the transaction of the step that allows it, so a crash loses and
// repeats nothing.

// Outbox kinds of gradual release, each sent to its own node endpoint.
const (
	OutboxCommitment   = "handover.commitment"    // depositor's node → recipient's node
	OutboxChunk        = "handover.chunk"         // depositor's node → recipient's node
	OutboxChunkVerdict = "handover.chunk_verdict" // recipient's node → depositor's node
)

// Event kinds of gradual release on a party's stream.
const (
	EventChunksCommitted = "handover.chunks_committed" // the other side committed to its chunks
	EventChunkArrived    = "handover.chunk_arrived"    // a chunk of the other side's is here to open
	EventChunkConfirmed  = "handover.chunk_confirmed"  // the other side confirmed one of yours
	EventStopped         = "handover.stopped"          // a side rejected a chunk
)

// Refusals of gradual release, with the codes peers and parties are
// answered with.
var (
	// ErrOutOfTurn: a chunk or verdict that is not the one due now.
	ErrOutOfTurn = fault.Refine(fault.Tagged(fault.Conflict, "escrow", "not the chunk due now"), nil, "out_of_turn")
	// ErrChunkMismatch: a chunk whose bytes are not the ones committed.
	ErrChunkMismatch = fault.Refine(fault.Tagged(fault.Invalid, "escrow", "the chunk is not the one its depositor committed to"), nil, "chunk_mismatch")
	// ErrChunkCount: a commitment to another number of chunks than the
	// case's.
	ErrChunkCount = fault.Refine(fault.Tagged(fault.Invalid, "escrow", "the number of chunks is not the case's"), nil, "chunk_count")
	// ErrNotGradual: a gradual step on a case released in one step, or
	// the other way round.
	ErrNotGradual = fault.Refine(fault.Tagged(fault.Conflict, "escrow", "the case is not released gradually"), nil, "not_gradual")
)

// CauseStopped is why a request a stopped gradual case answered is open
// again (request.HandoverFailed).
const CauseStopped = "stopped"

// IncidentChunkMismatch is the peer incident of a node that sent a chunk
// whose bytes are not the ones its party committed to.
const IncidentChunkMismatch = "chunk_mismatch"

// CommitmentMessage carries a side's signed commitment to its chunks.
type CommitmentMessage struct {
	Handover   string          `json:"handover"`
	Commitment json.RawMessage `json:"commitment"` // agreement.ChunkCommitment
}

// ChunkMessage carries one sealed chunk.
type ChunkMessage struct {
	Handover  string `json:"handover"`
	Depositor string `json:"depositor"`
	Index     int    `json:"index"`
	SHA256    string `json:"sha256"` // hex
	Content   []byte `json:"content"`
}

// ChunkVerdictMessage carries a recipient's signed confirmation or
// rejection of a chunk.
type ChunkVerdictMessage struct {
	Handover string          `json:"handover"`
	Verdict  json.RawMessage `json:"verdict"` // agreement.ChunkVerdict
}

// gradualMode says how a case under a is released, from the chunk count
// its proposer asks for: in one step on one server or through the escrow
// node (chunks 0), or gradually between two nodes without one.
func gradualMode(a exchange.Agreement, chunks int) (cross bool, err error) {
	doc := a.Status.Document
	switch {
	case doc == nil || !doc.CrossNode():
		if chunks != 0 {
			return false, fault.Errorf("%w: chunks are for handovers between two nodes without an escrow node; on one server both deposits are released in one transaction", ErrInvalid)
		}
		return false, nil
	case doc.EscrowNode != "":
		if chunks != 0 {
			return true, fault.Errorf("%w: agreement %s names an escrow node, which releases both deposits in one step; propose without chunks", ErrInvalid, doc.ID)
		}
		return true, nil
	case chunks == 0:
		return true, fault.Errorf("%w: agreement %s names no escrow node, so no node can release both deposits at once; propose with chunks (parley handover propose --chunks N) for gradual release, or amend it with escrow_node (docs/federation.md)",
			exchange.ErrNotAcrossNodes, doc.ID)
	case chunks < agreement.MinChunks || chunks > agreement.MaxChunks:
		return true, fault.Errorf("%w: a gradual handover has %d to %d chunks, not %d", ErrInvalid, agreement.MinChunks, agreement.MaxChunks, chunks)
	}
	return true, nil
}

// gradualOf returns case h's gradual record, and whether it has one.
func gradualOf(ctx context.Context, tx store.Handle, id string) (store.Gradual, bool, error) {
	g, err := tx.Handovers().Gradual(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Gradual{}, false, nil
	}
	return g, err == nil, err
}

// commitmentOf is side partyID's commitment in g (nil if none yet).
func commitmentOf(g store.Gradual, h store.Handover, partyID string) []byte {
	if partyID == h.Proposer {
		return g.ProposerCommitment
	}
	return g.CounterpartCommitment
}

func setCommitment(g *store.Gradual, h store.Handover, partyID string, raw []byte) {
	if partyID == h.Proposer {
		g.ProposerCommitment = raw
	} else {
		g.CounterpartCommitment = raw
	}
}

// progress counts, for one depositor, its chunks moved (sent by its node
// or arrived at the other) and confirmed by the recipient, as this node
// knows them.
func progress(cs []store.Chunk, depositor string) (moved, confirmed int) {
	for _, c := range cs {
		if c.Depositor != depositor {
			continue
		}
		if !c.MovedAt.IsZero() {
			moved++
		}
		if !c.ConfirmedAt.IsZero() {
			confirmed++
		}
	}
	return moved, confirmed
}

// localSide returns the side of h that lives on this node and the side
// on the peer, for a gradual case (which always spans two nodes).
func localSide(ctx context.Context, tx store.Handle, h store.Handover) (mine, theirs string, err error) {
	theirs, err = remoteSide(ctx, tx, h)
	if err != nil {
		return "", "", err
	}
	if theirs == "" {
		return "", "", fault.Errorf("%w: handover %s has no side on another node", ErrNotGradual, h.ID)
	}
	return other(h, theirs), theirs, nil
}

// DepositChunks stores p's side of a gradual case: its signed commitment
// (an agreement.ChunkCommitment, JSON) and the N sealed chunks it commits
// to, in order. The commitment is recorded in the ledger and relayed to
// the other node in the same transaction; if the other side has committed
// too, the release starts (this node sends its first chunk when its party
// moves first).
func (s *Service) DepositChunks(ctx context.Context, p party.Principal, id string, rawCommitment []byte, chunks [][]byte) (Result, error) {
	var c agreement.ChunkCommitment
	if err := json.Unmarshal(rawCommitment, &c); err != nil {
		return Result{}, fault.Errorf("%w: the commitment is not a JSON chunk commitment", ErrInvalid)
	}
	if len(chunks) != len(c.Chunks) {
		return Result{}, fault.Errorf("%w: %d chunks sent, the commitment names %d", ErrChunkCount, len(chunks), len(c.Chunks))
	}
	total := 0
	for i, ch := range chunks {
		sum := sha256.Sum256(ch)
		switch {
		case len(ch) > PartAcrossNodes:
			return Result{}, fault.Errorf("%w: chunk %d is %d bytes; a chunk travels in one node request and is at most %d", ErrInvalid, i+1, len(ch), PartAcrossNodes)
		case hex.EncodeToString(sum[:]) != c.Chunks[i].SHA256 || int64(len(ch)) != c.Chunks[i].Size:
			return Result{}, fault.Errorf("%w: chunk %d hashes to %x (%d bytes), the commitment says %s (%d bytes)", ErrChunkMismatch, i+1, sum, len(ch), c.Chunks[i].SHA256, c.Chunks[i].Size)
		}
		if err := CheckAgeFile(ch); err != nil {
			return Result{}, fault.Errorf("chunk %d: %w", i+1, err)
		}
		total += len(ch)
	}
	if total > MaxDeposit {
		return Result{}, fault.Errorf("%w: the chunks are %d bytes in all, more than %d", ErrInvalid, total, MaxDeposit)
	}
	var out Result
	err := s.onCase(ctx, p, id, func(st *exchange.Step, h store.Handover) error {
		a, now, tx := st.Agreement, st.Now, st.Tx
		g, ok, err := gradualOf(ctx, tx, id)
		switch {
		case err != nil:
			return err
		case !ok:
			return fault.Errorf("%w: handover %s is released in one step; deposit one bundle", ErrNotGradual, id)
		case h.State == store.HandoverProposed:
			return fault.Errorf("%w: handover %s has not been accepted by %s yet", ErrConflict, id, h.Counterpart)
		case h.State != store.HandoverAccepted:
			return closedErr(h)
		case !now.Before(h.Deadline):
			return fault.Errorf("%w: handover %s expired at %s", ErrDeadlinePassed, id, h.Deadline.Format(time.RFC3339))
		case !a.Status.InForce(now):
			return fault.Errorf("%w: agreement %s is %s, not in force", ErrForbidden, h.AgreementID, a.Status.Phase)
		case c.Handover != id || c.Depositor != p.PartyID:
			return fault.Errorf("%w: the commitment is of %s in %s, not of you in %s", ErrInvalid, c.Depositor, c.Handover, id)
		case len(c.Chunks) != g.Chunks:
			return fault.Errorf("%w: handover %s has %d chunks a side, the commitment names %d", ErrChunkCount, id, g.Chunks, len(c.Chunks))
		case commitmentOf(g, h, p.PartyID) != nil:
			return fault.Errorf("%w: you have already deposited your chunks in handover %s", ErrConflict, id)
		}
		keys, err := s.ex.KeysIn(ctx, tx, p.PartyID)
		if err != nil {
			return err
		}
		if err := agreement.VerifyCommitment(keys, c); err != nil {
			return err
		}
		raw, err := json.Marshal(c)
		if err != nil {
			return err
		}
		idx, err := s.recordCommitment(ctx, st, h, &g, c, raw, chunks, "")
		if err != nil {
			return err
		}
		out = Result{Handover: h, LedgerIndex: idx}
		if err := enqueue(ctx, st, nodeOf(a.Status.Document, other(h, p.PartyID)), h.AgreementID, p.PartyID, OutboxCommitment,
			CommitmentMessage{Handover: id, Commitment: raw}); err != nil {
			return err
		}
		out.Handover, err = s.advance(ctx, st, h, g)
		return err
	})
	return out, err
}

// recordCommitment stores c (raw, its JSON) as its depositor's commitment
// in g, with a chunk row each (content when this node holds it), and its
// ledger entry; via names the peer it came from ("" for this node's party).
func (s *Service) recordCommitment(ctx context.Context, st *exchange.Step, h store.Handover, g *store.Gradual, c agreement.ChunkCommitment,
	raw []byte, contents [][]byte, via string) (int64, error) {
	setCommitment(g, h, c.Depositor, raw)
	if err := st.Tx.Handovers().UpdateGradual(ctx, *g); err != nil {
		return 0, err
	}
	var size int64
	for i, ref := range c.Chunks {
		ch := store.Chunk{HandoverID: h.ID, Depositor: c.Depositor, Index: i + 1, Size: ref.Size}
		sum, _ := hex.DecodeString(ref.SHA256) // checked by VerifyCommitment
		copy(ch.SHA256[:], sum)
		if contents != nil {
			ch.Content = contents[i]
		}
		if err := st.Tx.Handovers().PutChunk(ctx, ch); err != nil {
			return 0, err
		}
		size += ref.Size
	}
	csum := sha256.Sum256(raw)
	attrs := map[string]string{"chunks": fmt.Sprint(len(c.Chunks)), "bytes": fmt.Sprint(size), "key_id": c.KeyID}
	if via != "" {
		attrs["via"] = via
	}
	return st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverChunksCommitted, Actor: c.Depositor, Agreement: h.AgreementID,
		Subject: h.ID, Time: st.Now, Parties: []string{h.Proposer, h.Counterpart}, Attrs: attrs,
		Digests: map[string]string{"commitment": digest(csum)}})
}

// advance sends, in st, what this node may send of its own party's chunks
// now, and releases the case here once its party holds and confirmed all
// of the other side's chunks and this node sent all of its own. It is the
// one place the alternation is decided, called after every step; it does
// nothing while a commitment is missing or the case is closed or stopped.
// It returns the case as it leaves it.
func (s *Service) advance(ctx context.Context, st *exchange.Step, h store.Handover, g store.Gradual) (store.Handover, error) {
	if h.State != store.HandoverAccepted || g.StoppedBy != "" || g.ProposerCommitment == nil || g.CounterpartCommitment == nil ||
		!st.Now.Before(h.Deadline) {
		return h, nil
	}
	tx := st.Tx
	mine, theirs, err := localSide(ctx, tx, h)
	if err != nil {
		return h, err
	}
	cs, err := tx.Handovers().Chunks(ctx, h.ID)
	if err != nil {
		return h, err
	}
	sent, _ := progress(cs, mine)
	_, confirmed := progress(cs, theirs)
	// The proposer moves first: its chunk k+1 needs its party's
	// confirmation of the other's chunk k; the counterpart's chunk k needs
	// its party's confirmation of the proposer's chunk k.
	lead := 0
	if mine == h.Counterpart {
		lead = 1
	}
	for sent < g.Chunks && confirmed >= sent+lead {
		if err := s.sendChunk(ctx, st, h, mine, sent+1); err != nil {
			return h, err
		}
		sent++
	}
	if sent < g.Chunks || confirmed < g.Chunks {
		return h, nil
	}
	return s.releaseGradual(ctx, st, h, g)
}

// sendChunk queues chunk index of depositor (this node's party) for the
// other node, with its ledger entry, in st.
func (s *Service) sendChunk(ctx context.Context, st *exchange.Step, h store.Handover, depositor string, index int) error {
	c, err := st.Tx.Handovers().Chunk(ctx, h.ID, depositor, index)
	if err != nil {
		return err
	}
	if !c.Held {
		return fault.Errorf("chunk %d of %s in %s is not held here", index, depositor, h.ID)
	}
	idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverChunkMoved, Actor: depositor, Agreement: h.AgreementID,
		Subject: h.ID, Time: st.Now, Parties: []string{h.Proposer, h.Counterpart},
		Attrs:   map[string]string{"step": "sent", "index": fmt.Sprint(index), "bytes": fmt.Sprint(c.Size)},
		Digests: map[string]string{"ciphertext": digest(c.SHA256)}})
	if err != nil {
		return err
	}
	c.MovedAt, c.LedgerIndex = st.Now, idx
	if err := st.Tx.Handovers().UpdateChunk(ctx, c); err != nil {
		return err
	}
	doc := st.Agreement.Status.Document
	if doc == nil {
		a, err := s.ex.GoverningIn(ctx, st.Tx, h.AgreementID)
		if err != nil {
			return err
		}
		doc = a.Status.Document
	}
	return enqueue(ctx, st, nodeOf(doc, other(h, depositor)), h.AgreementID, depositor, OutboxChunk,
		ChunkMessage{Handover: h.ID, Depositor: depositor, Index: index, SHA256: hex.EncodeToString(c.SHA256[:]), Content: c.Content})
}

// releaseGradual closes a gradual case as released on this node: the
// ledger entry naming both commitments, the request hook, the local
// party's event.
func (s *Service) releaseGradual(ctx context.Context, st *exchange.Step, h store.Handover, g store.Gradual) (store.Handover, error) {
	psum, csum := sha256.Sum256(g.ProposerCommitment), sha256.Sum256(g.CounterpartCommitment)
	idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverReleased, Agreement: h.AgreementID, Subject: h.ID, Time: st.Now,
		Parties: []string{h.Proposer, h.Counterpart}, Attrs: map[string]string{"gradual": "true", "chunks": fmt.Sprint(g.Chunks)},
		Digests: map[string]string{"proposer_commitment": digest(psum), "counterpart_commitment": digest(csum)}})
	if err != nil {
		return h, err
	}
	h.State, h.ClosedAt, h.ReleaseLedgerIndex = store.HandoverReleased, st.Now, idx
	if err := st.Tx.Handovers().Update(ctx, h); err != nil {
		return h, err
	}
	if err := request.HandoverReleased(ctx, st, h); err != nil {
		return h, err
	}
	return h, s.notifyLocal(ctx, st, h, EventReleased, map[string]any{"agreement": h.AgreementID, "ledger_index": idx, "sealed": true, "gradual": true})
}

// notifyLocal sends an event to the side(s) of h that live on this node.
func (s *Service) notifyLocal(ctx context.Context, st *exchange.Step, h store.Handover, kind string, data map[string]any) error {
	for _, pid := range []string{h.Proposer, h.Counterpart} {
		if _, remote, err := s.ex.PeerOf(ctx, st.Tx, pid); err != nil {
			return err
		} else if remote {
			continue
		}
		if err := st.Notify(ctx, pid, kind, h.ID, data); err != nil {
			return err
		}
	}
	return nil
}

// JudgeChunk records p's signed verdict (an agreement.ChunkVerdict, JSON)
// on the next chunk of the other side's it holds: a confirmation lets this
// node send p's next chunk; a rejection stops the exchange on both nodes.
// Either is relayed to the other node in the same transaction.
func (s *Service) JudgeChunk(ctx context.Context, p party.Principal, id string, raw []byte) (Result, error) {
	var v agreement.ChunkVerdict
	if err := json.Unmarshal(raw, &v); err != nil {
		return Result{}, fault.Errorf("%w: the verdict is not a JSON chunk verdict", ErrInvalid)
	}
	var out Result
	err := s.onCase(ctx, p, id, func(st *exchange.Step, h store.Handover) error {
		tx, now := st.Tx, st.Now
		g, ok, err := gradualOf(ctx, tx, id)
		switch {
		case err != nil:
			return err
		case !ok:
			return fault.Errorf("%w: handover %s is released in one step", ErrNotGradual, id)
		case g.StoppedBy != "":
			return fault.Errorf("%w: handover %s was stopped by %s: %s", ErrConflict, id, g.StoppedBy, g.StopReason)
		case h.State != store.HandoverAccepted:
			return closedErr(h)
		case !now.Before(h.Deadline):
			return fault.Errorf("%w: handover %s expired at %s", ErrDeadlinePassed, id, h.Deadline.Format(time.RFC3339))
		case v.Handover != id || v.Recipient != p.PartyID || v.Depositor != other(h, p.PartyID):
			return fault.Errorf("%w: the verdict is of %s on %s's chunk in %s, not of you on the other side's in %s", ErrInvalid, v.Recipient, v.Depositor, v.Handover, id)
		}
		cs, err := tx.Handovers().Chunks(ctx, id)
		if err != nil {
			return err
		}
		arrived, confirmed := progress(cs, v.Depositor)
		if v.Index != confirmed+1 || v.Index > arrived {
			return fault.Errorf("%w: %d of the other side's chunks arrived and you confirmed %d; the chunk to judge is %d, not %d",
				ErrOutOfTurn, arrived, confirmed, confirmed+1, v.Index)
		}
		c, err := tx.Handovers().Chunk(ctx, id, v.Depositor, v.Index)
		if err != nil {
			return err
		}
		if v.SHA256 != hex.EncodeToString(c.SHA256[:]) {
			return fault.Errorf("%w: chunk %d here hashes to %x, the verdict names %s", ErrChunkMismatch, v.Index, c.SHA256, v.SHA256)
		}
		keys, err := s.ex.KeysIn(ctx, tx, p.PartyID)
		if err != nil {
			return err
		}
		if err := agreement.VerifyChunkVerdict(keys, v); err != nil {
			return err
		}
		signed, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var idx int64
		if v.Action == agreement.ChunkReject {
			idx, err = s.stop(ctx, st, h, g, v, signed, "")
		} else {
			idx, err = s.recordConfirmation(ctx, st, h, c, v, signed, "")
		}
		if err != nil {
			return err
		}
		out = Result{Handover: h, LedgerIndex: idx}
		if err := enqueue(ctx, st, nodeOf(st.Agreement.Status.Document, v.Depositor), h.AgreementID, p.PartyID, OutboxChunkVerdict,
			ChunkVerdictMessage{Handover: id, Verdict: signed}); err != nil {
			return err
		}
		if v.Action == agreement.ChunkReject {
			out.Handover, err = tx.Handovers().Get(ctx, id)
			return err
		}
		out.Handover, err = s.advance(ctx, st, h, g)
		return err
	})
	return out, err
}

// recordConfirmation stores v, the recipient's signed confirmation of
// chunk c, with its ledger entry.
func (s *Service) recordConfirmation(ctx context.Context, st *exchange.Step, h store.Handover, c store.Chunk, v agreement.ChunkVerdict, signed []byte, via string) (int64, error) {
	vsum := sha256.Sum256(signed)
	attrs := map[string]string{"index": fmt.Sprint(v.Index), "depositor": v.Depositor}
	if via != "" {
		attrs["via"] = via
	}
	idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverChunkConfirmed, Actor: v.Recipient, Agreement: h.AgreementID,
		Subject: h.ID, Time: st.Now, Parties: []string{h.Proposer, h.Counterpart}, Attrs: attrs,
		Digests: map[string]string{"ciphertext": digest(c.SHA256), "verdict": digest(vsum)}})
	if err != nil {
		return 0, err
	}
	full, err := st.Tx.Handovers().Chunk(ctx, h.ID, c.Depositor, c.Index)
	if err != nil {
		return 0, err
	}
	full.ConfirmedAt, full.Confirmation = st.Now, signed
	return idx, st.Tx.Handovers().UpdateChunk(ctx, full)
}

// stop ends a gradual case on this node after v, a signed rejection:
// recorded with its reason, this node's party's chunks not yet sent
// destroyed (what was exchanged stays), the ledger entry, the request
// hook and the local party's event.
func (s *Service) stop(ctx context.Context, st *exchange.Step, h store.Handover, g store.Gradual, v agreement.ChunkVerdict, signed []byte, via string) (int64, error) {
	g.StoppedBy, g.StopReason, g.StoppedAt = v.Recipient, v.Reason, st.Now
	if err := st.Tx.Handovers().UpdateGradual(ctx, g); err != nil {
		return 0, err
	}
	destroyed, err := s.destroyUnsent(ctx, st, h)
	if err != nil {
		return 0, err
	}
	vsum, rsum := sha256.Sum256(signed), sha256.Sum256([]byte(v.Reason))
	attrs := map[string]string{"index": fmt.Sprint(v.Index), "depositor": v.Depositor, "destroyed": fmt.Sprint(destroyed)}
	if via != "" {
		attrs["via"] = via
	}
	idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverStopped, Actor: v.Recipient, Agreement: h.AgreementID, Subject: h.ID,
		Time: st.Now, Parties: []string{h.Proposer, h.Counterpart}, Attrs: attrs,
		Digests: map[string]string{"verdict": digest(vsum), "reason": digest(rsum)}})
	if err != nil {
		return 0, err
	}
	h.State, h.ClosedAt = store.HandoverStopped, st.Now
	if err := st.Tx.Handovers().Update(ctx, h); err != nil {
		return 0, err
	}
	if err := request.HandoverFailed(ctx, st, h, CauseStopped, v.Recipient); err != nil {
		return 0, err
	}
	return idx, s.notifyLocal(ctx, st, h, EventStopped, map[string]any{"agreement": h.AgreementID, "by": v.Recipient,
		"index": v.Index, "reason": v.Reason, "ledger_index": idx})
}

// destroyUnsent destroys this node's party's chunks of h that did not
// leave this node, and says how many.
func (s *Service) destroyUnsent(ctx context.Context, st *exchange.Step, h store.Handover) (int, error) {
	mine, _, err := localSide(ctx, st.Tx, h)
	if err != nil {
		return 0, err
	}
	cs, err := st.Tx.Handovers().Chunks(ctx, h.ID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		if c.Depositor != mine || !c.Held || !c.MovedAt.IsZero() {
			continue
		}
		full, err := st.Tx.Handovers().Chunk(ctx, h.ID, c.Depositor, c.Index)
		if err != nil {
			return 0, err
		}
		full.Content = nil
		if err := st.Tx.Handovers().UpdateChunk(ctx, full); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// gradualRemote runs fn on gradual case id under its agreement's lock,
// for a message peer relayed on behalf of side who: the case must be held
// here and gradual, who a side of it living on another node, and peer the
// node the signed document places who on.
func (s *Service) gradualRemote(ctx context.Context, peer store.Peer, id, who string,
	fn func(st *exchange.Step, h store.Handover, g store.Gradual) error) error {
	return s.SweepCase(ctx, func(tx store.Handle) (string, error) {
		h, err := tx.Handovers().Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return "", fault.Errorf("%w: %s", ErrNotFound, id)
		}
		return h.AgreementID, err
	}, func(st *exchange.Step) error {
		tx := st.Tx
		h, err := tx.Handovers().Get(ctx, id)
		if err != nil {
			return err
		}
		g, ok, err := gradualOf(ctx, tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return fault.Errorf("%w: handover %s", ErrNotGradual, id)
		}
		if who != h.Proposer && who != h.Counterpart {
			return fault.Errorf("%w: %s is not a side of handover %s", ErrNotPartyNode, who, id)
		}
		if _, remote, err := s.ex.PeerOf(ctx, tx, who); err != nil {
			return err
		} else if !remote {
			return fault.Errorf("%w: %s is a party of this node", ErrNotPartyNode, who)
		}
		a, err := s.ex.GoverningIn(ctx, tx, h.AgreementID)
		if err != nil {
			return err
		}
		if err := checkRelayer(a.Status.Document, peer, who); err != nil {
			return err
		}
		st.Agreement = a
		return fn(st, h, g)
	})
}

// ReceiveCommitment records, on the recipient's node, the depositor's
// signed commitment its node relayed, after checking the signature with
// the key this node holds for that party. Idempotent: the same commitment
// again answers Duplicate; another one is refused (ErrConflict), as is
// one to another number of chunks (ErrChunkCount).
func (s *Service) ReceiveCommitment(ctx context.Context, peer store.Peer, m CommitmentMessage) (Receipt, error) {
	var c agreement.ChunkCommitment
	if err := json.Unmarshal(m.Commitment, &c); err != nil {
		return Receipt{}, fault.Errorf("%w: the commitment is not a JSON chunk commitment", ErrInvalid)
	}
	out := Receipt{Handover: m.Handover}
	err := s.gradualRemote(ctx, peer, m.Handover, c.Depositor, func(st *exchange.Step, h store.Handover, g store.Gradual) error {
		raw, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if had := commitmentOf(g, h, c.Depositor); had != nil {
			if !bytes.Equal(had, raw) {
				return fault.Errorf("%w: %s committed to other chunks in %s before", ErrConflict, c.Depositor, h.ID)
			}
			out.State, out.Duplicate = h.State, true
			return nil
		}
		switch {
		case c.Handover != h.ID:
			return fault.Errorf("%w: the commitment is for %s", ErrInvalid, c.Handover)
		case g.StoppedBy != "":
			return fault.Errorf("%w: handover %s was stopped", ErrConflict, h.ID)
		case h.State == store.HandoverProposed:
			return fault.Errorf("%w: handover %s is not accepted here yet", ErrTooEarly, h.ID)
		case h.State != store.HandoverAccepted:
			return closedErr(h)
		case !st.Now.Before(h.Deadline):
			return fault.Errorf("%w: handover %s expired at %s", ErrDeadlinePassed, h.ID, h.Deadline.Format(time.RFC3339))
		case len(c.Chunks) != g.Chunks:
			return fault.Errorf("%w: handover %s has %d chunks a side, the commitment names %d", ErrChunkCount, h.ID, g.Chunks, len(c.Chunks))
		}
		keys, err := s.ex.KeysIn(ctx, st.Tx, c.Depositor)
		if err != nil {
			return err
		}
		if err := agreement.VerifyCommitment(keys, c); err != nil {
			return err
		}
		idx, err := s.recordCommitment(ctx, st, h, &g, c, raw, nil, peer.Name)
		if err != nil {
			return err
		}
		if err := s.notifyLocal(ctx, st, h, EventChunksCommitted, map[string]any{"agreement": h.AgreementID, "by": c.Depositor,
			"chunks": len(c.Chunks)}); err != nil {
			return err
		}
		h, err = s.advance(ctx, st, h, g)
		out.State, out.LedgerIndex = h.State, idx
		return err
	})
	return out, err
}

// ReceiveChunk stores, on the recipient's node, a chunk the depositor's
// node sent: only the chunk due now (in order, and in turn: the
// depositor's node may not be ahead of what this node sent), only with
// the bytes committed. A chunk whose bytes are not the committed ones is
// refused and recorded as a peer incident. Idempotent.
func (s *Service) ReceiveChunk(ctx context.Context, peer store.Peer, m ChunkMessage) (Receipt, error) {
	out := Receipt{Handover: m.Handover}
	var mismatch error
	err := s.gradualRemote(ctx, peer, m.Handover, m.Depositor, func(st *exchange.Step, h store.Handover, g store.Gradual) error {
		tx := st.Tx
		if m.Index < 1 || m.Index > g.Chunks {
			return fault.Errorf("%w: handover %s has chunks 1 to %d, not %d", ErrOutOfTurn, h.ID, g.Chunks, m.Index)
		}
		if commitmentOf(g, h, m.Depositor) == nil {
			return fault.Errorf("%w: %s has not committed to its chunks here", ErrOutOfTurn, m.Depositor)
		}
		c, err := tx.Handovers().Chunk(ctx, h.ID, m.Depositor, m.Index)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(m.Content)
		if !c.MovedAt.IsZero() {
			if sum != c.SHA256 {
				return fault.Errorf("%w: chunk %d of %s arrived before with other bytes", ErrConflict, m.Index, m.Depositor)
			}
			out.State, out.Duplicate = h.State, true
			return nil
		}
		switch {
		case g.StoppedBy != "":
			return fault.Errorf("%w: handover %s was stopped by %s", ErrConflict, h.ID, g.StoppedBy)
		case h.State != store.HandoverAccepted:
			return closedErr(h)
		case !st.Now.Before(h.Deadline):
			return fault.Errorf("%w: handover %s expired at %s", ErrDeadlinePassed, h.ID, h.Deadline.Format(time.RFC3339))
		}
		mine := other(h, m.Depositor)
		cs, err := tx.Handovers().Chunks(ctx, h.ID)
		if err != nil {
			return err
		}
		arrived, _ := progress(cs, m.Depositor)
		sent, _ := progress(cs, mine)
		// The proposer's chunk k comes after this node sent k-1 of its
		// party's; the counterpart's chunk k after this node sent k.
		need := m.Index - 1
		if m.Depositor == h.Counterpart {
			need = m.Index
		}
		switch {
		case commitmentOf(g, h, mine) == nil:
			return fault.Errorf("%w: %s has not committed to its own chunks yet", ErrOutOfTurn, mine)
		case m.Index != arrived+1:
			return fault.Errorf("%w: %d chunks of %s arrived; the next is %d, not %d", ErrOutOfTurn, arrived, m.Depositor, arrived+1, m.Index)
		case sent < need:
			return fault.Errorf("%w: chunk %d of %s is due once this node sent %d of %s's, and it sent %d", ErrOutOfTurn, m.Index, m.Depositor, need, mine, sent)
		}
		if sum != c.SHA256 || int64(len(m.Content)) != c.Size || m.SHA256 != hex.EncodeToString(sum[:]) {
			mismatch = fault.Errorf("%w: chunk %d of %s hashes to %x (%d bytes); %s committed to %x (%d bytes)", ErrChunkMismatch,
				m.Index, m.Depositor, sum, len(m.Content), m.Depositor, c.SHA256, c.Size)
			return s.incident(ctx, st, peer, h, IncidentChunkMismatch, m.Index,
				fmt.Sprintf("peer sent chunk %d of %s in handover %s hashing to %x, not the committed %x", m.Index, m.Depositor, h.ID, sum, c.SHA256))
		}
		if err := CheckAgeFile(m.Content); err != nil {
			return err
		}
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverChunkMoved, Actor: m.Depositor, Agreement: h.AgreementID,
			Subject: h.ID, Time: st.Now, Parties: []string{h.Proposer, h.Counterpart},
			Attrs:   map[string]string{"step": "received", "index": fmt.Sprint(m.Index), "bytes": fmt.Sprint(len(m.Content)), "via": peer.Name},
			Digests: map[string]string{"ciphertext": digest(sum)}})
		if err != nil {
			return err
		}
		c.Content, c.MovedAt, c.LedgerIndex = m.Content, st.Now, idx
		if err := tx.Handovers().UpdateChunk(ctx, c); err != nil {
			return err
		}
		if err := s.notifyLocal(ctx, st, h, EventChunkArrived, map[string]any{"agreement": h.AgreementID, "from": m.Depositor,
			"index": m.Index, "of": g.Chunks, "sha256": hex.EncodeToString(sum[:])}); err != nil {
			return err
		}
		out.State, out.LedgerIndex = h.State, idx
		return nil
	})
	if err == nil && mismatch != nil {
		return Receipt{}, mismatch
	}
	return out, err
}

// ReceiveChunkVerdict records, on the depositor's node, the recipient's
// signed confirmation or rejection of one of its party's chunks, checked
// with the key this node holds for the recipient. A confirmation is
// recorded (the recipient's node then sends its next chunk); a rejection
// stops the exchange here too. Idempotent.
func (s *Service) ReceiveChunkVerdict(ctx context.Context, peer store.Peer, m ChunkVerdictMessage) (Receipt, error) {
	var v agreement.ChunkVerdict
	if err := json.Unmarshal(m.Verdict, &v); err != nil {
		return Receipt{}, fault.Errorf("%w: the verdict is not a JSON chunk verdict", ErrInvalid)
	}
	out := Receipt{Handover: m.Handover}
	err := s.gradualRemote(ctx, peer, m.Handover, v.Recipient, func(st *exchange.Step, h store.Handover, g store.Gradual) error {
		tx := st.Tx
		signed, err := json.Marshal(v)
		if err != nil {
			return err
		}
		switch {
		case v.Handover != h.ID || v.Depositor != other(h, v.Recipient):
			return fault.Errorf("%w: the verdict is on %s's chunk in %s", ErrInvalid, v.Depositor, v.Handover)
		case v.Index < 1 || v.Index > g.Chunks:
			return fault.Errorf("%w: handover %s has chunks 1 to %d, not %d", ErrOutOfTurn, h.ID, g.Chunks, v.Index)
		}
		c, err := tx.Handovers().Chunk(ctx, h.ID, v.Depositor, v.Index)
		if errors.Is(err, store.ErrNotFound) {
			return fault.Errorf("%w: %s has not committed to its chunks", ErrOutOfTurn, v.Depositor)
		}
		if err != nil {
			return err
		}
		switch {
		case v.Action == agreement.ChunkConfirm && !c.ConfirmedAt.IsZero():
			if !bytes.Equal(c.Confirmation, signed) {
				return fault.Errorf("%w: chunk %d was confirmed before by another statement", ErrConflict, v.Index)
			}
			out.State, out.Duplicate = h.State, true
			return nil
		case v.Action == agreement.ChunkReject && g.StoppedBy == v.Recipient && g.StopReason == v.Reason:
			out.State, out.Duplicate = h.State, true
			return nil
		case g.StoppedBy != "":
			return fault.Errorf("%w: handover %s was stopped by %s", ErrConflict, h.ID, g.StoppedBy)
		case c.MovedAt.IsZero():
			return fault.Errorf("%w: chunk %d of %s was not sent from here", ErrOutOfTurn, v.Index, v.Depositor)
		case v.SHA256 != hex.EncodeToString(c.SHA256[:]):
			return fault.Errorf("%w: the verdict names %s, chunk %d was sent as %x", ErrChunkMismatch, v.SHA256, v.Index, c.SHA256)
		}
		// A verdict, either way, is on the first chunk not yet confirmed:
		// its party's node judges them in order (JudgeChunk).
		_, confirmed := progress(mustChunks(ctx, tx, h.ID), v.Depositor)
		if v.Index != confirmed+1 {
			return fault.Errorf("%w: %d chunks of %s are confirmed; the next to judge is %d, not %d", ErrOutOfTurn, confirmed, v.Depositor, confirmed+1, v.Index)
		}
		// A release here may come before the recipient's last
		// confirmation of this side's last chunk: that one is recorded
		// still; nothing else moves a closed case.
		if h.State != store.HandoverAccepted && !(v.Action == agreement.ChunkConfirm && h.State == store.HandoverReleased) {
			return closedErr(h)
		}
		keys, err := s.ex.KeysIn(ctx, tx, v.Recipient)
		if err != nil {
			return err
		}
		if err := agreement.VerifyChunkVerdict(keys, v); err != nil {
			return err
		}
		var idx int64
		if v.Action == agreement.ChunkReject {
			idx, err = s.stop(ctx, st, h, g, v, signed, peer.Name)
			if err != nil {
				return err
			}
			out.State, out.LedgerIndex = store.HandoverStopped, idx
			return nil
		}
		if idx, err = s.recordConfirmation(ctx, st, h, c, v, signed, peer.Name); err != nil {
			return err
		}
		if err := s.notifyLocal(ctx, st, h, EventChunkConfirmed, map[string]any{"agreement": h.AgreementID, "by": v.Recipient,
			"index": v.Index, "of": g.Chunks}); err != nil {
			return err
		}
		h, err = s.advance(ctx, st, h, g)
		out.State, out.LedgerIndex = h.State, idx
		return err
	})
	return out, err
}

// mustChunks lists a case's chunks; a read error shows as none, which
// only makes the caller's order check refuse.
func mustChunks(ctx context.Context, tx store.Handle, id string) []store.Chunk {
	cs, _ := tx.Handovers().Chunks(ctx, id)
	return cs
}

// incident records, in st, a peer incident about case h (once per kind,
// case and chunk), its node.peer_incident ledger entry, and an event to
// this node's party of the case.
func (s *Service) incident(ctx context.Context, st *exchange.Step, peer store.Peer, h store.Handover, kind string, index int, detail string) error {
	sum := sha256.Sum256([]byte(kind + "\x00" + h.ID + "\x00" + fmt.Sprint(index)))
	err := st.Tx.PeerLogs().AddPeerIncident(ctx, store.PeerIncident{KeyID: peer.KeyID, Peer: peer.Name, Kind: kind,
		Detail: detail, Digest: hex.EncodeToString(sum[:]), At: st.Now})
	if errors.Is(err, store.ErrConflict) {
		return nil // recorded when it came before
	}
	if err != nil {
		return err
	}
	if _, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindNodePeerIncident, Subject: peer.KeyID, Time: st.Now,
		Parties: []string{h.Proposer, h.Counterpart},
		Attrs:   map[string]string{"peer": peer.Name, "peer_key": peer.Key, "incident": kind, "handover": h.ID, "index": fmt.Sprint(index)}}); err != nil {
		return err
	}
	return s.notifyLocal(ctx, st, h, "node.peer_incident", map[string]any{"peer": peer.Name, "peer_key": peer.Key,
		"incident": kind, "detail": detail, "handover": h.ID})
}

// ChunkOf returns chunk index of depositor in case id for p, a side of it:
// p's own while this node holds it, the other side's once it arrived.
func (s *Service) ChunkOf(ctx context.Context, p party.Principal, id, depositor string, index int) (store.Chunk, error) {
	_, depositor, err := s.sideOf(ctx, p, id, depositor)
	if err != nil {
		return store.Chunk{}, err
	}
	c, err := s.st.Handovers().Chunk(ctx, id, depositor, index)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.Held) {
		return store.Chunk{}, fault.Errorf("%w: chunk %d of %s in %s is not here", ErrNotFound, index, depositor, id)
	}
	return c, err
}

// ChunkView is one chunk as a side of its case sees it.
type ChunkView struct {
	Depositor string    `json:"depositor"`
	Index     int       `json:"index"`
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	Held      bool      `json:"held"`
	MovedAt   time.Time `json:"moved_at,omitzero"`
	Confirmed time.Time `json:"confirmed_at,omitzero"`
}

// GradualView is a gradual case's progress.
type GradualView struct {
	Chunks     int         `json:"chunks"`
	Committed  []string    `json:"committed"` // the sides whose commitment is here
	StoppedBy  string      `json:"stopped_by,omitempty"`
	StopReason string      `json:"stop_reason,omitempty"`
	List       []ChunkView `json:"list"`
}

// gradualView reads case h's progress; nil for a case released in one
// step.
func (s *Service) gradualView(ctx context.Context, h store.Handover) (*GradualView, error) {
	g, ok, err := gradualOf(ctx, s.st, h.ID)
	if err != nil || !ok {
		return nil, err
	}
	cs, err := s.st.Handovers().Chunks(ctx, h.ID)
	if err != nil {
		return nil, err
	}
	v := &GradualView{Chunks: g.Chunks, Committed: []string{}, StoppedBy: g.StoppedBy, StopReason: g.StopReason, List: []ChunkView{}}
	for _, pid := range []string{h.Proposer, h.Counterpart} {
		if commitmentOf(g, h, pid) != nil {
			v.Committed = append(v.Committed, pid)
		}
	}
	for _, c := range cs {
		v.List = append(v.List, ChunkView{Depositor: c.Depositor, Index: c.Index, SHA256: hex.EncodeToString(c.SHA256[:]), Size: c.Size,
			Held: c.Held, MovedAt: c.MovedAt, Confirmed: c.ConfirmedAt})
	}
	return v, nil
}
