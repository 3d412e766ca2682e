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
	"github.com/parley-cti/parley/internal/store"
)

// The escrow node's side of handovers across nodes (issue 14 item 4): this
// node holds a case between parties of two other nodes because the
// agreement both parties signed names it (escrow_node). It has no party of
// either side. It believes each party node only about its own party: the
// case and the proposer's signature of the agreement version from the
// proposer's node, the acceptance and the counterpart's signature from the
// counterpart's node, each side's sealed deposit from that side's node. It
// releases both deposits in one transaction with its ledger entry, or at
// the deadline destroys both in one transaction, and tells both party
// nodes through its outbox; each then fetches the other side's deposit.

// cardKeys resolves the keys a party node announced for its own party.
type cardKeys exchange.PartyCard

func (c cardKeys) ResolveKey(keyID string, at time.Time) (string, agreement.PublicKeys, error) {
	for _, k := range c.Keys {
		if k.Keys.KeyID != keyID {
			continue
		}
		if at.Before(k.ValidFrom.Add(-5*time.Minute)) || (!k.ValidUntil.IsZero() && !at.Before(k.ValidUntil)) {
			return "", agreement.PublicKeys{}, fault.Errorf("%w: key %s was not valid at %s", agreement.ErrUnknownKey, keyID, at.Format(time.RFC3339))
		}
		return c.PartyID, k.Keys, nil
	}
	return "", agreement.PublicKeys{}, fault.Errorf("%w: %s", agreement.ErrUnknownKey, keyID)
}

// checkSigned verifies that partyID signed exactly doc, with a key its
// node (which sent card) announced.
func checkSigned(doc *agreement.Document, partyID string, card *exchange.PartyCard, raw json.RawMessage) error {
	if card == nil || card.PartyID != partyID || len(raw) == 0 {
		return fault.Errorf("%w: the message carries no signature of %s on the agreement", ErrInvalid, partyID)
	}
	sig, err := agreement.ParseSignature(raw)
	if err != nil {
		return err
	}
	if sig.PartyID != partyID {
		return fault.Errorf("%w: the signature is by %s, not %s", exchange.ErrNotPeersParty, sig.PartyID, partyID)
	}
	switch sig.Action {
	case agreement.ActionPropose, agreement.ActionAmend, agreement.ActionCountersign:
	default:
		return fault.Errorf("%w: a %s signature does not sign a document", ErrInvalid, sig.Action)
	}
	return agreement.VerifyFor(doc, cardKeys(*card), sig)
}

// holdCase runs fn on held case id under its lock, in one transaction.
func (s *Service) holdCase(ctx context.Context, id string, fn func(tx store.Handle, c store.HeldCase, now time.Time) error) error {
	return s.st.Update(ctx, func(tx store.Handle) error {
		if err := tx.HeldCases().Lock(ctx, id); err != nil {
			return err
		}
		c, err := tx.HeldCases().Get(ctx, id)
		if err != nil {
			return err
		}
		return fn(tx, c, s.Now().Truncate(time.Microsecond))
	})
}

// HoldCase takes a case the proposer's node sent this node as the escrow
// node its agreement names. Idempotent (the same case again answers
// Duplicate). Refusals: ErrNotEscrowNode (the document names another
// node, or none), ErrNotPartyNode (the peer is not the proposer's node),
// ErrDocumentMismatch (the document is not the one the case names),
// agreement signature errors (the proposer did not sign it), ErrInvalid,
// exchange.ErrNoNode (the counterpart's node is not pinned here).
func (s *Service) HoldCase(ctx context.Context, peer store.Peer, m CaseMessage) (Receipt, error) {
	if !validCaseID(m.Handover) {
		return Receipt{}, fault.Errorf("%w: handover id %q is not handover--<uuid>", ErrInvalid, m.Handover)
	}
	doc, err := agreement.ParseDocument(m.Document)
	if err != nil {
		return Receipt{}, err
	}
	switch {
	case s.ex.Node() == "" || doc.EscrowNode != s.ex.Node():
		return Receipt{}, fault.Errorf("%w: agreement %s names escrow node %q, not this node", ErrNotEscrowNode, doc.ID, doc.EscrowNode)
	case doc.ID != m.Agreement:
		return Receipt{}, fault.Errorf("%w: the case is under %s, the document is %s", ErrDocumentMismatch, m.Agreement, doc.ID)
	case docSHA(doc) != m.DocumentSHA256 || !bytes.Equal(doc.Canonical(), m.Document):
		return Receipt{}, fault.Errorf("%w: the case names document %s, the document sent hashes to %s", ErrDocumentMismatch, m.DocumentSHA256, docSHA(doc))
	}
	if err := checkRelayer(doc, peer, m.Proposer); err != nil {
		return Receipt{}, err
	}
	if cp, err := doc.Counterpart(m.Proposer); err != nil || cp.PartyID != m.Counterpart {
		return Receipt{}, fault.Errorf("%w: %s is not the other party of %s", ErrInvalid, m.Counterpart, doc.ID)
	}
	if err := checkSigned(doc, m.Proposer, m.Signer, m.Signature); err != nil {
		return Receipt{}, err
	}
	now := s.Now().Truncate(time.Microsecond)
	deadline := m.Deadline.UTC().Truncate(time.Microsecond)
	if !deadline.After(now) || deadline.After(now.Add(doc.EscrowDeadline)) {
		return Receipt{}, fault.Errorf("%w: the deadline %s is past or later than the agreement's escrow deadline (%s) allows", ErrInvalid,
			deadline.Format(time.RFC3339), doc.EscrowDeadline)
	}
	out := Receipt{Handover: m.Handover}
	err = s.st.Update(ctx, func(tx store.Handle) error {
		if _, err := peerKeyID(ctx, tx, nodeOf(doc, m.Counterpart)); err != nil {
			return err
		}
		if had, err := tx.HeldCases().Get(ctx, m.Handover); err == nil {
			if had.DocumentSHA256 != m.DocumentSHA256 || had.Proposer != m.Proposer || had.Counterpart != m.Counterpart || !had.Deadline.Equal(deadline) {
				return fault.Errorf("%w: handover %s is held here with other terms", ErrConflict, m.Handover)
			}
			out.State, out.Duplicate = had.State, true
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		c := store.HeldCase{HandoverID: m.Handover, AgreementID: doc.ID, DocumentSHA256: m.DocumentSHA256, Document: doc.Canonical(),
			Proposer: m.Proposer, Counterpart: m.Counterpart, ProposerNode: nodeOf(doc, m.Proposer), CounterpartNode: nodeOf(doc, m.Counterpart),
			Deadline: deadline, State: store.HeldProposed, CreatedAt: now}
		if err := tx.HeldCases().Create(ctx, c); err != nil {
			return err
		}
		idx, err := ledger.Append(ctx, tx.Ledger(), ledger.Entry{Kind: ledger.KindHandoverProposed, Actor: m.Proposer, Agreement: doc.ID,
			Subject: c.HandoverID, Time: now, Parties: []string{c.Proposer, c.Counterpart},
			Attrs:   map[string]string{"deadline": deadline.Format(time.RFC3339Nano), "held_for": peer.Name, "step": "held"},
			Digests: map[string]string{"document": m.DocumentSHA256}})
		out.State, out.LedgerIndex = c.State, idx
		return err
	})
	return out, err
}

// HoldDecision records the counterpart's acceptance or refusal its node
// sent, after checking the counterpart signed the same agreement version.
// ErrTooEarly when the case has not arrived yet (the sender retries).
func (s *Service) HoldDecision(ctx context.Context, peer store.Peer, m DecisionMessage) (Receipt, error) {
	out := Receipt{Handover: m.Handover}
	err := s.holdCase(ctx, m.Handover, func(tx store.Handle, c store.HeldCase, now time.Time) error {
		if peer.Key != c.CounterpartNode {
			return fault.Errorf("%w: the agreement places %s on node %s, not on peer %q", ErrNotPartyNode, c.Counterpart, c.CounterpartNode, peer.Name)
		}
		if m.DocumentSHA256 != c.DocumentSHA256 {
			return fault.Errorf("%w: the decision is under document %s, the case under %s", ErrDocumentMismatch, m.DocumentSHA256, c.DocumentSHA256)
		}
		doc, err := agreement.ParseDocument(c.Document)
		if err != nil {
			return err
		}
		if err := checkSigned(doc, c.Counterpart, m.Signer, m.Signature); err != nil {
			return err
		}
		want := store.HeldDeclined
		if m.Accept {
			want = store.HeldAccepted
		}
		if c.State == want || (m.Accept && c.State == store.HeldReleased) {
			out.State, out.Duplicate = c.State, true
			return nil
		}
		if c.State != store.HeldProposed {
			return fault.Errorf("%w: handover %s is %s here", ErrConflict, c.HandoverID, c.State)
		}
		if !now.Before(c.Deadline) {
			return fault.Errorf("%w: handover %s expired at %s", ErrDeadlinePassed, c.HandoverID, c.Deadline.Format(time.RFC3339))
		}
		c.State = want
		kind, step := ledger.KindHandoverProposed, "accepted"
		if !m.Accept {
			c.ClosedAt, kind, step = now, ledger.KindHandoverWithdrawn, "declined"
			if _, err := tx.HeldCases().DeleteDeposits(ctx, c.HandoverID); err != nil {
				return err
			}
		}
		if err := tx.HeldCases().Update(ctx, c); err != nil {
			return err
		}
		idx, err := ledger.Append(ctx, tx.Ledger(), ledger.Entry{Kind: kind, Actor: c.Counterpart, Agreement: c.AgreementID, Subject: c.HandoverID,
			Time: now, Parties: []string{c.Proposer, c.Counterpart}, Attrs: map[string]string{"step": step, "held_for": peer.Name}})
		if err != nil {
			return err
		}
		out.State, out.LedgerIndex = c.State, idx
		if m.Accept {
			rel, err := s.releaseHeld(ctx, tx, c, now)
			if err != nil {
				return err
			}
			out.State = rel.State
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		// A case arriving now would be refused as past its deadline:
		// waiting for it is pointless, and the counterpart's node learns
		// that this node cannot release it.
		if !m.Deadline.IsZero() && !s.Now().Before(m.Deadline) {
			return Receipt{}, fault.Errorf("%w: no handover %s is held here, and its deadline %s has passed", ErrDeadlinePassed, m.Handover, m.Deadline.UTC().Format(time.RFC3339))
		}
		return Receipt{}, fault.Errorf("%w: handover %s", ErrTooEarly, m.Handover)
	}
	return out, err
}

// HoldDeposit takes one side's sealed deposit, from the node the signed
// document places that side on, once per side: the same deposit again is
// answered Duplicate and changes nothing; another one is refused. When both
// are in and the case is accepted, both are released in the same
// transaction. A deposit larger than one node request comes with its
// first PartAcrossNodes bytes, its size and its SHA-256; once the case and
// the sender are checked, the rest is read through rest (from the
// depositor's node: DepositPart there) and the whole checked as one
// (SHA-256, an age file) before anything is stored. A failure to read the
// rest is ErrDepositUnreachable: the sender's outbox sends it again.
func (s *Service) HoldDeposit(ctx context.Context, peer store.Peer, m DepositMessage, rest FetchFunc) (Receipt, error) {
	size := m.Size
	if size == 0 {
		size = int64(len(m.Content)) // all of it in the message
	}
	if size < 1 || size > MaxDeposit || int64(len(m.Content)) != min(size, PartAcrossNodes) {
		return Receipt{}, fault.Errorf("%w: a deposit between nodes is 1 to %d bytes, the first %d of them in the message", ErrInvalid, MaxDeposit, PartAcrossNodes)
	}
	if !bytes.HasPrefix(m.Content, []byte(ageVersionLine)) {
		return Receipt{}, fault.Errorf("%w: %w", ErrSealedOnly, CheckAgeFile(m.Content))
	}
	content := m.Content
	if size > int64(len(m.Content)) {
		c, err := s.st.HeldCases().Get(ctx, m.Handover)
		if errors.Is(err, store.ErrNotFound) {
			return Receipt{}, fault.Errorf("%w: no such handover held here: %s", ErrNotFound, m.Handover)
		}
		if err != nil {
			return Receipt{}, err
		}
		if _, err := depositorNode(c, m.Party, peer); err != nil {
			return Receipt{}, err
		}
		if had, err := s.st.HeldCases().DepositPart(ctx, c.HandoverID, m.Party, 0, 0); err == nil && hex.EncodeToString(had.SHA256[:]) == m.SHA256 {
			return Receipt{Handover: c.HandoverID, State: c.State, Duplicate: true}, nil
		}
		if c.State != store.HeldProposed && c.State != store.HeldAccepted {
			return Receipt{}, fault.Errorf("%w: handover %s is %s here", ErrConflict, c.HandoverID, c.State)
		}
		if content, err = FetchWhole(ctx, m.Handover, m.Party, size, m.SHA256, m.Content, rest); err != nil {
			return Receipt{}, fault.Errorf("%w: %s's deposit in %s from peer %q: %w", ErrDepositUnreachable, m.Party, m.Handover, peer.Name, err)
		}
	}
	sum := sha256.Sum256(content)
	if m.SHA256 != hex.EncodeToString(sum[:]) {
		return Receipt{}, fault.Errorf("%w: stated %s, received %d bytes hashing to %x", ErrHashMismatch, m.SHA256, len(content), sum)
	}
	if err := CheckAgeFile(content); err != nil {
		return Receipt{}, fault.Errorf("%w: %w", ErrSealedOnly, err)
	}
	out := Receipt{Handover: m.Handover}
	err := s.holdCase(ctx, m.Handover, func(tx store.Handle, c store.HeldCase, now time.Time) error {
		if _, err := depositorNode(c, m.Party, peer); err != nil {
			return err
		}
		had, err := tx.HeldCases().DepositPart(ctx, c.HandoverID, m.Party, 0, 0) // its hash, not its bytes
		switch {
		case err == nil && had.SHA256 == sum:
			out.State, out.Duplicate = c.State, true
			return nil
		case err == nil:
			return fault.Errorf("%w: %s has deposited in handover %s already; one deposit per side", ErrConflict, m.Party, c.HandoverID)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if c.State != store.HeldProposed && c.State != store.HeldAccepted {
			return fault.Errorf("%w: handover %s is %s here", ErrConflict, c.HandoverID, c.State)
		}
		if !now.Before(c.Deadline) {
			return fault.Errorf("%w: handover %s expired at %s", ErrDeadlinePassed, c.HandoverID, c.Deadline.Format(time.RFC3339))
		}
		idx, err := ledger.Append(ctx, tx.Ledger(), ledger.Entry{Kind: ledger.KindHandoverDepositCommitted, Actor: m.Party, Agreement: c.AgreementID,
			Subject: c.HandoverID, Time: now, Parties: []string{c.Proposer, c.Counterpart},
			Attrs:   map[string]string{"sealed": "true", "bytes": fmt.Sprint(len(content)), "held_for": peer.Name},
			Digests: map[string]string{"ciphertext": digest(sum)}})
		if err != nil {
			return err
		}
		if err := tx.HeldCases().PutDeposit(ctx, store.HeldDeposit{HandoverID: c.HandoverID, PartyID: m.Party, Content: content, SHA256: sum,
			DepositedAt: now, LedgerIndex: idx}); err != nil {
			return err
		}
		out.State, out.LedgerIndex = c.State, idx
		if c.State == store.HeldAccepted {
			rel, err := s.releaseHeld(ctx, tx, c, now)
			if err != nil {
				return err
			}
			out.State = rel.State
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return Receipt{}, fault.Errorf("%w: no such handover held here: %s", ErrNotFound, m.Handover)
	}
	return out, err
}

// depositorNode returns the node the case places partyID on, and refuses
// a party that is no side of it (ErrInvalid) or a peer that is not that
// node (ErrNotPartyNode).
func depositorNode(c store.HeldCase, partyID string, peer store.Peer) (string, error) {
	var node string
	switch partyID {
	case c.Proposer:
		node = c.ProposerNode
	case c.Counterpart:
		node = c.CounterpartNode
	default:
		return "", fault.Errorf("%w: %s is not a side of handover %s", ErrInvalid, partyID, c.HandoverID)
	}
	if peer.Key != node {
		return "", fault.Errorf("%w: the agreement places %s on node %s, not on peer %q", ErrNotPartyNode, partyID, node, peer.Name)
	}
	return node, nil
}

// releaseHeld releases accepted case c in tx if both deposits are in: the
// case's state, the ledger entry with both deposits' hashes, and the
// verdict to both party nodes, all in the one transaction. It returns c
// unchanged while a deposit is missing.
func (s *Service) releaseHeld(ctx context.Context, tx store.Handle, c store.HeldCase, now time.Time) (store.HeldCase, error) {
	sums := map[string]string{}
	digests := map[string]string{}
	for role, pid := range map[string]string{"proposer": c.Proposer, "counterpart": c.Counterpart} {
		d, err := tx.HeldCases().DepositPart(ctx, c.HandoverID, pid, 0, 0) // its hash, not its bytes
		if errors.Is(err, store.ErrNotFound) {
			return c, nil
		}
		if err != nil {
			return c, err
		}
		sums[pid] = hex.EncodeToString(d.SHA256[:])
		digests[role] = digest(d.SHA256)
	}
	crashPoint(CrashReleaseMidTx)
	idx, err := ledger.Append(ctx, tx.Ledger(), ledger.Entry{Kind: ledger.KindHandoverReleased, Agreement: c.AgreementID, Subject: c.HandoverID,
		Time: now, Parties: []string{c.Proposer, c.Counterpart}, Attrs: map[string]string{"proposer_sealed": "true", "counterpart_sealed": "true", "step": "held"},
		Digests: digests})
	if err != nil {
		return c, err
	}
	c.State, c.ClosedAt, c.ReleaseIndex = store.HeldReleased, now, idx
	if err := tx.HeldCases().Update(ctx, c); err != nil {
		return c, err
	}
	return c, s.tellParties(ctx, tx, c, VerdictMessage{Handover: c.HandoverID, State: store.HandoverReleased, Deposits: sums, LedgerIndex: idx}, now)
}

// tellParties writes the verdict to the outbox for both party nodes.
func (s *Service) tellParties(ctx context.Context, tx store.Handle, c store.HeldCase, v VerdictMessage, now time.Time) error {
	st := &exchange.Step{Tx: tx, Now: now}
	for _, n := range []string{c.ProposerNode, c.CounterpartNode} {
		// No party of this node is concerned: a refusal is for the log.
		if err := enqueue(ctx, st, n, c.AgreementID, "", OutboxVerdict, v); err != nil {
			return err
		}
	}
	return nil
}

// FetchHeld returns a released deposit, from r.Offset on, at most
// FetchPartSize bytes of it, to the node of its recipient (the other
// side), and to no other node. ErrNotPartyNode for any other peer,
// ErrNotReleased before the release, ErrNotFound for no such case.
func (s *Service) FetchHeld(ctx context.Context, peer store.Peer, r FetchRequest) (FetchAnswer, error) {
	c, err := s.st.HeldCases().Get(ctx, r.Handover)
	if errors.Is(err, store.ErrNotFound) {
		return FetchAnswer{}, fault.Errorf("%w: no such handover held here: %s", ErrNotFound, r.Handover)
	}
	if err != nil {
		return FetchAnswer{}, err
	}
	var recipientNode string
	switch r.Depositor {
	case c.Proposer:
		recipientNode = c.CounterpartNode
	case c.Counterpart:
		recipientNode = c.ProposerNode
	default:
		return FetchAnswer{}, fault.Errorf("%w: %s is not a side of handover %s", ErrInvalid, r.Depositor, c.HandoverID)
	}
	if peer.Key != recipientNode {
		return FetchAnswer{}, fault.Errorf("%w: peer %q is not the node of the recipient of %s's deposit in %s", ErrNotPartyNode, peer.Name, r.Depositor, c.HandoverID)
	}
	if c.State != store.HeldReleased {
		return FetchAnswer{}, fault.Errorf("%w: handover %s is %s here", ErrNotReleased, c.HandoverID, c.State)
	}
	if err := checkOffset(r); err != nil {
		return FetchAnswer{}, err
	}
	d, err := s.st.HeldCases().DepositPart(ctx, c.HandoverID, r.Depositor, r.Offset, FetchPartSize)
	if err != nil {
		return FetchAnswer{}, err
	}
	return partAt(r, d.Content, d.Size, d.SHA256)
}

// HeldCase returns a case this node holds as escrow node (operators, tests).
func (s *Service) HeldCase(ctx context.Context, id string) (store.HeldCase, error) {
	return s.st.HeldCases().Get(ctx, id)
}

// sweepHeld expires held cases whose deadline passed: both deposits
// destroyed, the ledger entry and the verdict to both party nodes in one
// transaction per case.
func (s *Service) sweepHeld(ctx context.Context) (int, error) {
	now := s.Now()
	due, err := s.st.HeldCases().Due(ctx, now, sweepBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, d := range due {
		done := false
		err := s.holdCase(ctx, d.HandoverID, func(tx store.Handle, c store.HeldCase, now time.Time) error {
			done = false
			if (c.State != store.HeldProposed && c.State != store.HeldAccepted) || now.Before(c.Deadline) {
				return nil // released meanwhile
			}
			destroyed, err := tx.HeldCases().DeleteDeposits(ctx, c.HandoverID)
			if err != nil {
				return err
			}
			c.State, c.ClosedAt = store.HeldExpired, now
			if err := tx.HeldCases().Update(ctx, c); err != nil {
				return err
			}
			idx, err := ledger.Append(ctx, tx.Ledger(), ledger.Entry{Kind: ledger.KindHandoverExpired, Agreement: c.AgreementID, Subject: c.HandoverID,
				Time: now, Parties: []string{c.Proposer, c.Counterpart},
				Attrs: map[string]string{"deadline": c.Deadline.Format(time.RFC3339Nano), "destroyed": fmt.Sprint(destroyed), "step": "held"}})
			if err != nil {
				return err
			}
			done = true
			return s.tellParties(ctx, tx, c, VerdictMessage{Handover: c.HandoverID, State: store.HandoverExpired, LedgerIndex: idx}, now)
		})
		if err == nil && done {
			n++
		}
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// Stages of a held case as its operator reads them: the state, with an
// open accepted case told apart by how many deposits are in.
const (
	StageAwaitingAcceptance = "awaiting acceptance" // proposed: the counterpart's node has not relayed an acceptance
	StageAwaitingDeposits   = "awaiting deposits"   // accepted, no deposit in
	StageOneDeposit         = "one deposit"         // accepted, one side's deposit in
)

// HeldView is a case this node holds as escrow node, for its operator:
// the case without the agreement's bytes, the pinned names of the two
// party nodes ("" when the key is no longer pinned), and what it holds of
// each deposit — hash, size, when — never the content.
type HeldView struct {
	store.HeldCase
	Stage           string
	ProposerPeer    string
	CounterpartPeer string
	Deposits        []store.HeldDeposit
}

// HeldCases lists up to limit cases this node holds as escrow node,
// newest first, whatever their state.
func (s *Service) HeldCases(ctx context.Context, limit int) ([]HeldView, error) {
	cs, err := s.st.HeldCases().List(ctx, limit)
	if err != nil {
		return nil, err
	}
	peers, err := s.st.Nodes().Peers(ctx)
	if err != nil {
		return nil, err
	}
	name := map[string]string{}
	for _, p := range peers {
		name[p.Key] = p.Name
	}
	out := make([]HeldView, 0, len(cs))
	for _, c := range cs {
		ds, err := s.st.HeldCases().Deposits(ctx, c.HandoverID)
		if err != nil {
			return nil, err
		}
		c.Document = nil
		v := HeldView{HeldCase: c, Stage: c.State, ProposerPeer: name[c.ProposerNode], CounterpartPeer: name[c.CounterpartNode], Deposits: ds}
		switch {
		case c.State == store.HeldProposed:
			v.Stage = StageAwaitingAcceptance
		case c.State == store.HeldAccepted && len(ds) == 0:
			v.Stage = StageAwaitingDeposits
		case c.State == store.HeldAccepted:
			v.Stage = StageOneDeposit
		}
		out = append(out, v)
	}
	return out, nil
}
