package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Agreements across nodes (issue 14, item 2; docs/federation.md).
//
// A party of a peer node is known here by what that peer said of it: its
// id, its name on its node and its public keys (a PartyCard). Only the
// peer it lives on may speak for it (store.RemoteParty.NodeKeyID). It gets
// a row in parties, named NAME@PEER, so its keys and agreements are kept
// as a local party's are; it has no token and signs nothing here.
//
// A document between two nodes names each party's node (agreement.Party.
// Node). Every step a local party signs on such an agreement is written,
// in the step's own transaction, to the outbox for the other party's node;
// the node package sends it. A step a peer relays is verified as a local
// one is (the document, every signature, the lifecycle), without the clock
// check a party's own submission gets (it may arrive long after it was
// signed, the peer having been offline), and recorded with its own ledger
// entry here.

// Sentinels of the node-to-node agreement messages, with the codes a peer
// is answered with.
var (
	// ErrNotPeersParty: a peer spoke for a party that does not live on it
	// (a party of this node, of another peer, or a key of another party).
	ErrNotPeersParty = fault.Refine(fault.Tagged(fault.Forbidden, "exchange", "the peer spoke for a party that does not live on it"), nil, "not_peers_party")
	// ErrNoSuchParty: this node has no such party of its own.
	ErrNoSuchParty = fault.Refine(fault.Tagged(fault.NotFound, "exchange", "no such party on this node"), nil, "no_such_party")
	// ErrNotPartyHere: a peer relayed a step of an agreement its party is
	// not a party to here (or that does not exist here).
	ErrNotPartyHere = fault.Refine(fault.Tagged(fault.NotFound, "exchange", "the peer's party is not a party to that agreement on this node"), nil, "not_party")
	// ErrNotAcrossNodes: what was asked is not built for agreements
	// between two nodes yet.
	ErrNotAcrossNodes = fault.Refine(fault.Tagged(fault.Conflict, "exchange", "not available across nodes yet"), nil, "not_across_nodes")
	// ErrNoNode: the document names nodes, but this server has no node
	// key, or the node named for the party here is not this node.
	ErrNoNode = fault.Refine(fault.Tagged(fault.Invalid, "exchange", "the document's nodes do not match this node and its peers"), nil, "wrong_node")
)

// OutboxStep is the kind of outbox entry that carries a StepMessage.
const OutboxStep = "agreement.step"

// PartyCard is what a node says of one of its own parties.
type PartyCard struct {
	PartyID string    `json:"party_id"`
	Name    string    `json:"name"`
	Keys    []CardKey `json:"keys"`
}

// CardKey is one of a party's key sets and when it was valid.
type CardKey struct {
	Keys       agreement.PublicKeys `json:"keys"`
	ValidFrom  time.Time            `json:"valid_from"`
	ValidUntil time.Time            `json:"valid_until,omitzero"`
}

// StepMessage is one signed agreement step on its way to the other
// party's node: the signer's card (its node speaks for it), the document
// for a proposal or amendment (canonical bytes), and the signature.
type StepMessage struct {
	Signer    PartyCard       `json:"signer"`
	Document  json.RawMessage `json:"document,omitempty"`
	Signature json.RawMessage `json:"signature"`
}

// RemoteParty is a peer's party as a local party addresses it.
type RemoteParty struct {
	PartyID string    `json:"party_id"`
	Name    string    `json:"name"`     // on its own node
	Local   string    `json:"local"`    // its name here, NAME@PEER
	Node    string    `json:"node"`     // its node's key
	Self    string    `json:"self"`     // this node's key, for the document's other party
	KeyID   string    `json:"key_id"`   // its current signing key
	Learned time.Time `json:"learned"`  // when this node (last) heard of it
	Peer    string    `json:"peer"`     // the peer's name here
	Keys    []CardKey `json:"keys"`     // as its node said
	Current bool      `json:"has_keys"` // it has a current key
	// Stored is set when the peer did not answer and this is what the
	// node learned from it before.
	Stored bool `json:"stored,omitempty"`
}

// SetNode tells the service this node's key (as `parley node id` prints
// it): the node a document must name for a party of this node.
func (s *Service) SetNode(vkey string) { s.node = vkey }

// Node returns this node's key, or "" when the service has none.
func (s *Service) Node() string { return s.node }

// LocalParty returns the card of a party of this node, by id or name, for
// a peer that asks: ErrNoSuchParty for none (and for a peer's party, which
// this node does not speak for).
func (s *Service) LocalParty(ctx context.Context, ref string) (PartyCard, error) {
	return s.cardOf(ctx, s.st, ref)
}

func (s *Service) cardOf(ctx context.Context, x store.Handle, ref string) (PartyCard, error) {
	p, err := x.Parties().Get(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		p, err = x.Parties().ByName(ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return PartyCard{}, fault.Errorf("%w: %q", ErrNoSuchParty, ref)
	}
	if err != nil {
		return PartyCard{}, err
	}
	if _, err := x.Federation().RemoteParty(ctx, p.ID); err == nil {
		return PartyCard{}, fault.Errorf("%w: %q", ErrNoSuchParty, ref)
	} else if !errors.Is(err, store.ErrNotFound) {
		return PartyCard{}, err
	}
	ks, err := x.Keys().ListByParty(ctx, p.ID)
	if err != nil {
		return PartyCard{}, err
	}
	card := PartyCard{PartyID: p.ID, Name: p.Name, Keys: []CardKey{}}
	for _, k := range ks {
		var pub agreement.PublicKeys
		if err := json.Unmarshal(k.Public, &pub); err != nil {
			return PartyCard{}, fault.Errorf("stored key %s: %w", k.KeyID, err)
		}
		card.Keys = append(card.Keys, CardKey{Keys: pub, ValidFrom: k.ValidFrom, ValidUntil: k.ValidUntil})
	}
	return card, nil
}

// LearnRemoteParty records (or refreshes) what peer said of one of its
// parties. ErrNotPeersParty if the party, or one of its keys, is another's.
func (s *Service) LearnRemoteParty(ctx context.Context, peer store.Peer, card PartyCard) (RemoteParty, error) {
	var out RemoteParty
	err := s.st.Update(ctx, func(tx store.Handle) error {
		rp, err := s.learnIn(ctx, tx, peer, card)
		if err != nil {
			return err
		}
		out = s.remoteView(peer, rp, card)
		return nil
	})
	return out, err
}

func (s *Service) remoteView(peer store.Peer, rp store.RemoteParty, card PartyCard) RemoteParty {
	out := RemoteParty{PartyID: rp.PartyID, Name: rp.Name, Local: rp.Name + "@" + peer.Name, Node: rp.NodeKey, Self: s.node,
		Learned: rp.LearnedAt, Peer: peer.Name, Keys: card.Keys}
	for _, k := range card.Keys {
		if k.ValidUntil.IsZero() {
			out.KeyID, out.Current = k.Keys.KeyID, true
		}
	}
	return out
}

// KnownRemoteParty returns what this node learned before of peer's party
// ref (an id, or its name there), for when the peer does not answer:
// ErrNoSuchParty if it learned nothing.
func (s *Service) KnownRemoteParty(ctx context.Context, peer store.Peer, ref string) (RemoteParty, error) {
	p, err := s.st.Parties().Get(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		p, err = s.st.Parties().ByName(ctx, ref+"@"+peer.Name)
	}
	if errors.Is(err, store.ErrNotFound) {
		return RemoteParty{}, fault.Errorf("%w: nothing is known here of %q on peer %q", ErrNoSuchParty, ref, peer.Name)
	}
	if err != nil {
		return RemoteParty{}, err
	}
	rp, err := s.st.Federation().RemoteParty(ctx, p.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rp.NodeKeyID != peer.KeyID) {
		return RemoteParty{}, fault.Errorf("%w: nothing is known here of %q on peer %q", ErrNoSuchParty, ref, peer.Name)
	}
	if err != nil {
		return RemoteParty{}, err
	}
	ks, err := s.st.Keys().ListByParty(ctx, p.ID)
	if err != nil {
		return RemoteParty{}, err
	}
	card := PartyCard{PartyID: p.ID, Name: rp.Name}
	for _, k := range ks {
		var pub agreement.PublicKeys
		if err := json.Unmarshal(k.Public, &pub); err != nil {
			return RemoteParty{}, fault.Errorf("stored key %s: %w", k.KeyID, err)
		}
		card.Keys = append(card.Keys, CardKey{Keys: pub, ValidFrom: k.ValidFrom, ValidUntil: k.ValidUntil})
	}
	out := s.remoteView(peer, rp, card)
	out.Stored = true
	return out, nil
}

// learnIn records card as peer's party in tx.
func (s *Service) learnIn(ctx context.Context, tx store.Handle, peer store.Peer, card PartyCard) (store.RemoteParty, error) {
	if !validPartyID(card.PartyID) || !party.ValidName(card.Name) {
		return store.RemoteParty{}, fault.Errorf("%w: a party card needs a party_id (party--<uuid>) and a party name (1 to 63 letters, digits, spaces, '.', '_' or '-')", ErrInvalid)
	}
	rp, err := tx.Federation().RemoteParty(ctx, card.PartyID)
	switch {
	case err == nil:
		if rp.NodeKeyID != peer.KeyID {
			return store.RemoteParty{}, fault.Errorf("%w: %s lives on another node", ErrNotPeersParty, card.PartyID)
		}
	case errors.Is(err, store.ErrNotFound):
		if _, err := tx.Parties().Get(ctx, card.PartyID); err == nil {
			return store.RemoteParty{}, fault.Errorf("%w: %s is a party of this node", ErrNotPeersParty, card.PartyID)
		} else if !errors.Is(err, store.ErrNotFound) {
			return store.RemoteParty{}, err
		}
		now := s.now()
		local := card.Name + "@" + peer.Name
		if err := tx.Parties().Create(ctx, store.Party{ID: card.PartyID, Name: local, CreatedAt: now}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return store.RemoteParty{}, fault.Errorf("%w: the name %q is taken on this node", ErrConflict, local)
			}
			return store.RemoteParty{}, err
		}
		rp = store.RemoteParty{PartyID: card.PartyID, NodeKey: peer.Key, NodeKeyID: peer.KeyID, Name: card.Name, LearnedAt: now}
		if err := tx.Federation().AddRemoteParty(ctx, rp); err != nil {
			return store.RemoteParty{}, err
		}
	default:
		return store.RemoteParty{}, err
	}
	for _, k := range card.Keys {
		if err := k.Keys.Validate(); err != nil {
			return store.RemoteParty{}, fault.Errorf("%w: key %s of %s: %v", ErrInvalid, k.Keys.KeyID, card.PartyID, err)
		}
		if err := agreement.VerifySealingKey(k.Keys); err != nil {
			return store.RemoteParty{}, fault.Errorf("%w: key %s of %s: %v", ErrInvalid, k.Keys.KeyID, card.PartyID, err)
		}
		have, err := tx.Keys().Get(ctx, k.Keys.KeyID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			raw, err := json.Marshal(k.Keys)
			if err != nil {
				return store.RemoteParty{}, err
			}
			if err := tx.Keys().Add(ctx, store.PartyKey{KeyID: k.Keys.KeyID, PartyID: card.PartyID, Public: raw, ValidFrom: k.ValidFrom}); err != nil {
				return store.RemoteParty{}, err
			}
			if !k.ValidUntil.IsZero() {
				if err := tx.Keys().Retire(ctx, k.Keys.KeyID, k.ValidUntil); err != nil {
					return store.RemoteParty{}, err
				}
			}
		case err != nil:
			return store.RemoteParty{}, err
		case have.PartyID != card.PartyID:
			return store.RemoteParty{}, fault.Errorf("%w: key %s belongs to another party", ErrNotPeersParty, k.Keys.KeyID)
		case have.ValidUntil.IsZero() && !k.ValidUntil.IsZero():
			// The peer retired a key it had announced: from then on it
			// verifies only signatures made before.
			if err := tx.Keys().Retire(ctx, k.Keys.KeyID, k.ValidUntil); err != nil {
				return store.RemoteParty{}, err
			}
		}
	}
	return rp, nil
}

// validPartyID reports whether id is party--<lowercase uuid>, as every
// node's parties are named.
func validPartyID(id string) bool {
	u, ok := strings.CutPrefix(id, "party--")
	if !ok || len(u) != 36 {
		return false
	}
	for i, c := range u {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f'):
			return false
		}
	}
	return true
}

// checkNode checks document party i, whose stored row is rec, against the
// node it names, and returns the name the document must give it: its
// directory name for a party of this node, its name on its own node for a
// peer's party.
func (s *Service) checkNode(ctx context.Context, x store.Handle, doc *agreement.Document, i int, rec store.Party) (string, error) {
	pt := doc.Parties[i]
	rp, err := x.Federation().RemoteParty(ctx, pt.PartyID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	remote := err == nil
	switch {
	case !remote && pt.Node == "":
		return rec.Name, nil
	case !remote && (s.node == "" || pt.Node != s.node):
		return "", fault.Errorf("%w: parties[%d] (%s) is a party of this node, whose key is not %q", ErrNoNode, i, pt.PartyID, pt.Node)
	case !remote:
		return rec.Name, nil
	case pt.Node == "":
		return "", fault.Errorf("%w: parties[%d] (%s) lives on another node; name both parties' nodes", ErrNoNode, i, pt.PartyID)
	case pt.Node != rp.NodeKey:
		return "", fault.Errorf("%w: parties[%d] (%s) lives on node %s, not %s", ErrNoNode, i, pt.PartyID, rp.NodeKey, pt.Node)
	}
	return rp.Name, nil
}

// sameNodes refuses an amendment that moves a party to another node.
func sameNodes(first, next *agreement.Document) error {
	for _, pt := range next.Parties {
		was, _, err := first.Party(pt.PartyID)
		if err != nil {
			return nil // the lifecycle names the change of parties
		}
		if was.Node != pt.Node {
			return fault.Errorf("%w: an amendment cannot move %s to another node", ErrInvalid, pt.PartyID)
		}
	}
	return nil
}

// enqueueStep writes sig (with doc, for a proposal or amendment) to the
// outbox for the node of signed's other party, in tx.
func (s *Service) enqueueStep(ctx context.Context, tx store.Handle, signed, doc *agreement.Document, sig agreement.Signature) error {
	other, err := signed.Counterpart(sig.PartyID)
	if err != nil {
		return err
	}
	rp, err := tx.Federation().RemoteParty(ctx, other.PartyID)
	if err != nil {
		return fmt.Errorf("the node of %s: %w", other.PartyID, err)
	}
	card, err := s.cardOf(ctx, tx, sig.PartyID)
	if err != nil {
		return err
	}
	rawSig, err := json.Marshal(sig)
	if err != nil {
		return err
	}
	msg := StepMessage{Signer: card, Signature: rawSig}
	if doc != nil {
		msg.Document = doc.Canonical()
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	now := s.now()
	_, err = tx.Federation().Enqueue(ctx, store.OutboxEntry{PeerKeyID: rp.NodeKeyID, AgreementID: sig.AgreementID, PartyID: sig.PartyID,
		Kind: OutboxStep, Body: body, CreatedAt: now, NextAttempt: now})
	return err
}

// StepReceipt says what became of a step a peer relayed.
type StepReceipt struct {
	Agreement   string `json:"agreement"`
	Duplicate   bool   `json:"duplicate"` // recorded already: the peer may stop sending it
	LedgerIndex int64  `json:"ledger_index,omitempty"`
	// LeafHash is the Merkle leaf hash (base64) of the entry at
	// LedgerIndex: with it the sender holds this node to having recorded
	// the step (its receipt; parley verify --peers checks it). Set for a
	// step recorded now, not for a duplicate; with it, an absent
	// ledger_index is entry 0.
	LeafHash string `json:"leaf_hash,omitempty"`
}

// ReceiveStep verifies and records a step a peer relayed for one of its
// own parties. It is idempotent: a step recorded already answers
// Duplicate. Refusals: ErrInvalid (malformed), ErrNotPeersParty,
// ErrNoSuchParty (the document's party of this node does not exist
// here), ErrNotPartyHere, ErrNoNode, and the agreement package's
// signature and lifecycle errors. The local party concerned hears of a
// refusal through RefusedStep.
func (s *Service) ReceiveStep(ctx context.Context, peer store.Peer, msg StepMessage) (StepReceipt, error) {
	sig, err := agreement.ParseSignature(msg.Signature)
	if err != nil {
		return StepReceipt{}, err
	}
	if sig.PartyID != msg.Signer.PartyID {
		return StepReceipt{}, fault.Errorf("%w: the signature is by %s, the card is of %s", ErrNotPeersParty, sig.PartyID, msg.Signer.PartyID)
	}
	var doc *agreement.Document
	if len(msg.Document) > 0 {
		if doc, err = agreement.ParseDocument(msg.Document); err != nil {
			return StepReceipt{}, err
		}
		if doc.ID != sig.AgreementID {
			return StepReceipt{}, fault.Errorf("%w: %w: the signature is for %s, the document is %s", ErrInvalid, agreement.ErrDocumentChanged, sig.AgreementID, doc.ID)
		}
	}
	switch {
	case (sig.Action == agreement.ActionPropose || sig.Action == agreement.ActionAmend) && doc == nil:
		return StepReceipt{}, fault.Errorf("%w: %s carries a document", ErrInvalid, sig.Action)
	case sig.Action != agreement.ActionPropose && sig.Action != agreement.ActionAmend && doc != nil:
		return StepReceipt{}, fault.Errorf("%w: %s carries no document", ErrInvalid, sig.Action)
	}
	out := StepReceipt{Agreement: sig.AgreementID}
	err = s.st.Update(ctx, func(tx store.Handle) error {
		// What it says of its own party first: a peer that speaks for a
		// party not on it is refused before anything else is read.
		if _, err := s.learnIn(ctx, tx, peer, msg.Signer); err != nil {
			return err
		}
		if dup, err := s.recorded(ctx, tx, sig); err != nil || dup {
			out.Duplicate = dup
			return err
		}
		if sig.Action == agreement.ActionPropose {
			if err := s.checkArrival(ctx, tx, peer, doc, sig); err != nil {
				return err
			}
			_, idx, err := s.proposeIn(ctx, tx, doc, sig, false)
			if errors.Is(err, ErrConflict) {
				return fault.Errorf("%w: agreement %s exists here with other terms", ErrConflict, sig.AgreementID)
			}
			out.LedgerIndex = idx
			return err
		}
		rec, err := tx.Agreements().Get(ctx, sig.AgreementID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && rec.PartyA != sig.PartyID && rec.PartyB != sig.PartyID) {
			return fault.Errorf("%w: %s", ErrNotPartyHere, sig.AgreementID)
		}
		if err != nil {
			return err
		}
		first, err := tx.Agreements().Versions(ctx, sig.AgreementID)
		if err != nil {
			return err
		}
		v1, err := agreement.ParseDocument(first[0].Document)
		if err != nil {
			return fault.Errorf("%w: %s: %w", ErrBrokenAgreement, sig.AgreementID, err)
		}
		if err := s.checkArrival(ctx, tx, peer, v1, sig); err != nil {
			return err
		}
		_, idx, err := s.stepIn(ctx, tx, sig.AgreementID, doc, sig, nil)
		if errors.Is(err, ErrNotFound) {
			return fault.Errorf("%w: %s", ErrNotPartyHere, sig.AgreementID)
		}
		out.LedgerIndex = idx
		return err
	})
	if err == nil && !out.Duplicate && out.LedgerIndex >= 0 {
		// Committed: the entry is the log's now, and its leaf hash the
		// sender's receipt. A read failing costs the sender only the
		// receipt, not the step.
		if es, rerr := s.st.Ledger().ReadEntries(ctx, out.LedgerIndex, out.LedgerIndex+1); rerr == nil && len(es) == 1 {
			out.LeafHash = ledger.ReceiptFor(out.LedgerIndex, es[0]).Hash.String()
		}
	}
	return out, err
}

// checkArrival checks that doc is between peer's party (the signer) and a
// party of this node.
func (s *Service) checkArrival(ctx context.Context, tx store.Handle, peer store.Peer, doc *agreement.Document, sig agreement.Signature) error {
	signer, i, err := doc.Party(sig.PartyID)
	if err != nil {
		return fault.Errorf("%w: %s", ErrNotPartyHere, sig.AgreementID)
	}
	if signer.Node != peer.Key {
		return fault.Errorf("%w: the document puts %s on node %q, not on the peer", ErrNotPeersParty, sig.PartyID, signer.Node)
	}
	mine := doc.Parties[1-i]
	if s.node == "" || mine.Node != s.node {
		return fault.Errorf("%w: the document puts %s on node %q, not on this one", ErrNoNode, mine.PartyID, mine.Node)
	}
	if _, err := s.cardOf(ctx, tx, mine.PartyID); err != nil {
		return err
	}
	return nil
}

// recorded reports whether exactly sig is recorded already.
func (s *Service) recorded(ctx context.Context, tx store.Handle, sig agreement.Signature) (bool, error) {
	raw, err := json.Marshal(sig)
	if err != nil {
		return false, err
	}
	sigs, err := tx.Agreements().Signatures(ctx, sig.AgreementID)
	if err != nil {
		return false, err
	}
	for _, sg := range sigs {
		if bytes.Equal(sg.Raw, raw) {
			return true, nil
		}
	}
	return false, nil
}

// RefusedStep tells the local party a relayed step concerned that it was
// refused, and why: on its event stream (and so its dashboard). It names
// no local party when the step concerned none (then only the log has it).
func (s *Service) RefusedStep(ctx context.Context, peer store.Peer, msg StepMessage, code string, why error) error {
	local := s.localPartyOf(ctx, msg)
	if local == "" {
		return nil
	}
	text := "refused"
	if m, ok := fault.MessageOf(why); ok {
		text = string(m)
	}
	data, err := json.Marshal(map[string]string{"peer": peer.Name, "code": code, "message": text, "from": msg.Signer.PartyID})
	if err != nil {
		return err
	}
	agreementID := ""
	if sig, err := agreement.ParseSignature(msg.Signature); err == nil {
		agreementID = sig.AgreementID
	}
	_, err = s.st.Events().Append(ctx, store.Event{PartyID: local, Kind: "node.step_refused", Subject: agreementID, Data: data, At: s.now()})
	return err
}

// localPartyOf finds the party of this node a relayed step was meant for.
func (s *Service) localPartyOf(ctx context.Context, msg StepMessage) string {
	var ids []string
	if doc, err := agreement.ParseDocument(msg.Document); err == nil {
		ids = []string{doc.Parties[0].PartyID, doc.Parties[1].PartyID}
	} else if sig, err := agreement.ParseSignature(msg.Signature); err == nil {
		if rec, err := s.st.Agreements().Get(ctx, sig.AgreementID); err == nil {
			ids = []string{rec.PartyA, rec.PartyB}
		}
	}
	for _, id := range ids {
		if _, err := s.cardOf(ctx, s.st, id); err == nil {
			return id
		}
	}
	return ""
}

// DeliveryRefused tells the local party that sent e that its peer refused
// it for good, on its event stream.
func (s *Service) DeliveryRefused(ctx context.Context, e store.OutboxEntry, peer, code, message string) error {
	data, err := json.Marshal(map[string]any{"peer": peer, "code": code, "message": message, "outbox": e.Seq})
	if err != nil {
		return err
	}
	_, err = s.st.Events().Append(ctx, store.Event{PartyID: e.PartyID, Kind: "node.delivery_refused", Subject: e.AgreementID, Data: data, At: s.now()})
	return err
}

// Outbox returns the outbox entries of an agreement the caller is a
// party to, newest first: what its node owes, or delivered to, the peer.
func (s *Service) OutboxOf(ctx context.Context, partyID, agreementID string) ([]store.OutboxEntry, error) {
	rec, err := s.st.Agreements().Get(ctx, agreementID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.PartyA != partyID && rec.PartyB != partyID) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return s.st.Federation().Outbox(ctx, agreementID, 100)
}

// OutboxHeads returns each peer's oldest pending outbox entry.
func (s *Service) OutboxHeads(ctx context.Context) ([]store.OutboxEntry, error) {
	return s.st.Federation().OutboxHeads(ctx)
}

// OutboxRetry records a failed delivery attempt.
func (s *Service) OutboxRetry(ctx context.Context, seq int64, attempts int, next time.Time, lastErr string) error {
	return s.st.Federation().OutboxRetry(ctx, seq, attempts, next, lastErr)
}

// OutboxDone closes an outbox entry as delivered or refused.
func (s *Service) OutboxDone(ctx context.Context, seq int64, state, lastErr string) error {
	return s.st.Federation().OutboxDone(ctx, seq, state, s.now(), lastErr)
}

// PeerOf reads through x whether partyID is a peer's party: its record
// and true, or false for a party of this node (or none).
func (s *Service) PeerOf(ctx context.Context, x store.Handle, partyID string) (store.RemoteParty, bool, error) {
	rp, err := x.Federation().RemoteParty(ctx, partyID)
	if errors.Is(err, store.ErrNotFound) {
		return store.RemoteParty{}, false, nil
	}
	return rp, err == nil, err
}

// SpeaksFor refuses, with ErrNotPeersParty, a peer that relays a step of
// partyID when partyID does not live on that peer (a party of this node,
// of another peer, or unknown here): a node speaks only for its own
// parties.
func (s *Service) SpeaksFor(ctx context.Context, x store.Handle, peer store.Peer, partyID string) error {
	rp, remote, err := s.PeerOf(ctx, x, partyID)
	if err != nil {
		return err
	}
	if !remote || rp.NodeKeyID != peer.KeyID {
		return fault.Errorf("%w: %s does not live on peer %q", ErrNotPeersParty, partyID, peer.Name)
	}
	return nil
}

// Relay writes body, a step party from took under agreementID, to the
// outbox for the node of party to, in tx (the step's own transaction, so
// the step and the promise to deliver it commit together). The node
// package sends it by kind.
func (s *Service) Relay(ctx context.Context, tx store.Handle, to, from, agreementID, kind string, body []byte) error {
	rp, err := tx.Federation().RemoteParty(ctx, to)
	if err != nil {
		return fmt.Errorf("the node of %s: %w", to, err)
	}
	now := s.now()
	_, err = tx.Federation().Enqueue(ctx, store.OutboxEntry{PeerKeyID: rp.NodeKeyID, AgreementID: agreementID, PartyID: from,
		Kind: kind, Body: body, CreatedAt: now, NextAttempt: now})
	return err
}

// LocalPartyOf returns the party of this node in agreement id, for telling
// it of a refused relay; "" when the agreement is not here or has none.
func (s *Service) LocalPartyOf(ctx context.Context, id string) string {
	rec, err := s.st.Agreements().Get(ctx, id)
	if err != nil {
		return ""
	}
	for _, pid := range []string{rec.PartyA, rec.PartyB} {
		if _, remote, err := s.PeerOf(ctx, s.st, pid); err == nil && !remote {
			return pid
		}
	}
	return ""
}
