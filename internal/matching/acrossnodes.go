package matching

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
// agreement's match_cap: 1,048,576 (2^20), above the default match_cap
// (agreement.DefaultMatchCap, 1,000,000) one server takes. Both messages
// cross in parts: a round 1 at the cap (32 MiB, 32 bytes an element) goes
// to the other party's node as 65 signed node requests of at most
// Round1PartSize, and the sealed round 2 (about 16 MiB, 16 bytes an
// element) is one deposit the escrow node takes and serves in parts
// (escrow.PartAcrossNodes), within escrow.MaxDeposit as on one server.
// What the cap bounds is the step that queues round 1: the whole message
// is written to the outbox, in parts, in the transaction that takes it,
// under the agreement's lock, and checked whole (read back from its parts
// and hashed, never held whole in memory) on the other node in the
// transaction that takes its last part. At the cap that is 32 MiB of
// outbox rows in one transaction; measured with 1,000,000 elements
// (docs/BENCHMARKS.md, "Private matching across nodes") the sender holds
// the lock about half a second and the last part's step takes about a
// quarter. A round 1 over the cap is refused up-front, from its header,
// with code over_cap, and so is a part that states a larger size.
const MaxElementsAcrossNodes = 1 << 20

// Round1PartSize is the most bytes of a round-1 message one signed node
// request carries (base64-encoded in a request of at most 1 MiB).
const Round1PartSize = escrow.PartAcrossNodes

// sealSlack bounds what sealing adds to a round-2 message at the cap (age
// header with one X25519 stanza, nonce, a tag per 64 KiB chunk).
const sealSlack = 4096 + 16*((psiHeader+32+16*MaxElementsAcrossNodes)/(64<<10)+1)

// The sealed round 2 of a session at the cap must be a deposit the
// escrow takes; the build fails otherwise.
var _ [escrow.MaxDeposit - sealSlack - (psiHeader + 32 + 16*MaxElementsAcrossNodes)]struct{}

const psiHeader = psi.HeaderSize

// Refusals of a round-1 part a peer relayed, each by name.
var (
	// ErrPartOutOfRange: the part's index is not one of the message's.
	ErrPartOutOfRange = fault.Refine(fault.Errorf("%w: no such part of the message", ErrInvalid), nil, "part_out_of_range")
	// ErrPartTooLarge: the part holds more bytes than its place in the
	// message.
	ErrPartTooLarge = fault.Refine(fault.Errorf("%w: the part is larger than its place in the message", ErrInvalid), fault.TooLarge, "part_too_large")
	// ErrPartOutOfOrder: the part came before the one ahead of it (parts
	// are taken in order, as a node's outbox sends them).
	ErrPartOutOfOrder = fault.Refine(fault.Errorf("%w: the part came before the one ahead of it", ErrConflict), nil, "part_out_of_order")
	// ErrPartMismatch: the part is not of the message the first part
	// announced, or one held already with other bytes.
	ErrPartMismatch = fault.Refine(fault.Errorf("%w: the part does not match the message its first part announced", ErrConflict), nil, "part_mismatch")
)

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

// Round1Message is one part of one side's round-1 message, from its
// node. A message crosses in parts of Round1PartSize bytes, in order
// (the last one shorter); SHA256 and Size are the whole message's, the
// same in every part.
type Round1Message struct {
	Match  string `json:"match"`
	Party  string `json:"party"`
	SHA256 string `json:"sha256"` // hex, of the whole message
	// Size is the whole message's length; 0 means Content is the whole
	// message (one part, as nodes before parts sent it).
	Size    int64  `json:"size,omitempty"`
	Part    int    `json:"part,omitempty"` // 0, 1, ...
	Content []byte `json:"content"`        // this part's bytes
}

// checkPart checks that msg is a part of a round-1 message of size bytes
// a session across nodes may take, at its place, and returns how many
// parts the message has.
func checkPart(msg Round1Message, size int64) (int, error) {
	switch {
	case size > Round1Size(MaxElementsAcrossNodes):
		return 0, fault.Errorf("%w: a round 1 of %d bytes is more than %d elements, the most a session across nodes takes", ErrOverCap, size, MaxElementsAcrossNodes)
	case msg.Size == 0 && size > store.MatchChunkSize:
		return 0, fault.Errorf("%w: a round 1 in one part is at most %d bytes", ErrPartTooLarge, store.MatchChunkSize)
	case size < Round1Size(0):
		return 0, fault.Errorf("%w: %d bytes is not the size of a round-1 message", ErrInvalid, size)
	}
	parts, want := partLen(size, msg.Part)
	if msg.Size == 0 {
		// A node before parts sends the whole message in one request (up
		// to 16,384 elements, a little over one part).
		parts, want = 1, size
		if msg.Part != 0 {
			want = -1
		}
	}
	switch {
	case want < 0:
		return 0, fault.Errorf("%w: part %d of a message of %d bytes, which has parts 0 to %d", ErrPartOutOfRange, msg.Part, size, parts-1)
	case int64(len(msg.Content)) > want:
		return 0, fault.Errorf("%w: part %d is %d bytes, its place in the message holds %d", ErrPartTooLarge, msg.Part, len(msg.Content), want)
	case int64(len(msg.Content)) < want:
		return 0, fault.Errorf("%w: part %d is %d bytes, its place in the message holds %d", ErrInvalid, msg.Part, len(msg.Content), want)
	}
	return parts, nil
}

// partLen returns how many parts a message of size bytes crosses in and
// how long part must be; -1 when part is none of them.
func partLen(size int64, part int) (parts int, n int64) {
	parts = int((size + Round1PartSize - 1) / Round1PartSize)
	if part < 0 || part >= parts {
		return parts, -1
	}
	return parts, min(Round1PartSize, size-int64(part)*Round1PartSize)
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
		return fault.Errorf("%w (across nodes a session takes at most %d elements: each round-1 message is queued for the other node whole, in the transaction that takes it; split the list)",
			err, MaxElementsAcrossNodes)
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

// relayRound1 writes side's round 1 (whose SHA-256 is sum, hex) to the
// outbox for the other party's node in parts of Round1PartSize, in
// PutRound1's transaction, reading it back from its stored chunks so that
// no more than a part is in memory.
func (s *Service) relayRound1(ctx context.Context, st *exchange.Step, m store.MatchSession, side store.MatchSide, sum string) error {
	_, _, peer := roles(m, side.PartyID)
	node := escrow.PartyNode(st.Agreement.Status.Document, peer.PartyID)
	r := &chunkReader{ctx: ctx, st: st.Tx.Matches(), id: m.ID, side: side}
	buf := make([]byte, Round1PartSize)
	for part := 0; ; part++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			msg := Round1Message{Match: m.ID, Party: side.PartyID, SHA256: sum, Size: side.Size, Part: part, Content: buf[:n]}
			if err := escrow.Relay(ctx, st, node, m.AgreementID, side.PartyID, OutboxRound1, msg); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case err != nil:
			return err
		}
	}
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

// ReceiveRound1 takes, on one party's node, one part of the other side's
// round 1 its node relayed, and once the last part is in, stores the
// whole as the other side's round 1 of the session mirrored here. Parts
// are staged under the message's SHA-256 (its upload id here) and taken
// in order, each checked as it arrives, before it is stored: the session
// exists here and the peer is the node the agreement places the sender on
// (so a node cannot speak for this node's party, nor for a session it is
// not a side of); the session is open and the agreement in force; the
// size the part states is within the session's cap and the agreement's
// match_cap (over_cap) and the part's index and length fit it
// (part_out_of_range, part_too_large); part 0's header has the sender's
// role, this session's and these two parties' binding (a message from
// another session is a replay) and the count the size says; a later part
// follows the one before it (part_out_of_order), under the SHA-256 and
// size part 0 announced, and any part held already has the same bytes
// (part_mismatch). The last part is taken only if the whole message
// passes the checks an upload passes (header, length, digest, SHA-256);
// otherwise the parts staged are dropped. The same part again answers
// Duplicate, before and after completion; another message for a side
// already in is refused. No refusal changes the session.
func (s *Service) ReceiveRound1(ctx context.Context, peer store.Peer, msg Round1Message) (Receipt, error) {
	out := Receipt{Match: msg.Match}
	size := msg.Size
	if size == 0 {
		size = int64(len(msg.Content)) // the whole message in one part
	}
	sum, err := hex.DecodeString(msg.SHA256)
	if err != nil || len(sum) != sha256.Size {
		return out, fault.Errorf("%w: sha256 %q is not 64 hex digits", ErrInvalid, msg.SHA256)
	}
	staged := hex.EncodeToString(sum) // a relayed round 1's upload id here
	var drop bool                     // the whole message failed its checks: drop its staged parts
	var sessionID string
	err = s.SweepCase(ctx, func(tx store.Handle) (string, error) {
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
		sessionID = m.ID
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
			if own.Upload == staged && own.Size == size {
				if b, err := tx.Matches().Chunk(ctx, m.ID, msg.Party, staged, msg.Part); err == nil && bytes.Equal(b, msg.Content) {
					out.Duplicate, out.LedgerIndex = true, own.LedgerIndex
					return nil
				}
			}
			return fault.Errorf("%w: %s already sent round 1 of session %s", ErrConflict, msg.Party, m.ID)
		}
		parts, err := checkPart(msg, size)
		if err != nil {
			return err
		}
		hv, err := tx.Handovers().Get(ctx, m.HandoverID)
		if err != nil {
			return err
		}
		if err := s.open(View{m, hv}, a); err != nil {
			return err
		}
		limit := min(m.Cap, doc.MatchCap)
		if size > Round1Size(limit) {
			return fault.Errorf("%w: a round 1 of %d bytes is more than the session's %d elements", ErrOverCap, size, limit)
		}
		expect := psi.Expect{Round: 1, Role: role, Binding: psi.SessionBinding(m.SessionID, m.Initiator.PartyID, m.Responder.PartyID), Cap: uint64(limit)}
		// What part 0 announced: one message staged at a time.
		ups, err := tx.Matches().Uploads(ctx, m.ID, msg.Party)
		if err != nil {
			return err
		}
		for _, u := range ups {
			if u != staged {
				return fault.Errorf("%w: part %d is of a round 1 with SHA-256 %s; the first part here announced %s", ErrPartMismatch, msg.Part, msg.SHA256, u)
			}
		}
		first := msg.Content
		if msg.Part > 0 {
			if first, err = tx.Matches().Chunk(ctx, m.ID, msg.Party, staged, 0); errors.Is(err, store.ErrNotFound) {
				return fault.Errorf("%w: part %d of a round 1 whose part 0 has not come", ErrPartOutOfOrder, msg.Part)
			} else if err != nil {
				return err
			}
			if _, err := tx.Matches().Chunk(ctx, m.ID, msg.Party, staged, msg.Part-1); errors.Is(err, store.ErrNotFound) {
				return fault.Errorf("%w: part %d before part %d", ErrPartOutOfOrder, msg.Part, msg.Part-1)
			} else if err != nil {
				return err
			}
		}
		cr, err := psi.NewCheckedReader(bytes.NewReader(first), expect)
		if err != nil {
			return checkErr(err)
		}
		if n := Round1Size(int64(cr.Header().Count)); n != size {
			if msg.Part > 0 {
				return fault.Errorf("%w: part %d states %d bytes, part 0 announced %d", ErrPartMismatch, msg.Part, size, n)
			}
			return fault.Errorf("%w: the header announces %d elements (%d bytes), the part states %d", ErrInvalid, cr.Header().Count, n, size)
		}
		if had, err := tx.Matches().Chunk(ctx, m.ID, msg.Party, staged, msg.Part); err == nil {
			if !bytes.Equal(had, msg.Content) {
				return fault.Errorf("%w: part %d again, with other bytes", ErrPartMismatch, msg.Part)
			}
			out.Duplicate = true
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.Matches().PutChunk(ctx, m.ID, msg.Party, staged, msg.Part, msg.Content); err != nil {
			return err
		}
		if msg.Part < parts-1 {
			return nil // staged; the rest follows
		}
		// The last part: the whole message, checked as an upload is.
		side := store.MatchSide{PartyID: msg.Party, Upload: staged, Size: size}
		h := sha256.New()
		cr, err = psi.NewCheckedReader(io.TeeReader(&chunkReader{ctx: ctx, st: tx.Matches(), id: m.ID, side: side}, h), expect)
		if err == nil {
			_, err = io.Copy(io.Discard, cr)
		}
		if err != nil {
			drop = true
			return checkErr(err)
		}
		if !bytes.Equal(h.Sum(nil), sum) {
			drop = true
			return fault.Errorf("%w: round 1 stated as %s hashes to %x", ErrInvalid, msg.SHA256, h.Sum(nil))
		}
		hdr := cr.Header()
		roleName := "initiator"
		if role == psi.RoleResponder {
			roleName = "responder"
		}
		now := st.Now
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindMatchRound1, Actor: msg.Party, Agreement: m.AgreementID,
			Subject: m.ID, Time: now, Parties: []string{m.Initiator.PartyID, m.Responder.PartyID},
			Attrs: map[string]string{"role": roleName, "count": fmt.Sprint(hdr.Count), "bytes": fmt.Sprint(size),
				"protocol": fmt.Sprint(hdr.Version), "via": peer.Name},
			Digests: map[string]string{"round1": "sha256:" + msg.SHA256}})
		if err != nil {
			return err
		}
		side.Count, side.At, side.LedgerIndex = int64(hdr.Count), now, idx
		if err := tx.Matches().CompleteRound1(ctx, m.ID, side); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fault.Errorf("%w: %s already sent round 1 of session %s", ErrConflict, msg.Party, m.ID)
			}
			return err
		}
		if _, err := tx.Matches().DeleteChunks(ctx, m.ID, msg.Party, staged); err != nil {
			return err
		}
		out.LedgerIndex = idx
		_, _, local := roles(m, msg.Party)
		return st.Notify(ctx, local.PartyID, EventRound1, m.ID, map[string]any{"agreement": m.AgreementID, "by": msg.Party,
			"count": side.Count, "handover": m.HandoverID, "via": peer.Name})
	})
	if drop {
		// Clean up with a fresh context: the request's may be cancelled.
		if _, derr := s.st.Matches().DeleteUpload(context.WithoutCancel(ctx), sessionID, msg.Party, staged); derr != nil {
			s.Log.WarnContext(ctx, "matching: leftover parts of a refused round 1", slog.String("match", sessionID), slog.Any("err", derr))
		}
	}
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
