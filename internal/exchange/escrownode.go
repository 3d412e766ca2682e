package exchange

import (
	"context"
	"errors"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/store"
)

// checkEscrowNode refuses a document naming an escrow node (issue 14 item
// 4, docs/federation.md) that this node's operator has not pinned: this
// node would hold its party to handovers through a node it cannot reach
// nor authenticate. It runs for a party's own proposal or amendment and for
// one a peer delivers, so each side's node checks the other's choice.
func (s *Service) checkEscrowNode(ctx context.Context, x store.Handle, doc *agreement.Document) error {
	if doc.EscrowNode == "" {
		return nil
	}
	if doc.EscrowNode == s.node {
		return fault.Errorf("%w: escrow_node is this node, the node of a party", ErrNoNode)
	}
	peers, err := x.Nodes().Peers(ctx)
	if err != nil {
		return err
	}
	for _, p := range peers {
		if p.Key == doc.EscrowNode {
			return nil
		}
	}
	return fault.Errorf("%w: escrow_node %s is not a peer this node's operator pinned (parley peer add)", ErrNoNode, doc.EscrowNode)
}

// CardIn returns the card of a party of this node, read through x (a
// step's transaction): what a peer is told of it. ErrNoSuchParty for none
// and for a peer's party.
func (s *Service) CardIn(ctx context.Context, x store.Handle, ref string) (PartyCard, error) {
	return s.cardOf(ctx, x, ref)
}

// lockRelayed locks agreement id in tx (LockGoverning) for a statement
// partyID signed that peer relayed, and returns it with the other party:
// the agreement must be between two nodes, place partyID on peer
// (ErrNotPeersParty) and the other party on this node; anything else is
// ErrNotPartyHere. Contests and report signatures arrive this way.
func (s *Service) lockRelayed(ctx context.Context, tx store.Handle, peer store.Peer, id, partyID string) (Agreement, agreement.Party, error) {
	notHere := fault.Errorf("%w: %s", ErrNotPartyHere, id)
	a, err := s.LockGoverning(ctx, tx, id)
	if err != nil {
		return Agreement{}, agreement.Party{}, err
	}
	doc := a.Status.Document
	if !doc.CrossNode() {
		return Agreement{}, agreement.Party{}, notHere
	}
	signer, _, err := doc.Party(partyID)
	if err != nil {
		return Agreement{}, agreement.Party{}, notHere
	}
	if signer.Node != peer.Key {
		return Agreement{}, agreement.Party{}, fault.Errorf("%w: the agreement places %s on node %s, not on peer %q", ErrNotPeersParty, partyID, signer.Node, peer.Name)
	}
	other, err := doc.Counterpart(partyID)
	if err != nil || other.Node != s.node {
		return Agreement{}, agreement.Party{}, notHere
	}
	return a, other, nil
}

// LockGoverning locks agreement id in tx and returns it as GoverningIn
// does, for a step a peer node relayed: an agreement this node does not
// hold, or holds without a governing version, is ErrNotPartyHere.
func (s *Service) LockGoverning(ctx context.Context, tx store.Handle, id string) (Agreement, error) {
	if err := tx.Agreements().Lock(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Agreement{}, fault.Errorf("%w: %s", ErrNotPartyHere, id)
		}
		return Agreement{}, err
	}
	a, err := s.GoverningIn(ctx, tx, id)
	if errors.Is(err, ErrNotFound) {
		return Agreement{}, fault.Errorf("%w: %s", ErrNotPartyHere, id)
	}
	return a, err
}

// GoverningIn returns, read through x and without a party's view, the
// agreement's governing document and its signatures: what a handover
// between two nodes is checked against when a peer relays a step of it.
// ErrNotFound if there is no such agreement; ErrBrokenAgreement if its
// history no longer verifies.
func (s *Service) GoverningIn(ctx context.Context, x store.Handle, id string) (Agreement, error) {
	a, err := s.loadAgreement(ctx, x, id, s.now())
	if err != nil {
		return Agreement{}, err
	}
	if a.Status.Document == nil {
		return Agreement{}, fault.Errorf("%w: agreement %s has no governing version", ErrNotFound, id)
	}
	return a, nil
}

// KeysIn returns, read through x, a resolver of the keys stored for
// partyIDs: a party of this node's own, or a peer's party's as its node
// announced them. What a signed statement of one of them (a gradual
// handover's commitment or chunk verdict) is verified with.
func (s *Service) KeysIn(ctx context.Context, x store.Handle, partyIDs ...string) (agreement.KeyResolver, error) {
	return loadKeys(ctx, x, partyIDs...)
}
