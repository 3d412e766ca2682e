package escrow

import (
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
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
)

// Handovers across nodes (issue 14 item 4, docs/federation.md): a case
// under an agreement between two nodes lives, with the same id, on the
// proposer's node, the counterpart's node and the escrow node E the signed
// document names. Each party node keeps its party's case in the handovers
// store and moves it by the same steps as on one server; what one node's
// party did reaches the others as messages in the durable outbox (package
// node sends them). Only E holds both deposits, and only E decides the
// release (host.go); a party node releases its case when E's verdict and
// the counterpart's sealed deposit, fetched from E, are in.

// Outbox kinds of handover messages, each sent to its own node endpoint.
const (
	OutboxCase         = "handover.case"     // proposer's node → counterpart's node
	OutboxDecision     = "handover.decision" // counterpart's node → proposer's node
	OutboxHeldCase     = "escrow.case"       // proposer's node → escrow node
	OutboxHeldDecision = "escrow.decision"   // counterpart's node → escrow node
	OutboxDeposit      = "escrow.deposit"    // depositor's node → escrow node
	OutboxVerdict      = "escrow.verdict"    // escrow node → both party nodes
)

// PartAcrossNodes is the most bytes of a deposit (or of a gradual chunk,
// or of a round-1 message of private matching) one signed node request
// carries: base64-encoded, in a request of at most 1 MiB. A sealed deposit
// between nodes is at most MaxDeposit, as on one server: its node sends
// the escrow node its first PartAcrossNodes bytes, and the escrow node
// asks that node for the rest (HoldDeposit).
const PartAcrossNodes = 512 << 10

// FetchPartSize is the most bytes of a deposit one node answer carries
// (base64-encoded, in an answer of at most 4 MiB): the escrow node takes
// a deposit, and a party node a released one, in answers of this size.
const FetchPartSize = 2 << 20

// A part and its JSON fit a node request, a fetched part an answer.
var (
	_ [(1<<20)*3/4 - 1024 - PartAcrossNodes]struct{}
	_ [(4<<20)*3/4 - 1024 - FetchPartSize]struct{}
)

// Refusals of handovers across nodes, with the codes peers and parties
// are answered with.
var (
	// ErrSealedOnly: across nodes only sealed deposits are taken (a plain
	// one would show the escrow node the plaintext).
	ErrSealedOnly = fault.Refine(fault.Errorf("%w: across nodes only sealed deposits (age, to the counterpart's recipient) are taken", ErrInvalid), nil, "sealed_only")
	// ErrNotEscrowNode: a node that is not the escrow node the signed
	// document names was asked to hold a case, or spoke as its escrow node.
	ErrNotEscrowNode = fault.Refine(fault.Tagged(fault.Forbidden, "escrow", "not the escrow node the agreement names"), nil, "not_escrow_node")
	// ErrNotPartyNode: a node that is not the node of the party concerned
	// relayed its step or deposit, or asked for a deposit it may not have.
	ErrNotPartyNode = fault.Refine(fault.Tagged(fault.Forbidden, "escrow", "not the node of the party concerned"), nil, "not_party_node")
	// ErrDocumentMismatch: the case is under another version of the
	// agreement than the one held here, or a deposit's hash is not the
	// one recorded.
	ErrDocumentMismatch = fault.Refine(fault.Tagged(fault.Conflict, "escrow", "the case does not match the agreement or deposits held here"), nil, "document_mismatch")
	// ErrTooEarly: a step arrived before the case it belongs to; the
	// sender retries.
	ErrTooEarly = fault.Refine(fault.Tagged(fault.Conflict, "escrow", "the case has not arrived here yet; retry"), nil, "too_early")
	// ErrDepositUnreachable: the escrow node could not read the rest of a
	// deposit from the depositor's node; that node's outbox sends the
	// deposit again.
	ErrDepositUnreachable = fault.Refine(fault.Tagged(fault.Unavailable, "escrow", "the rest of the deposit could not be read from its node; retry"), nil, "deposit_unreachable")
	// ErrNotReleased: a deposit was asked before the case was released.
	ErrNotReleased = fault.Refine(fault.Tagged(fault.Conflict, "escrow", "the case is not released"), nil, "not_released")
)

// CaseMessage is a case on its way from the proposer's node. To the
// escrow node it also carries the agreement version the case is under and
// the proposer's signature of it, with the proposer's card (its node
// speaks for its keys).
type CaseMessage struct {
	Handover            string    `json:"handover"`
	Agreement           string    `json:"agreement"`
	Proposer            string    `json:"proposer"`
	Counterpart         string    `json:"counterpart"`
	ProposerDelivers    string    `json:"proposer_delivers"`
	CounterpartDelivers string    `json:"counterpart_delivers"`
	Request             string    `json:"request,omitempty"`
	Deadline            time.Time `json:"deadline"`
	// Chunks, when not 0, makes the case gradual (gradual.go): the
	// agreement names no escrow node, and each side's bundle is released
	// in that many chunks.
	Chunks         int                 `json:"chunks,omitempty"`
	DocumentSHA256 string              `json:"document_sha256"`
	Document       json.RawMessage     `json:"document,omitempty"`
	Signer         *exchange.PartyCard `json:"signer,omitempty"`
	Signature      json.RawMessage     `json:"signature,omitempty"`
}

// DecisionMessage is the counterpart's acceptance or refusal of a case,
// from its node; to the escrow node with the counterpart's signature of
// the agreement version and its card.
type DecisionMessage struct {
	Handover       string `json:"handover"`
	Accept         bool   `json:"accept"`
	DocumentSHA256 string `json:"document_sha256"`
	// Deadline is the case's, as the counterpart's node holds it: an
	// escrow node that holds no such case once it has passed answers
	// deadline_passed rather than too_early, since it would refuse the
	// case itself now, so the sender stops retrying and its node can end
	// the case (sweep.go).
	Deadline  time.Time           `json:"deadline,omitzero"`
	Signer    *exchange.PartyCard `json:"signer,omitempty"`
	Signature json.RawMessage     `json:"signature,omitempty"`
}

// DepositMessage is one side's sealed deposit, from its node to the
// escrow node: its first PartAcrossNodes bytes; the escrow node asks for
// the rest (FetchRequest to the depositor's node).
type DepositMessage struct {
	Handover string `json:"handover"`
	Party    string `json:"party"`
	SHA256   string `json:"sha256"` // hex, of the whole deposit
	// Size is the whole deposit's length; 0 means Content is all of it.
	Size    int64  `json:"size,omitempty"`
	Content []byte `json:"content"`
}

// VerdictMessage is what the escrow node decided: released (with the
// SHA-256 of each side's deposit) or expired.
type VerdictMessage struct {
	Handover    string            `json:"handover"`
	State       string            `json:"state"`
	Deposits    map[string]string `json:"deposits,omitempty"` // party id → hex SHA-256
	LedgerIndex int64             `json:"ledger_index"`
}

// FetchRequest asks for a sealed deposit from Offset on: a party node
// asks the escrow node for a released one, the escrow node asks a
// depositor's node for the rest of one it was sent.
type FetchRequest struct {
	Handover  string `json:"handover"`
	Depositor string `json:"depositor"`
	Offset    int64  `json:"offset,omitempty"`
}

// FetchAnswer is a sealed deposit's bytes from Offset on, at most
// FetchPartSize of them; SHA256 and Size are the whole deposit's.
type FetchAnswer struct {
	Handover  string `json:"handover"`
	Depositor string `json:"depositor"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size,omitempty"`
	Offset    int64  `json:"offset,omitempty"`
	Content   []byte `json:"content"`
}

// partAt answers r with part, the bytes from r.Offset on (at most
// FetchPartSize of them) of a deposit of size bytes hashing to sum: read
// through DepositPart, so that the node holds one part, not the whole
// deposit, for each part it serves.
func partAt(r FetchRequest, part []byte, size int64, sum [32]byte) (FetchAnswer, error) {
	if r.Offset < 0 || r.Offset >= size {
		return FetchAnswer{}, fault.Errorf("%w: offset %d of a deposit of %d bytes", ErrInvalid, r.Offset, size)
	}
	if int64(len(part)) != min(FetchPartSize, size-r.Offset) {
		return FetchAnswer{}, fmt.Errorf("escrow: read %d bytes at %d of a deposit of %d bytes", len(part), r.Offset, size)
	}
	return FetchAnswer{Handover: r.Handover, Depositor: r.Depositor, SHA256: hex.EncodeToString(sum[:]), Size: size,
		Offset: r.Offset, Content: part}, nil
}

// checkOffset refuses a negative offset before a deposit is read.
func checkOffset(r FetchRequest) error {
	if r.Offset < 0 {
		return fault.Errorf("%w: offset %d of a deposit", ErrInvalid, r.Offset)
	}
	return nil
}

// FetchFunc asks a peer for a deposit from offset on (FetchRequest).
type FetchFunc func(ctx context.Context, offset int64) (FetchAnswer, error)

// FetchWhole reads depositor's deposit in case id through fetch, from
// the bytes first holds on: size and sum (hex SHA-256) are the whole
// deposit's, or 0 and "" when the first answer is to say them. Every
// answer must be of that deposit, at the offset asked, with the same size
// and SHA-256 and at most FetchPartSize bytes; the hash of the whole is
// the caller's to check.
func FetchWhole(ctx context.Context, id, depositor string, size int64, sum string, first []byte, fetch FetchFunc) ([]byte, error) {
	out := first
	for size == 0 || int64(len(out)) < size {
		a, err := fetch(ctx, int64(len(out)))
		if err != nil {
			return nil, err
		}
		if a.Handover != id || a.Depositor != depositor {
			return nil, fmt.Errorf("asked for %s's deposit in %s, answered with %s's in %s", depositor, id, a.Depositor, a.Handover)
		}
		if size == 0 {
			if a.Size == 0 && len(out) == 0 {
				return a.Content, nil // a node before parts answers with the whole deposit
			}
			if a.Size < 1 || a.Size > MaxDeposit {
				return nil, fmt.Errorf("%s's deposit in %s is said to be %d bytes, not 1 to %d", depositor, id, a.Size, MaxDeposit)
			}
			size, sum = a.Size, a.SHA256
			out = make([]byte, 0, size)
		}
		if a.Offset != int64(len(out)) || a.Size != size || a.SHA256 != sum || len(a.Content) == 0 ||
			int64(len(a.Content)) > min(FetchPartSize, size-int64(len(out))) {
			return nil, fmt.Errorf("asked for %s's deposit in %s from byte %d, answered with another part or deposit", depositor, id, len(out))
		}
		out = append(out, a.Content...)
	}
	return out, nil
}

// Receipt says what became of a message a peer relayed.
type Receipt struct {
	Handover    string `json:"handover"`
	State       string `json:"state"`
	Duplicate   bool   `json:"duplicate"`
	LedgerIndex int64  `json:"ledger_index,omitempty"`
}

// acrossNodes reports whether a case under a is between two nodes, and
// refuses one under an agreement between nodes that names no escrow
// node: only a third node can hold both deposits fairly.
func acrossNodes(a exchange.Agreement) (bool, error) {
	doc := a.Status.Document
	if doc == nil || !doc.CrossNode() {
		return false, nil
	}
	if doc.EscrowNode == "" {
		return true, fault.Errorf("%w: a handover between two nodes goes through an escrow node, and agreement %s names none (amend it with escrow_node; docs/federation.md)",
			exchange.ErrNotAcrossNodes, doc.ID)
	}
	return true, nil
}

func docSHA(doc *agreement.Document) string { return digest(doc.Hash()) }

// signatureOf returns partyID's signature of doc (its proposal, amendment
// or countersignature of exactly that version).
func signatureOf(a exchange.Agreement, doc *agreement.Document, partyID string) (json.RawMessage, error) {
	h := doc.Hash()
	want := hex.EncodeToString(h[:])
	for _, sg := range a.Signatures {
		if sg.PartyID != partyID || sg.Version != doc.Version || sg.DocumentHash != want {
			continue
		}
		switch sg.Action {
		case agreement.ActionPropose, agreement.ActionAmend, agreement.ActionCountersign:
			return json.Marshal(sg)
		}
	}
	return nil, fault.Errorf("%w: %s has not signed version %d of %s", ErrForbidden, partyID, doc.Version, doc.ID)
}

// peerKeyID is the id of the pinned peer whose node key is nodeKey.
func peerKeyID(ctx context.Context, x store.Handle, nodeKey string) (string, error) {
	peers, err := x.Nodes().Peers(ctx)
	if err != nil {
		return "", err
	}
	for _, p := range peers {
		if p.Key == nodeKey {
			return p.KeyID, nil
		}
	}
	return "", fault.Errorf("%w: node %s is not pinned here (parley peer add)", exchange.ErrNoNode, nodeKey)
}

func enqueue(ctx context.Context, st *exchange.Step, nodeKey, agreementID, partyID, kind string, msg any) error {
	kid, err := peerKeyID(ctx, st.Tx, nodeKey)
	if err != nil {
		return err
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	_, err = st.Tx.Federation().Enqueue(ctx, store.OutboxEntry{PeerKeyID: kid, AgreementID: agreementID, PartyID: partyID,
		Kind: kind, Body: body, CreatedAt: st.Now, NextAttempt: st.Now})
	return err
}

// nodeOf is the node key the document places partyID on.
func nodeOf(doc *agreement.Document, partyID string) string {
	pt, _, err := doc.Party(partyID)
	if err != nil {
		return ""
	}
	return pt.Node
}

// relayCase writes a new case to the outbox for the counterpart's node and
// (unless it is gradual: chunks not 0) for the escrow node, in the
// proposal's transaction.
func (s *Service) relayCase(ctx context.Context, st *exchange.Step, h store.Handover, chunks int) error {
	doc := st.Agreement.Status.Document
	msg := CaseMessage{Handover: h.ID, Agreement: h.AgreementID, Proposer: h.Proposer, Counterpart: h.Counterpart,
		ProposerDelivers: h.ProposerDelivers, CounterpartDelivers: h.CounterpartDelivers, Request: h.RequestID,
		Deadline: h.Deadline, Chunks: chunks, DocumentSHA256: docSHA(doc)}
	if err := enqueue(ctx, st, nodeOf(doc, h.Counterpart), h.AgreementID, h.Proposer, OutboxCase, msg); err != nil {
		return err
	}
	if chunks != 0 {
		return nil
	}
	return HoldAtEscrowNode(ctx, s.ex, st, h)
}

// HoldAtEscrowNode writes case h to the outbox for the escrow node the
// agreement names, with the proposer's signature of the agreement version
// and its card, in st's transaction. Private matching uses it for the
// handover of a session's round 2, which it opens accepted on both party
// nodes by its own messages (package matching).
func HoldAtEscrowNode(ctx context.Context, ex *exchange.Service, st *exchange.Step, h store.Handover) error {
	doc := st.Agreement.Status.Document
	msg := CaseMessage{Handover: h.ID, Agreement: h.AgreementID, Proposer: h.Proposer, Counterpart: h.Counterpart,
		ProposerDelivers: h.ProposerDelivers, CounterpartDelivers: h.CounterpartDelivers, Request: h.RequestID,
		Deadline: h.Deadline, DocumentSHA256: docSHA(doc)}
	card, err := ex.CardIn(ctx, st.Tx, h.Proposer)
	if err != nil {
		return err
	}
	if msg.Signature, err = signatureOf(st.Agreement, doc, h.Proposer); err != nil {
		return err
	}
	msg.Document, msg.Signer = doc.Canonical(), &card
	return enqueue(ctx, st, doc.EscrowNode, h.AgreementID, h.Proposer, OutboxHeldCase, msg)
}

// relayDecision writes the counterpart's decision to the outbox for the
// proposer's node and for the escrow node.
func (s *Service) relayDecision(ctx context.Context, st *exchange.Step, h store.Handover, accept, gradual bool) error {
	doc := st.Agreement.Status.Document
	msg := DecisionMessage{Handover: h.ID, Accept: accept, DocumentSHA256: docSHA(doc)}
	if err := enqueue(ctx, st, nodeOf(doc, h.Proposer), h.AgreementID, h.Counterpart, OutboxDecision, msg); err != nil {
		return err
	}
	if gradual {
		return nil // no escrow node: the two nodes release it themselves (gradual.go)
	}
	return DecideAtEscrowNode(ctx, s.ex, st, h, accept)
}

// DecideAtEscrowNode writes the counterpart's decision on case h to the
// outbox for the escrow node, with its signature of the agreement version
// and its card, in st's transaction (see HoldAtEscrowNode).
func DecideAtEscrowNode(ctx context.Context, ex *exchange.Service, st *exchange.Step, h store.Handover, accept bool) error {
	doc := st.Agreement.Status.Document
	msg := DecisionMessage{Handover: h.ID, Accept: accept, DocumentSHA256: docSHA(doc), Deadline: h.Deadline}
	card, err := ex.CardIn(ctx, st.Tx, h.Counterpart)
	if err != nil {
		return err
	}
	if msg.Signature, err = signatureOf(st.Agreement, doc, h.Counterpart); err != nil {
		return err
	}
	msg.Signer = &card
	return enqueue(ctx, st, doc.EscrowNode, h.AgreementID, h.Counterpart, OutboxHeldDecision, msg)
}

// remoteSide returns the side of h that lives on another node, or "" when
// both are this node's (a case on one server).
func remoteSide(ctx context.Context, x store.Handle, h store.Handover) (string, error) {
	for _, pid := range []string{h.Proposer, h.Counterpart} {
		_, err := x.Federation().RemoteParty(ctx, pid)
		if err == nil {
			return pid, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	return "", nil
}

// ReceiveCase records a case the proposer's node relayed, on the
// counterpart's node, under the same id. Idempotent: a case held already
// answers Duplicate. Refusals: ErrNotPartyNode (the peer is not the
// proposer's node), exchange.ErrNotPartyHere (no such agreement with this
// node's party), ErrDocumentMismatch (another agreement version),
// exchange.ErrNotAcrossNodes (no escrow node named), ErrInvalid.
func (s *Service) ReceiveCase(ctx context.Context, peer store.Peer, m CaseMessage) (Receipt, error) {
	if err := checkText("what the proposer delivers", m.ProposerDelivers, true); err != nil {
		return Receipt{}, err
	}
	if err := checkText("what the counterpart delivers", m.CounterpartDelivers, true); err != nil {
		return Receipt{}, err
	}
	if !validCaseID(m.Handover) {
		return Receipt{}, fault.Errorf("%w: handover id %q is not handover--<uuid>", ErrInvalid, m.Handover)
	}
	out := Receipt{Handover: m.Handover}
	err := s.st.Update(ctx, func(tx store.Handle) error {
		a, err := s.ex.LockGoverning(ctx, tx, m.Agreement)
		if err != nil {
			return err
		}
		doc, now := a.Status.Document, s.Now()
		if err := checkRelayer(doc, peer, m.Proposer); err != nil {
			return err
		}
		if _, err := doc.Counterpart(m.Proposer); err != nil || nodeOf(doc, m.Counterpart) != s.ex.Node() || m.Counterpart == m.Proposer {
			return fault.Errorf("%w: %s is not the other party of %s on this node", exchange.ErrNotPartyHere, m.Counterpart, m.Agreement)
		}
		switch {
		case doc.EscrowNode == "" && m.Chunks == 0:
			return fault.Errorf("%w: agreement %s names no escrow node, and the case is not gradual", exchange.ErrNotAcrossNodes, m.Agreement)
		case doc.EscrowNode != "" && m.Chunks != 0:
			return fault.Errorf("%w: agreement %s names an escrow node; a gradual case is not taken under it", ErrInvalid, m.Agreement)
		case m.Chunks != 0 && (m.Chunks < agreement.MinChunks || m.Chunks > agreement.MaxChunks):
			return fault.Errorf("%w: a gradual case has %d to %d chunks, not %d", ErrChunkCount, agreement.MinChunks, agreement.MaxChunks, m.Chunks)
		}
		if m.DocumentSHA256 != docSHA(doc) {
			return fault.Errorf("%w: the case is under document %s, version %d here is %s", ErrDocumentMismatch, m.DocumentSHA256, doc.Version, docSHA(doc))
		}
		if had, err := tx.Handovers().Get(ctx, m.Handover); err == nil {
			if had.Proposer != m.Proposer || had.Counterpart != m.Counterpart || had.AgreementID != m.Agreement {
				return fault.Errorf("%w: handover %s exists here with other sides", ErrConflict, m.Handover)
			}
			g, _, err := gradualOf(ctx, tx, m.Handover)
			if err != nil {
				return err
			}
			if g.Chunks != m.Chunks {
				return fault.Errorf("%w: handover %s is held here with %d chunks, not %d", ErrChunkCount, m.Handover, g.Chunks, m.Chunks)
			}
			out.State, out.Duplicate = had.State, true
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if !a.Status.InForce(now) {
			return fault.Errorf("%w: agreement %s is %s here, not in force", ErrForbidden, m.Agreement, a.Status.Phase)
		}
		deadline := m.Deadline.UTC().Truncate(time.Microsecond)
		if !deadline.After(now) || deadline.After(now.Add(doc.EscrowDeadline)) {
			return fault.Errorf("%w: the deadline %s is past or later than the agreement's escrow deadline allows", ErrInvalid, deadline.Format(time.RFC3339))
		}
		// A request is named only if it is one here under the same
		// agreement (requests across nodes keep their id on both nodes).
		reqID := ""
		if m.Request != "" {
			if r, err := tx.Requests().Get(ctx, m.Request); err == nil && r.AgreementID == m.Agreement {
				reqID = r.ID
			}
		}
		h := store.Handover{ID: m.Handover, AgreementID: m.Agreement, Proposer: m.Proposer, Counterpart: m.Counterpart,
			ProposerDelivers: m.ProposerDelivers, CounterpartDelivers: m.CounterpartDelivers, RequestID: reqID,
			Deadline: deadline, State: store.HandoverProposed, CreatedAt: now}
		if err := tx.Handovers().Create(ctx, h); err != nil {
			return err
		}
		if m.Chunks != 0 {
			if err := tx.Handovers().CreateGradual(ctx, store.Gradual{HandoverID: h.ID, Chunks: m.Chunks}); err != nil {
				return err
			}
		}
		dsum := sha256.Sum256([]byte(h.ProposerDelivers + "\x00" + h.CounterpartDelivers))
		st := &exchange.Step{Tx: tx, Agreement: a, Now: now}
		attrs := map[string]string{"deadline": deadline.Format(time.RFC3339Nano), "via": peer.Name}
		if doc.EscrowNode != "" {
			attrs["escrow_node"] = doc.EscrowNode
		} else {
			attrs["chunks"] = fmt.Sprint(m.Chunks)
		}
		if reqID != "" {
			attrs["request"] = reqID
		}
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverProposed, Actor: h.Proposer, Agreement: h.AgreementID,
			Subject: h.ID, Time: now, Parties: []string{h.Proposer, h.Counterpart},
			Attrs:   attrs,
			Digests: map[string]string{"terms": digest(dsum)}})
		if err != nil {
			return err
		}
		out.State, out.LedgerIndex = h.State, idx
		return st.Notify(ctx, h.Counterpart, EventProposed, h.ID, map[string]any{"agreement": h.AgreementID,
			"from": h.Proposer, "deadline": deadline, "they_deliver": h.ProposerDelivers, "you_deliver": h.CounterpartDelivers,
			"request": h.RequestID, "escrow_node": doc.EscrowNode, "chunks": m.Chunks})
	})
	return out, err
}

// checkRelayer refuses a peer that is not the node doc places partyID on.
func checkRelayer(doc *agreement.Document, peer store.Peer, partyID string) error {
	n := nodeOf(doc, partyID)
	if n == "" {
		return fault.Errorf("%w: %s is not a party of %s", exchange.ErrNotPartyHere, partyID, doc.ID)
	}
	if n != peer.Key {
		return fault.Errorf("%w: the agreement places %s on node %s, not on peer %q", ErrNotPartyNode, partyID, n, peer.Name)
	}
	return nil
}

func validCaseID(id string) bool {
	u, ok := cutPrefix(id, "handover--")
	return ok && len(u) == 36
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) < len(p) || s[:len(p)] != p {
		return s, false
	}
	return s[len(p):], true
}

// remoteCase reads case id and its agreement under the agreement's lock,
// for a message peer relayed about it, and checks that the agreement's
// document places who on peer (who is "" for the escrow node: then the
// peer must be the escrow node the document names).
func (s *Service) remoteCase(ctx context.Context, peer store.Peer, id string, who func(h store.Handover) string,
	fn func(st *exchange.Step, h store.Handover) error) error {
	return s.SweepCase(ctx, func(tx store.Handle) (string, error) {
		h, err := tx.Handovers().Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return "", fault.Errorf("%w: %s", ErrNotFound, id)
		}
		return h.AgreementID, err
	}, func(st *exchange.Step) error {
		h, err := st.Tx.Handovers().Get(ctx, id)
		if err != nil {
			return err
		}
		a, err := s.ex.GoverningIn(ctx, st.Tx, h.AgreementID)
		if err != nil {
			return err
		}
		st.Agreement = a
		doc := a.Status.Document
		if p := who(h); p != "" {
			if err := checkRelayer(doc, peer, p); err != nil {
				return err
			}
		} else if doc.EscrowNode == "" || doc.EscrowNode != peer.Key {
			return fault.Errorf("%w: peer %q spoke as the escrow node of %s", ErrNotEscrowNode, peer.Name, h.AgreementID)
		}
		return fn(st, h)
	})
}

// ReceiveDecision records, on the proposer's node, the counterpart's
// acceptance or refusal its node relayed. Idempotent.
func (s *Service) ReceiveDecision(ctx context.Context, peer store.Peer, m DecisionMessage) (Receipt, error) {
	out := Receipt{Handover: m.Handover}
	err := s.remoteCase(ctx, peer, m.Handover, func(h store.Handover) string { return h.Counterpart }, func(st *exchange.Step, h store.Handover) error {
		want := store.HandoverDeclined
		if m.Accept {
			want = store.HandoverAccepted
		}
		if h.State == want || (m.Accept && h.State == store.HandoverReleased) {
			out.State, out.Duplicate = h.State, true
			return nil
		}
		if h.State != store.HandoverProposed {
			return closedErr(h)
		}
		if m.DocumentSHA256 != docSHA(st.Agreement.Status.Document) {
			return fault.Errorf("%w: the decision is under document %s", ErrDocumentMismatch, m.DocumentSHA256)
		}
		now := st.Now
		h.State, h.DecidedAt = want, now
		kind, ev, step := ledger.KindHandoverWithdrawn, EventDeclined, "declined"
		if m.Accept {
			kind, ev, step = ledger.KindHandoverProposed, EventAccepted, "accepted"
		} else {
			h.ClosedAt = now
		}
		if err := st.Tx.Handovers().Update(ctx, h); err != nil {
			return err
		}
		idx, err := st.Record(ctx, ledger.Entry{Kind: kind, Actor: h.Counterpart, Agreement: h.AgreementID, Subject: h.ID, Time: now,
			Parties: []string{h.Proposer, h.Counterpart}, Attrs: map[string]string{"step": step, "via": peer.Name}})
		if err != nil {
			return err
		}
		if !m.Accept {
			if err := request.HandoverFailed(ctx, st, h, request.CauseDeclined, h.Counterpart); err != nil {
				return err
			}
		}
		out.State, out.LedgerIndex = h.State, idx
		return st.Notify(ctx, h.Proposer, ev, h.ID, map[string]any{"agreement": h.AgreementID, "by": h.Counterpart})
	})
	return out, err
}

// VerdictTarget checks a verdict the escrow node sent and says whose
// deposit this node must fetch from it before ReceiveVerdict ("" when
// there is nothing to fetch: an expiry, or a verdict recorded already).
func (s *Service) VerdictTarget(ctx context.Context, peer store.Peer, v VerdictMessage) (string, error) {
	depositor := ""
	err := s.remoteCase(ctx, peer, v.Handover, func(store.Handover) string { return "" }, func(st *exchange.Step, h store.Handover) error {
		if v.State != store.HandoverReleased || h.State != store.HandoverAccepted {
			return nil // nothing to fetch: an expiry, a verdict recorded already, or a case closed here
		}
		theirs, err := remoteSide(ctx, st.Tx, h)
		depositor = theirs // the side on another node is the one to fetch
		return err
	})
	return depositor, err
}

// ReceiveVerdict records the escrow node's verdict on a case, on a party's
// node: released, with the counterpart's sealed deposit (content, fetched
// from the escrow node and checked against the verdict's SHA-256), moves
// the case to released by the same path as on one server (ledger entry,
// request hooks, both sides' events) in one transaction; expired destroys
// this node's deposit and closes the case. Idempotent.
func (s *Service) ReceiveVerdict(ctx context.Context, peer store.Peer, v VerdictMessage, content []byte) (Receipt, error) {
	out := Receipt{Handover: v.Handover}
	var late error
	err := s.remoteCase(ctx, peer, v.Handover, func(store.Handover) string { return "" }, func(st *exchange.Step, h store.Handover) error {
		if h.State == v.State {
			out.State, out.Duplicate = h.State, true
			return nil
		}
		if v.State == store.HandoverReleased && h.State == store.HandoverExpired {
			// This node ended the case because the escrow node could not
			// release it (sweep.go): a release now would give the other
			// side what this side never gets. Refused, and recorded.
			late = closedErr(h)
			return s.lateRelease(ctx, st, peer, h, v)
		}
		switch v.State {
		case store.HandoverExpired:
			if h.State != store.HandoverProposed && h.State != store.HandoverAccepted {
				return closedErr(h)
			}
			out.State = store.HandoverExpired
			return s.expireCase(ctx, st, h, "escrow node")
		case store.HandoverReleased:
		default:
			return fault.Errorf("%w: verdict %q", ErrInvalid, v.State)
		}
		if h.State != store.HandoverAccepted {
			return closedErr(h)
		}
		theirSide, err := remoteSide(ctx, st.Tx, h)
		if err != nil {
			return err
		}
		mySide := other(h, theirSide)
		mine, err := st.Tx.Handovers().DepositPart(ctx, h.ID, mySide, 0, 0) // its hash, not its bytes
		if errors.Is(err, store.ErrNotFound) {
			return fault.Errorf("%w: %s has no deposit here in %s", ErrDocumentMismatch, mySide, h.ID)
		}
		if err != nil {
			return err
		}
		if v.Deposits[mySide] != hex.EncodeToString(mine.SHA256[:]) {
			return fault.Errorf("%w: the escrow node released %s's deposit as %s, this node holds %x", ErrDocumentMismatch, mySide, v.Deposits[mySide], mine.SHA256)
		}
		sum := sha256.Sum256(content)
		if v.Deposits[theirSide] != hex.EncodeToString(sum[:]) {
			return fault.Errorf("%w: the deposit fetched of %s hashes to %x, the verdict says %s", ErrDocumentMismatch, theirSide, sum, v.Deposits[theirSide])
		}
		if err := CheckAgeFile(content); err != nil {
			return err
		}
		now := st.Now
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindHandoverDepositCommitted, Actor: theirSide, Agreement: h.AgreementID,
			Subject: h.ID, Time: now, Parties: []string{h.Proposer, h.Counterpart},
			Attrs:   map[string]string{"sealed": "true", "bytes": fmt.Sprint(len(content)), "via": peer.Name, "escrow_ledger_index": fmt.Sprint(v.LedgerIndex)},
			Digests: map[string]string{"ciphertext": digest(sum)}})
		if err != nil {
			return err
		}
		theirs := store.Deposit{HandoverID: h.ID, PartyID: theirSide, Sealed: true, Content: content, SHA256: sum, DepositedAt: now, LedgerIndex: idx}
		if err := st.Tx.Handovers().PutDeposit(ctx, theirs); err != nil {
			return err
		}
		rel, err := s.release(ctx, st, h, map[string]store.Deposit{mySide: mine, theirSide: theirs}, nil)
		if err != nil {
			return err
		}
		out.State, out.LedgerIndex = rel.State, rel.ReleaseLedgerIndex
		return nil
	})
	if err == nil && late != nil {
		return Receipt{}, late
	}
	return out, err
}

// IncidentLateRelease is the peer incident of an escrow node that
// released a case after its party node ended it as one the escrow node
// could not release.
const IncidentLateRelease = "late_release"

// lateRelease records, in st, a release verdict for case h that came
// after this node expired it: a peer incident (once per case), its
// node.peer_incident ledger entry, and an event to this node's party.
func (s *Service) lateRelease(ctx context.Context, st *exchange.Step, peer store.Peer, h store.Handover, v VerdictMessage) error {
	detail := fmt.Sprintf("escrow node released handover %s (its ledger index %d) after it expired here at %s", h.ID, v.LedgerIndex,
		h.ClosedAt.UTC().Format(time.RFC3339))
	sum := sha256.Sum256([]byte(IncidentLateRelease + "\x00" + h.ID))
	err := st.Tx.PeerLogs().AddPeerIncident(ctx, store.PeerIncident{KeyID: peer.KeyID, Peer: peer.Name, Kind: IncidentLateRelease,
		Detail: detail, Digest: hex.EncodeToString(sum[:]), At: st.Now})
	if errors.Is(err, store.ErrConflict) {
		return nil // recorded when it came before
	}
	if err != nil {
		return err
	}
	if _, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindNodePeerIncident, Subject: peer.KeyID, Time: st.Now,
		Parties: []string{h.Proposer, h.Counterpart},
		Attrs: map[string]string{"peer": peer.Name, "peer_key": peer.Key, "incident": IncidentLateRelease, "handover": h.ID,
			"escrow_ledger_index": fmt.Sprint(v.LedgerIndex)}}); err != nil {
		return err
	}
	for _, pid := range []string{h.Proposer, h.Counterpart} {
		if _, err := st.Tx.Federation().RemoteParty(ctx, pid); err == nil {
			continue
		}
		if err := st.Notify(ctx, pid, "node.peer_incident", peer.Name, map[string]any{"peer": peer.Name, "peer_key": peer.Key,
			"incident": IncidentLateRelease, "detail": detail, "handover": h.ID}); err != nil {
			return err
		}
	}
	return nil
}

// RefusedFromPeer tells the local parties of a case that a message a peer
// sent about it was refused, and why (node.handover_refused on their
// event stream). It does nothing for a case this node does not hold.
func (s *Service) RefusedFromPeer(ctx context.Context, peer store.Peer, handoverID, code string, why error) error {
	h, err := s.st.Handovers().Get(ctx, handoverID)
	if err != nil {
		return nil
	}
	text := "refused"
	if m, ok := fault.MessageOf(why); ok {
		text = string(m)
	}
	data, err := json.Marshal(map[string]string{"peer": peer.Name, "code": code, "message": text})
	if err != nil {
		return err
	}
	for _, pid := range []string{h.Proposer, h.Counterpart} {
		if _, err := s.st.Federation().RemoteParty(ctx, pid); err == nil {
			continue
		}
		if _, err := s.st.Events().Append(ctx, store.Event{PartyID: pid, Kind: "node.handover_refused", Subject: h.ID, Data: data, At: s.Now()}); err != nil {
			return err
		}
	}
	return nil
}

// DepositPart answers the escrow node the agreement names with part of
// this node's party's sealed deposit in a case across nodes: the node
// sends it the first PartAcrossNodes bytes, and it asks for the rest
// (HoldDeposit). Only that node is answered (ErrNotEscrowNode), and only
// about a deposit of a party of this node (ErrNotFound otherwise, as for
// no such case); it sees nothing it was not sent to hold.
func (s *Service) DepositPart(ctx context.Context, peer store.Peer, r FetchRequest) (FetchAnswer, error) {
	h, err := s.st.Handovers().Get(ctx, r.Handover)
	if errors.Is(err, store.ErrNotFound) {
		return FetchAnswer{}, fault.Errorf("%w: %s", ErrNotFound, r.Handover)
	}
	if err != nil {
		return FetchAnswer{}, err
	}
	a, err := s.ex.GoverningIn(ctx, s.st, h.AgreementID)
	if err != nil {
		return FetchAnswer{}, err
	}
	doc := a.Status.Document
	if doc == nil || doc.EscrowNode == "" || doc.EscrowNode != peer.Key {
		return FetchAnswer{}, fault.Errorf("%w: peer %q asked for a deposit in %s", ErrNotEscrowNode, peer.Name, h.ID)
	}
	if (r.Depositor != h.Proposer && r.Depositor != h.Counterpart) || nodeOf(doc, r.Depositor) != s.ex.Node() {
		return FetchAnswer{}, fault.Errorf("%w: no deposit of %s in %s here", ErrNotFound, r.Depositor, h.ID)
	}
	if err := checkOffset(r); err != nil {
		return FetchAnswer{}, err
	}
	d, err := s.st.Handovers().DepositPart(ctx, h.ID, r.Depositor, r.Offset, FetchPartSize)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !d.Sealed) {
		return FetchAnswer{}, fault.Errorf("%w: no sealed deposit of %s in %s here", ErrNotFound, r.Depositor, h.ID)
	}
	if err != nil {
		return FetchAnswer{}, err
	}
	return partAt(r, d.Content, d.Size, d.SHA256)
}

// What other workflows across nodes (private matching) share with
// handovers: who speaks for whom, and the durable outbox.

// Relay writes msg of outbox kind to the outbox for the node nodeKey, in
// st's transaction, on behalf of partyID (who hears of a refusal).
func Relay(ctx context.Context, st *exchange.Step, nodeKey, agreementID, partyID, kind string, msg any) error {
	return enqueue(ctx, st, nodeKey, agreementID, partyID, kind, msg)
}

// PartyNode is the node key the signed document places partyID on ("" if
// it is not a party of doc).
func PartyNode(doc *agreement.Document, partyID string) string { return nodeOf(doc, partyID) }

// CheckRelayer refuses, with ErrNotPartyNode (or exchange.ErrNotPartyHere
// when partyID is no party of doc), a peer that is not the node doc
// places partyID on.
func CheckRelayer(doc *agreement.Document, peer store.Peer, partyID string) error {
	return checkRelayer(doc, peer, partyID)
}

// DocumentDigest is the "sha256:<hex>" digest of a signed document
// version, as messages between nodes name it.
func DocumentDigest(doc *agreement.Document) string { return docSHA(doc) }
