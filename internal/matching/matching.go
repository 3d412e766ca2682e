// Package matching owns the server side of private matching: sessions
// under an agreement in force in which the two parties' command-line
// clients run the ECDH private set intersection of package match with the
// server as relay.
//
// # Session
//
// One party starts a session; the server draws a fresh 32-byte session id
// that both sides bind every protocol message to, and in the same
// transaction opens the handover that will escrow round 2 (already
// accepted: the agreement's match_cap is the parties' consent to matching).
// Each side uploads its round-1 message (blinded, shuffled group elements);
// the server checks its header against the session (magic, version, round,
// the uploader's role, the session binding recomputed here, the element
// count against the cap) before storing a byte, checks length and digest as
// it streams the message into 1 MiB chunks, and records the element count
// and the message digest in the ledger. The other side then streams it
// back. Round 2 goes through package escrow: each side deposits its round-2
// message sealed to the other, and the escrow releases both at once or, at
// the deadline, neither; so no side can learn the result and withhold its
// own part.
//
// # What this package must never do
//
// It never sees an item, a normalized item or a hash of one: it stores and
// relays blinded elements only, and learns the two set sizes. It never holds
// a whole round-1 message in memory, never lets a party upload the other
// side's round (the role in the header must be the uploader's), never serves
// a message to anyone but the other side of its session, and never imports
// the HTTP layer or touches SQL.
package matching

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/psi"
	"github.com/parley-cti/parley/internal/store"
)

// Sentinel errors. Each failure wraps one of them with a message that names
// what was wrong; message checks also wrap the match sentinel at fault
// (psi.ErrWrongSession for a replayed message, psi.ErrOverCap, ...).
var (
	// ErrNotFound: no such session, or one the caller is not a side of;
	// the two look the same on purpose.
	ErrNotFound = fault.New(fault.NotFound, "no such matching session")
	// ErrInvalid: the upload is not an acceptable round-1 message.
	ErrInvalid = fault.New(fault.Invalid, "invalid")
	// ErrOverCap: the message declares more elements than the agreement's
	// match_cap allows. A client sees it as TooLarge, code "over_cap".
	ErrOverCap = fault.Refine(fault.Errorf("%w: more elements than the agreement's match_cap", ErrInvalid), fault.TooLarge, "over_cap")
	// ErrForbidden: the agreement is not in force, or the caller would
	// match against itself.
	ErrForbidden = fault.New(fault.Forbidden, "not permitted")
	// ErrConflict: the session's state does not allow the step now
	// (round 1 sent twice, after the deadline).
	ErrConflict = fault.New(fault.Conflict, "not possible now")
	// ErrNotReady: the other side has not sent its round 1 yet (or the
	// caller has not sent its own, which comes first).
	ErrNotReady = fault.Refine(fault.Errorf("%w: not ready", ErrConflict), nil, "not_ready")
	// ErrNeedsEscrowNode: matching under an agreement between two nodes
	// needs the escrow node the agreement names, which holds round 2 so
	// that neither side can learn the result and withhold its own part.
	ErrNeedsEscrowNode = fault.Refine(fault.Errorf("%w: matching across nodes needs an escrow node", ErrConflict), nil, "needs_escrow_node")
)

// Event kinds on a party's stream.
const (
	EventStarted = "match.started" // the other side started a session with you
	EventRound1  = "match.round1"  // the other side's round 1 is in
)

// SessionIDSize is the size of a fresh session id.
const SessionIDSize = 32

// SessionWindow is the longest a session waits to be completed, the other
// side's round 1 included: its handover's deadline is the start plus this
// or the agreement's escrow deadline, whichever is sooner. Past it the
// escrow sweep expires the handover, so a session the other side never
// joins ends on the server instead of staying in round 1 for good.
const SessionWindow = 24 * time.Hour

// Service runs matching sessions on a store. Its steps run through the
// agreement workflow (exchange.Workflow), whose Log and SetClock it
// carries. It is stateless apart from them, so several servers on one
// database may serve the same session.
type Service struct {
	*exchange.Workflow
	st store.Store
	ex *exchange.Service
}

// New returns a Service over st; ex reads agreements and their state.
func New(st store.Store, ex *exchange.Service) *Service {
	w := exchange.NewWorkflow(st, ex, ErrNotFound)
	w.AcrossNodes = true // round 1 relayed to the peer node, round 2 through the escrow node (acrossnodes.go)
	return &Service{Workflow: w, st: st, ex: ex}
}

// Started is a new session with the ledger index recording it.
type Started struct {
	Session     store.MatchSession
	Handover    store.Handover
	LedgerIndex int64
}

// Start opens a session under an agreement in force, with p as initiator
// and the other party as responder, and the handover escrowing round 2.
func (s *Service) Start(ctx context.Context, p party.Principal, agreementID string) (Started, error) {
	var out Started
	err := s.InAgreement(ctx, p, agreementID, func(st *exchange.Step) error {
		a, now, tx := st.Agreement, st.Now, st.Tx
		peer := a.Counterpart(p.PartyID)
		switch {
		case !a.Status.InForce(now):
			return fault.Errorf("%w: agreement %s is %s, not in force", ErrForbidden, agreementID, a.Status.Phase)
		case peer == p.PartyID || peer == "":
			return fault.Errorf("%w: %w", ErrForbidden, psi.ErrSelfMatch)
		}
		doc := a.Status.Document
		cross := doc.CrossNode()
		if cross && doc.EscrowNode == "" {
			return fault.Errorf("%w: agreement %s is between two nodes and names no escrow node (amend it with escrow_node; docs/federation.md)", ErrNeedsEscrowNode, agreementID)
		}
		limit := doc.MatchCap
		if cross {
			limit = min(limit, MaxElementsAcrossNodes)
		}
		sid := make([]byte, SessionIDSize)
		if _, err := rand.Read(sid); err != nil {
			return fault.Errorf("matching: session id: %w", err)
		}
		id := party.NewID("match")
		h := store.Handover{ID: party.NewID("handover"), AgreementID: agreementID, Proposer: p.PartyID, Counterpart: peer,
			ProposerDelivers:    "round-2 message of matching session " + id + " (sealed)",
			CounterpartDelivers: "round-2 message of matching session " + id + " (sealed)",
			Deadline:            now.Add(min(a.Status.Document.EscrowDeadline, SessionWindow)), State: store.HandoverAccepted, CreatedAt: now, DecidedAt: now}
		if err := tx.Handovers().Create(ctx, h); err != nil {
			return err
		}
		parties := []string{p.PartyID, peer}
		dsum := sha256.Sum256([]byte(h.ProposerDelivers + "\x00" + h.CounterpartDelivers))
		idx, err := st.Record(ctx,
			ledger.Entry{Kind: ledger.KindHandoverProposed, Actor: p.PartyID, Agreement: agreementID, Subject: h.ID, Time: now,
				Parties: parties, Attrs: map[string]string{"step": "accepted", "match": id, "deadline": h.Deadline.Format(time.RFC3339Nano)},
				Digests: map[string]string{"terms": "sha256:" + hex.EncodeToString(dsum[:])}},
			ledger.Entry{Kind: ledger.KindMatchStarted, Actor: p.PartyID, Agreement: agreementID, Subject: id, Time: now,
				Parties: parties, Attrs: map[string]string{"handover": h.ID, "cap": fmt.Sprint(limit),
					"session_id": hex.EncodeToString(sid)}})
		if err != nil {
			return err
		}
		m := store.MatchSession{ID: id, AgreementID: agreementID, SessionID: sid, Cap: limit,
			Initiator: store.MatchSide{PartyID: p.PartyID}, Responder: store.MatchSide{PartyID: peer},
			HandoverID: h.ID, CreatedAt: now, LedgerIndex: idx + 1}
		if err := tx.Matches().Create(ctx, m); err != nil {
			return err
		}
		out = Started{Session: m, Handover: h, LedgerIndex: idx + 1}
		if cross {
			// The other side's node mirrors the session; the escrow node
			// holds the round-2 handover (acrossnodes.go).
			return s.relayStart(ctx, st, m, h)
		}
		return st.Notify(ctx, peer, EventStarted, id, map[string]any{"agreement": agreementID, "from": p.PartyID,
			"handover": h.ID, "deadline": h.Deadline})
	})
	return out, err
}

// View is a session as one of its sides sees it, with its handover.
type View struct {
	Session  store.MatchSession
	Handover store.Handover
}

// Get returns a session the caller is a side of.
func (s *Service) Get(ctx context.Context, p party.Principal, id string) (View, error) {
	m, err := s.st.Matches().Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.Initiator.PartyID != p.PartyID && m.Responder.PartyID != p.PartyID) {
		return View{}, fault.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return View{}, err
	}
	h, err := s.st.Handovers().Get(ctx, m.HandoverID)
	if err != nil {
		return View{}, err
	}
	return View{m, h}, nil
}

// List returns the caller's sessions, newest first (agreement optional).
func (s *Service) List(ctx context.Context, p party.Principal, agreementID string) ([]View, error) {
	ms, err := s.st.Matches().ListByParty(ctx, p.PartyID, agreementID)
	if err != nil {
		return nil, err
	}
	out := make([]View, 0, len(ms))
	for _, m := range ms {
		h, err := s.st.Handovers().Get(ctx, m.HandoverID)
		if err != nil {
			return nil, err
		}
		out = append(out, View{m, h})
	}
	return out, nil
}

// roles returns the caller's side and role, and the peer's side.
func roles(m store.MatchSession, partyID string) (own store.MatchSide, role psi.Role, peer store.MatchSide) {
	if partyID == m.Initiator.PartyID {
		return m.Initiator, psi.RoleInitiator, m.Responder
	}
	return m.Responder, psi.RoleResponder, m.Initiator
}

// open checks that round 1 may be sent now, under agreement a: the
// session's handover is open and a in force.
func (s *Service) open(v View, a exchange.Agreement) error {
	now := s.Now()
	switch {
	case v.Handover.State != store.HandoverAccepted:
		return fault.Errorf("%w: session %s is over: its handover %s is %s", ErrConflict, v.Session.ID, v.Handover.ID, v.Handover.State)
	case !now.Before(v.Handover.Deadline):
		return fault.Errorf("%w: session %s passed its deadline %s", ErrConflict, v.Session.ID, v.Handover.Deadline.Format(time.RFC3339))
	}
	if !a.Status.InForce(now) {
		return fault.Errorf("%w: agreement %s is %s, not in force", ErrForbidden, v.Session.AgreementID, a.Status.Phase)
	}
	return nil
}

// checkErr turns a refusal of package match into this package's sentinels,
// keeping both in the chain.
func checkErr(err error) error {
	switch {
	case errors.Is(err, psi.ErrOverCap):
		return fault.Errorf("%w: %w", ErrOverCap, err)
	case errors.Is(err, psi.ErrWrongSession), errors.Is(err, psi.ErrWrongRound), errors.Is(err, psi.ErrMalformedMessage),
		errors.Is(err, psi.ErrTruncated):
		return fault.Errorf("%w: round 1 message: %w", ErrInvalid, err)
	}
	return err
}

// Round1Size is the largest round-1 message a session with this cap
// admits, in bytes.
func Round1Size(cap int64) int64 { return psi.MessageSize(1, uint64(max(cap, 0))) }

// Round1Result reports a stored round-1 message.
type Round1Result struct {
	Session     store.MatchSession
	Count       int64
	Size        int64
	SHA256      string
	LedgerIndex int64
}

// PutRound1 stores the caller's round-1 message from body, chunk by chunk.
// The header is checked before anything is stored: round 1, the caller's
// own role (so no party can send the other side's round), the binding of
// this session and these two parties (so a message from another session is
// refused as a replay), and at most the agreement's match_cap elements. The
// length and digest are checked as the body streams in; only a whole
// message is kept. Errors wrap ErrNotFound, ErrConflict, ErrForbidden,
// ErrOverCap or ErrInvalid.
func (s *Service) PutRound1(ctx context.Context, p party.Principal, id string, body io.Reader) (Round1Result, error) {
	v, err := s.Get(ctx, p, id)
	if err != nil {
		return Round1Result{}, err
	}
	m := v.Session
	own, role, _ := roles(m, p.PartyID)
	if own.Done() {
		return Round1Result{}, fault.Errorf("%w: you already sent round 1 of session %s", ErrConflict, id)
	}
	// Checked before a byte is stored, and again under the lock once the
	// message is in; one read of the agreement serves both checks here.
	a, err := s.ex.Agreement(ctx, p, m.AgreementID)
	if err != nil {
		return Round1Result{}, err
	}
	if err := s.open(v, a); err != nil {
		return Round1Result{}, err
	}
	limit := m.Cap
	if a.Status.Document.MatchCap < limit {
		limit = a.Status.Document.MatchCap // amended down since the session began
	}
	h := sha256.New()
	// Across nodes the message also goes to the other side's node, in
	// parts (acrossnodes.go); the session's cap bounds it.
	cross := a.Status.Document != nil && a.Status.Document.CrossNode()
	cr, err := psi.NewCheckedReader(io.TeeReader(body, h), psi.Expect{Round: 1, Role: role,
		Binding: psi.SessionBinding(m.SessionID, m.Initiator.PartyID, m.Responder.PartyID), Cap: uint64(limit)})
	if err != nil {
		return Round1Result{}, overCapAcross(checkErr(err), m, a)
	}
	hdr := cr.Header()
	var up [16]byte
	if _, err := rand.Read(up[:]); err != nil {
		return Round1Result{}, fault.Errorf("matching: upload id: %w", err)
	}
	upload := hex.EncodeToString(up[:])
	size, err := storeChunks(ctx, s.st.Matches(), m.ID, p.PartyID, upload, cr)
	if err != nil {
		// Clean up with a fresh context: the request's may be cancelled.
		if _, derr := s.st.Matches().DeleteUpload(context.WithoutCancel(ctx), m.ID, p.PartyID, upload); derr != nil {
			s.Log.WarnContext(ctx, "matching: leftover chunks of a failed upload", slog.String("match", m.ID), slog.Any("err", derr))
		}
		return Round1Result{}, checkErr(err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	var out Round1Result
	err = s.InAgreement(ctx, p, m.AgreementID, func(st *exchange.Step) error {
		tx, now := st.Tx, st.Now
		cur, err := tx.Matches().Get(ctx, m.ID)
		if err != nil {
			return err
		}
		hv, err := tx.Handovers().Get(ctx, cur.HandoverID)
		if err != nil {
			return err
		}
		if err := s.open(View{cur, hv}, st.Agreement); err != nil {
			return err
		}
		roleName := "initiator"
		if role == psi.RoleResponder {
			roleName = "responder"
		}
		idx, err := st.Record(ctx, ledger.Entry{Kind: ledger.KindMatchRound1, Actor: p.PartyID, Agreement: m.AgreementID,
			Subject: m.ID, Time: now, Parties: []string{m.Initiator.PartyID, m.Responder.PartyID},
			Attrs: map[string]string{"role": roleName, "count": fmt.Sprint(hdr.Count), "bytes": fmt.Sprint(size),
				"protocol": fmt.Sprint(hdr.Version)},
			Digests: map[string]string{"round1": "sha256:" + sum}})
		if err != nil {
			return err
		}
		side := store.MatchSide{PartyID: p.PartyID, Upload: upload, Count: int64(hdr.Count), Size: size, At: now, LedgerIndex: idx}
		if err := tx.Matches().CompleteRound1(ctx, m.ID, side); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fault.Errorf("%w: you already sent round 1 of session %s", ErrConflict, id)
			}
			return err
		}
		if _, err := tx.Matches().DeleteChunks(ctx, m.ID, p.PartyID, upload); err != nil {
			return err
		}
		if role == psi.RoleInitiator {
			cur.Initiator = side
		} else {
			cur.Responder = side
		}
		out = Round1Result{Session: cur, Count: side.Count, Size: size, SHA256: sum, LedgerIndex: idx}
		_, _, peer := roles(cur, p.PartyID)
		if cross {
			return s.relayRound1(ctx, st, cur, side, sum)
		}
		return st.Notify(ctx, peer.PartyID, EventRound1, m.ID, map[string]any{"agreement": m.AgreementID, "by": p.PartyID,
			"count": side.Count, "handover": m.HandoverID})
	})
	if err != nil {
		if _, derr := s.st.Matches().DeleteUpload(context.WithoutCancel(ctx), m.ID, p.PartyID, upload); derr != nil {
			s.Log.WarnContext(ctx, "matching: leftover chunks of a refused upload", slog.String("match", m.ID), slog.Any("err", derr))
		}
		return Round1Result{}, err
	}
	return out, nil
}

// storeChunks copies r into chunks of at most store.MatchChunkSize and
// returns the bytes stored. Only one chunk is in memory at a time.
func storeChunks(ctx context.Context, ms store.Matches, id, partyID, upload string, r io.Reader) (int64, error) {
	buf := make([]byte, store.MatchChunkSize)
	var total int64
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if err := ms.PutChunk(ctx, id, partyID, upload, seq, buf[:n]); err != nil {
				return total, err
			}
			total += int64(n)
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return total, nil
		case err != nil:
			return total, err
		}
	}
}

// PeerRound1 is the other side's round-1 message, streamed from its chunks.
type PeerRound1 struct {
	io.Reader
	Size  int64
	Count int64
}

// OpenPeerRound1 returns the other side's round-1 message. The caller must
// have sent its own first: a side sees the other's blinded set only once it
// is committed to its own. Errors wrap ErrNotFound or ErrNotReady.
func (s *Service) OpenPeerRound1(ctx context.Context, p party.Principal, id string) (PeerRound1, error) {
	v, err := s.Get(ctx, p, id)
	if err != nil {
		return PeerRound1{}, err
	}
	own, _, peer := roles(v.Session, p.PartyID)
	switch {
	case !peer.Done() && v.Handover.State != store.HandoverAccepted:
		return PeerRound1{}, fault.Errorf("%w: session %s is over (its handover %s is %s); the other side never sent round 1", ErrConflict, id, v.Handover.ID, v.Handover.State)
	case !own.Done():
		return PeerRound1{}, fault.Errorf("%w: send your own round 1 of session %s first", ErrNotReady, id)
	case !peer.Done():
		return PeerRound1{}, fault.Errorf("%w: %s has not sent round 1 of session %s yet", ErrNotReady, peer.PartyID, id)
	}
	return PeerRound1{Reader: &chunkReader{ctx: ctx, st: s.st.Matches(), id: id, side: peer}, Size: peer.Size, Count: peer.Count}, nil
}

// chunkReader reads a stored upload one chunk at a time.
type chunkReader struct {
	ctx  context.Context
	st   store.Matches
	id   string
	side store.MatchSide
	seq  int
	cur  []byte
	read int64
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.read >= c.side.Size {
			return 0, io.EOF
		}
		b, err := c.st.Chunk(c.ctx, c.id, c.side.PartyID, c.side.Upload, c.seq)
		if err != nil {
			return 0, fault.Errorf("matching: chunk %d of %s's round 1: %w", c.seq, c.side.PartyID, err)
		}
		c.seq++
		c.cur = b
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	c.read += int64(n)
	return n, nil
}
