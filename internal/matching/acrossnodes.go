package matching

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/psi"
	"github.com/parley-cti/parley/internal/store"
)

// Sessions across nodes (issue 14, docs/federation.md): under an agreement
// between two nodes each party talks only to its own node, and the session
// is mirrored on both party nodes under the same id and session id, which
// the starter's node draws. The starter's node sends the session to the
// other party's node (OutboxSession); that node opens it with its round-2
// handover, accepted, under the same ids. Each node sends its own party's
// round 1 (blinded, shuffled elements: what one server would show its
// operator anyway) to the other party's node (OutboxRound1), which checks
// the header against its copy of the session exactly as PutRound1 does
// before storing a byte, and serves it to its party as the other side's
// round 1. Round 2 goes through the escrow node the agreement names by
// package escrow's handovers across nodes: the starter's node sends it the
// case (escrow.HoldAtEscrowNode), the other party's node the acceptance
// (escrow.DecideAtEscrowNode), each node its party's sealed deposit; the
// escrow node releases both or, at the deadline, neither.

// Outbox kinds of matching messages, each sent to its own node endpoint.
const (
	OutboxSession = "match.session" // starter's node → other party's node
	OutboxRound1  = "match.round1"  // each party's node → the other's
)

// MaxElementsAcrossNodes caps a session between two nodes, whatever the
// agreement's match_cap: a round-1 message (32 bytes an element) travels
// in one signed node request of at most 1 MiB, base64-encoded, and the
// round-2 message (16 bytes an element), sealed, is one deposit through
// the escrow node of at most escrow.MaxDepositAcrossNodes. A round 1 over
// it is refused up-front, from its header, with code over_cap.
const MaxElementsAcrossNodes = 16384

// sealSlack bounds what sealing adds to a round-2 message (age header with
// one X25519 stanza, nonce, a tag per 64 KiB chunk).
const sealSlack = 4096

// Both messages of a session at the cap must fit their carriers; the
// build fails otherwise.
var (
	_ [escrow.MaxDepositAcrossNodes - sealSlack - (psiHeader + 32 + 16*MaxElementsAcrossNodes)]struct{}
	_ [(1<<20)*3/4 - 1024 - (psiHeader + 32 + 32*MaxElementsAcrossNodes)]struct{}
)

const psiHeader = psi.HeaderSize

// SessionMessage is a session on its way from the starter's node.
type SessionMessage struct {
	Match          string    `json:"match"`
	Agreement      string    `json:"agreement"`
	SessionID      string    `json:"session_id"` // hex
	Handover       string    `json:"handover"`
	Initiator      string    `json:"initiator"`
	Responder      string    `json:"responder"`
	Cap            int64     `json:"cap"`
	Deadline       time.Time `json:"deadline"`
	DocumentSHA256 string    `json:"document_sha256"`
}

// Round1Message is one side's round-1 message, from its node.
type Round1Message struct {
	Match   string `json:"match"`
	Party   string `json:"party"`
	SHA256  string `json:"sha256"` // hex
	Content []byte `json:"content"`
}

// Receipt says what became of a message a peer relayed.
type Receipt struct {
	Match       string `json:"match"`
	Duplicate   bool   `json:"duplicate"`
	LedgerIndex int64  `json:"ledger_index,omitempty"`
}

// overCapAcross names the limit across nodes when a round 1 is over a
// session's cap that MaxElementsAcrossNodes lowered.
func overCapAcross(err error, m store.MatchSession, a exchange.Agreement) error {
	if errors.Is(err, ErrOverCap) && a.Status.Document != nil && a.Status.Document.CrossNode() && m.Cap < a.Status.Document.MatchCap {
		return fault.Errorf("%w (across nodes a session takes at most %d elements: its round 2 goes through the escrow node in one deposit of at most %d bytes; split the list)",
			err, MaxElementsAcrossNodes, escrow.MaxDepositAcrossNodes)
	}
	return err
}

// relayStart writes a new session to the outbox for the other party's
// node, and its round-2 handover for the escrow node, in Start's
// transaction.
func (s *Service) relayStart(ctx context.Context, st *exchange.Step, m store.MatchSession, h store.Handover) error {
	doc := st.Agreement.Status.Document
	msg := SessionMessage{Match: m.ID, Agreement: m.AgreementID, SessionID: hex.EncodeToString(m.SessionID), Handover: h.ID,
		Initiator: m.Initiator.PartyID, Responder: m.Responder.PartyID, Cap: m.Cap, Deadline: h.Deadline,
		DocumentSHA256: escrow.DocumentDigest(doc)}
	if err := escrow.Relay(ctx, st, escrow.PartyNode(doc, m.Responder.PartyID), m.AgreementID, m.Initiator.PartyID, OutboxSession, msg); err != nil {
		return err
	}
	return escrow.HoldAtEscrowNode(ctx, s.ex, st, h)
}

// relayRound1 writes partyID's round 1 to the outbox for the other
// party's node, in PutRound1's transaction.
func (s *Service) relayRound1(ctx context.Context, st *exchange.Step, m store.MatchSession, partyID, sum string, content []byte) error {
	_, _, peer := roles(m, partyID)
	doc := st.Agreement.Status.Document
	return escrow.Relay(ctx, st, escrow.PartyNode(doc, peer.PartyID), m.AgreementID, partyID, OutboxRound1,
		Round1Message{Match: m.ID, Party: partyID, SHA256: sum, Content: content})
}

// validID reports whether id is prefix--<uuid>.
func validID(id, prefix string) bool {
	return len(id) == len(prefix)+2+36 && id[:len(prefix)+2] == prefix+"--"
}

// ReceiveSession opens, on the responder's node, the session the
// initiator's node relayed, under the same ids, with its round-2 handover
// accepted (the agreement's match_cap is the parties' consent, as on one
// server), and tells the escrow node that the responder accepts that
// handover. Idempotent: the same session again answers Duplicate.
// Refusals: escrow.ErrNotPartyNode (the peer is not the initiator's node),
// exchange.ErrNotPartyHere (no such agreement with this node's party as
// responder), escrow.ErrDocumentMismatch (another agreement version),
// ErrNeedsEscrowNode, ErrForbidden (not in force), ErrInvalid (ids, cap,
// deadline), ErrConflict (the ids exist here with other terms, or the
// session id is another session's here).
func (s *Service) ReceiveSession(ctx context.Context, peer store.Peer, m SessionMessage) (Receipt, error) {
	sid, err := hex.DecodeString(m.SessionID)
	switch {
	case err != nil || len(sid) != SessionIDSize:
		return Receipt{}, fault.Errorf("%w: session id %q is not %d bytes of hex", ErrInvalid, m.SessionID, SessionIDSize)
	case !validID(m.Match, "match") || !validID(m.Handover, "handover"):
		return Receipt{}, fault.Errorf("%w: ids %q and %q are not match--<uuid> and handover--<uuid>", ErrInvalid, m.Match, m.Handover)
	case m.Initiator == m.Responder:
		return Receipt{}, fault.Errorf("%w: %w", ErrForbidden, psi.ErrSelfMatch)
	}
	out := Receipt{Match: m.Match}
	err = s.st.Update(ctx, func(tx store.Handle) error {
		a, err := s.ex.LockGoverning(ctx, tx, m.Agreement)
		if err != nil {
			return err
		}
		doc, now := a.Status.Document, s.Now().UTC().Truncate(time.Microsecond)
		if err := escrow.CheckRelayer(doc, peer, m.Initiator); err != nil {
			return err
		}
		if cp, err := doc.Counterpart(m.Initiator); err != nil || cp.PartyID != m.Responder || escrow.PartyNode(doc, m.Responder) != s.ex.Node() {
			return fault.Errorf("%w: %s is not the other party of %s on this node", exchange.ErrNotPartyHere, m.Responder, m.Agreement)
		}
		if doc.EscrowNode == "" {
			return fault.Errorf("%w: agreement %s names no escrow node", ErrNeedsEscrowNode, m.Agreement)
		}
		if m.DocumentSHA256 != escrow.DocumentDigest(doc) {
			return fault.Errorf("%w: the session is under document %s, version %d here is %s", escrow.ErrDocumentMismatch, m.DocumentSHA256, doc.Version, escrow.DocumentDigest(doc))
		}
		deadline := m.Deadline.UTC().Truncate(time.Microsecond)
		if had, err := tx.Matches().Get(ctx, m.Match); err == nil {
			if had.AgreementID != m.Agreement || !bytes.Equal(had.SessionID, sid) || had.HandoverID != m.Handover ||
				had.Initiator.PartyID != m.Initiator || had.Responder.PartyID != m.Responder || had.Cap != m.Cap {
				return fault.Errorf("%w: session %s exists here with other terms", ErrConflict, m.Match)
			}
			out.Duplicate = true
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if !a.Status.InForce(now) {
			return fault.Errorf("%w: agreement %s is %s here, not in force", ErrForbidden, m.Agreement, a.Status.Phase)
		}
		// The starter's node draws the session id, and every message of a
		// session is bound to it and the two parties only: a session id
		// this node already holds, under any agreement, would let a message
		// of that earlier session pass as one of this one.
		held, err := tx.Matches().ListByParty(ctx, m.Responder, "")
		if err != nil {
			return err
		}
		for _, h := range held {
			if bytes.Equal(h.SessionID, sid) {
				return fault.Errorf("%w: session id %s is already session %s's here", ErrConflict, m.SessionID, h.ID)
			}
		}
		if m.Cap < 1 || m.Cap > min(doc.MatchCap, MaxElementsAcrossNodes) {
			return fault.Errorf("%w: cap %d is not between 1 and the agreement's match_cap across nodes (%d)", ErrInvalid, m.Cap, min(doc.MatchCap, MaxElementsAcrossNodes))
		}
		// Five minutes' leeway for the two nodes' clocks.
		if !deadline.After(now) || deadline.After(now.Add(min(doc.EscrowDeadline, SessionWindow)+5*time.Minute)) {
			return fault.Errorf("%w: the deadline %s is past or later than a session allows", ErrInvalid, deadline.Format(time.RFC3339))
		}
		if _, err := tx.Handovers().Get(ctx, m.Handover); err == nil {
			return fault.Errorf("%w: handover %s exists here", ErrConflict, m.Handover)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		h := store.Handover{ID: m.Handover, AgreementID: m.Agreement, Proposer: m.Initiator, Counterpart: m.Responder,
			ProposerDelivers:    "round-2 message of matching session " + m.Match + " (sealed)",
			CounterpartDelivers: "round-2 message of matching session " + m.Match + " (sealed)",
			Deadline:            deadline, State: store.HandoverAccepted, CreatedAt: now, DecidedAt: now}
		if err := tx.Handovers().Create(ctx, h); err != nil {
			return err
		}
		parties := []string{m.Initiator, m.Responder}
		dsum := sha256.Sum256([]byte(h.ProposerDelivers + "\x00" + h.CounterpartDelivers))
		st := &exchange.Step{Tx: tx, Agreement: a, Now: now}
		idx, err := st.Record(ctx,
			ledger.Entry{Kind: ledger.KindHandoverProposed, Actor: m.Initiator, Agreement: m.Agreement, Subject: h.ID, Time: now,
				Parties: parties, Attrs: map[string]string{"step": "accepted", "match": m.Match, "deadline": deadline.Format(time.RFC3339Nano),
					"via": peer.Name, "escrow_node": doc.EscrowNode},
				Digests: map[string]string{"terms": "sha256:" + hex.EncodeToString(dsum[:])}},
			ledger.Entry{Kind: ledger.KindMatchStarted, Actor: m.Initiator, Agreement: m.Agreement, Subject: m.Match, Time: now,
				Parties: parties, Attrs: map[string]string{"handover": h.ID, "cap": fmt.Sprint(m.Cap), "session_id": m.SessionID, "via": peer.Name}})
		if err != nil {
			return err
		}
		ms := store.MatchSession{ID: m.Match, AgreementID: m.Agreement, SessionID: sid, Cap: m.Cap,
			Initiator: store.MatchSide{PartyID: m.Initiator}, Responder: store.MatchSide{PartyID: m.Responder},
			HandoverID: h.ID, CreatedAt: now, LedgerIndex: idx + 1}
		if err := tx.Matches().Create(ctx, ms); err != nil {
			return err
		}
		out.LedgerIndex = idx + 1
		if err := escrow.DecideAtEscrowNode(ctx, s.ex, st, h, true); err != nil {
			return err
		}
		return st.Notify(ctx, m.Responder, EventStarted, m.Match, map[string]any{"agreement": m.Agreement, "from": m.Initiator,
			"handover": h.ID, "deadline": deadline, "via": peer.Name})
	})
	return out, err
}

// ReceiveRound1 stores, on one party's node, the other side's round 1 its
// node relayed, as the other side's round 1 of the session mirrored here.
// It is checked as PutRound1 checks an upload, before anything is stored:
// the session exists here and the peer is the node the agreement places
// the sender on (so a node cannot speak for this node's party, nor for a
// session it is not a side of), the header's role is the sender's, the
// binding is this session's and these two parties' (a message from
// another session is a replay), the count is within the session's cap and
// the agreement's match_cap, the length and digest match, the session is
// open and the agreement in force. The same message again answers
// Duplicate; another one for a side already in is refused.
func (s *Service) ReceiveRound1(ctx context.Context, peer store.Peer, msg Round1Message) (Receipt, error) {
	out := Receipt{Match: msg.Match}
	sum := sha256.Sum256(msg.Content)
	if msg.SHA256 != hex.EncodeToString(sum[:]) {
		return out, fault.Errorf("%w: round 1 stated as %s hashes to %x", ErrInvalid, msg.SHA256, sum)
	}
	err := s.SweepCase(ctx, func(tx store.Handle) (string, error) {
		m, err := tx.Matches().Get(ctx, msg.Match)
		if errors.Is(err, store.ErrNotFound) {
			return "", fault.Errorf("%w: %s", ErrNotFound, msg.Match)
		}
		return m.AgreementID, err
	}, func(st *exchange.Step) error {
		tx := st.Tx
		m, err := tx.Matches().Get(ctx, msg.Match)
		if err != nil {
			return err
		}
		a, err := s.ex.GoverningIn(ctx, tx, m.AgreementID)
		if err != nil {
			return err
		}
		st.Agreement = a
		doc := a.Status.Document
		if msg.Party != m.Initiator.PartyID && msg.Party != m.Responder.PartyID {
			return fault.Errorf("%w: %s is not a side of session %s", ErrNotFound, msg.Party, m.ID)
		}
		if err := escrow.CheckRelayer(doc, peer, msg.Party); err != nil {
			return err
		}
		own, role, _ := roles(m, msg.Party)
		if own.Done() {
			if own.Size == int64(len(msg.Content)) {
				h := sha256.New()
				if _, err := io.Copy(h, &chunkReader{ctx: ctx, st: tx.Matches(), id: m.ID, side: own}); err != nil {
					return err
				}
				if bytes.Equal(h.Sum(nil), sum[:]) {
					out.Duplicate, out.LedgerIndex = true, own.LedgerIndex
					return nil
				}
			}
			return fault.Errorf("%w: %s already sent round 1 of session %s", ErrConflict, msg.Party, m.ID)
		}
		hv, err := tx.Handovers().Get(ctx, m.HandoverID)
		if err != nil {
			return err
		}
		if err := s.open(View{m, hv}, a); err != nil {
			return err
		}
		limit := min(m.Cap, doc.MatchCap)
		cr, err := psi.NewCheckedReader(bytes.NewReader(msg.Content), psi.Expect{Round: 1, Role: role,
			Binding: psi.SessionBinding(m.SessionID, m.Initiator.PartyID, m.Responder.PartyID), Cap: uint64(limit)})
		if err != nil {
			return checkErr(err)
		}
		if _, err := io.Copy(io.Discard, cr); err != nil {
			return checkErr(err)
		}
		hdr := cr.Header()
		var up [16]byte
		if _, err := rand.Read(up[:]); err != nil {
			return fault.Errorf("matching: upload id: %w", err)
		}
		upload := hex.EncodeToString(up[:])
		for seq, off := 0, 0; off < len(msg.Content); seq++ {
			end := min(off+store.MatchChunkSize, len(msg.Content))
			if err := tx.Matches().PutChunk(ctx, m.ID, msg.Party, upload, seq, msg.Content[off:end]); err != nil {
				return err
			}
			off = end
		}
		roleName := "initiator"
		if role == psi.RoleResponder {
			roleName = "responder"
		}
		now := st.Now
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindMatchRound1, Actor: msg.Party, Agreement: m.AgreementID,
			Subject: m.ID, Time: now, Parties: []string{m.Initiator.PartyID, m.Responder.PartyID},
			Attrs: map[string]string{"role": roleName, "count": fmt.Sprint(hdr.Count), "bytes": fmt.Sprint(len(msg.Content)),
				"protocol": fmt.Sprint(hdr.Version), "via": peer.Name},
			Digests: map[string]string{"round1": "sha256:" + msg.SHA256}})
		if err != nil {
			return err
		}
		side := store.MatchSide{PartyID: msg.Party, Upload: upload, Count: int64(hdr.Count), Size: int64(len(msg.Content)), At: now, LedgerIndex: idx}
		if err := tx.Matches().CompleteRound1(ctx, m.ID, side); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fault.Errorf("%w: %s already sent round 1 of session %s", ErrConflict, msg.Party, m.ID)
			}
			return err
		}
		if _, err := tx.Matches().DeleteChunks(ctx, m.ID, msg.Party, upload); err != nil {
			return err
		}
		out.LedgerIndex = idx
		_, _, local := roles(m, msg.Party)
		return st.Notify(ctx, local.PartyID, EventRound1, m.ID, map[string]any{"agreement": m.AgreementID, "by": msg.Party,
			"count": side.Count, "handover": m.HandoverID, "via": peer.Name})
	})
	return out, err
}

// RefusedFromPeer tells this node's side of a session that a message a
// peer sent about it was refused, and why (node.match_refused on its
// event stream). It does nothing for a session this node does not hold.
func (s *Service) RefusedFromPeer(ctx context.Context, peer store.Peer, matchID, code string, why error) error {
	m, err := s.st.Matches().Get(ctx, matchID)
	if err != nil {
		return nil
	}
	text := "refused"
	if msg, ok := fault.MessageOf(why); ok {
		text = string(msg)
	}
	data, err := json.Marshal(map[string]string{"peer": peer.Name, "code": code, "message": text})
	if err != nil {
		return err
	}
	for _, pid := range []string{m.Initiator.PartyID, m.Responder.PartyID} {
		if _, err := s.st.Federation().RemoteParty(ctx, pid); err == nil {
			continue
		}
		if _, err := s.st.Events().Append(ctx, store.Event{PartyID: pid, Kind: EventRefused, Subject: m.ID, Data: data, At: s.Now()}); err != nil {
			return err
		}
	}
	return nil
}

// EventRefused: a message a peer node sent about a session of yours was
// refused here.
const EventRefused = "node.match_refused"
