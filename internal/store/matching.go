package store

import (
	"context"
	"time"
)

// MatchSide is one party's part of a matching session: its finished
// round-1 upload, once there is one.
type MatchSide struct {
	PartyID string
	// Upload is the id of the upload attempt that completed round 1; ""
	// before. Chunks of other attempts are leftovers of failed uploads.
	Upload string
	Count  int64 // elements in the round-1 message
	Size   int64 // bytes of the round-1 message
	At     time.Time
	// LedgerIndex is the index of the match.round1 entry recording it.
	LedgerIndex int64
}

// Done reports whether this side's round 1 is complete.
func (s MatchSide) Done() bool { return s.Upload != "" }

// MatchSession is one private matching session under an agreement. It
// holds no item of either party: only the session id both sides bind their
// messages to, the two set sizes and the handover that escrows round 2.
type MatchSession struct {
	ID          string // "match--<uuid>"
	AgreementID string
	SessionID   []byte // 32 random bytes, bound into every protocol message
	Cap         int64  // the agreement's match_cap when the session began
	Initiator   MatchSide
	Responder   MatchSide
	HandoverID  string // the handover escrowing both round-2 messages
	CreatedAt   time.Time
	LedgerIndex int64 // index of its match.started entry
}

// Side returns the side of partyID and whether it is one.
func (m MatchSession) Side(partyID string) (MatchSide, bool) {
	switch partyID {
	case m.Initiator.PartyID:
		return m.Initiator, true
	case m.Responder.PartyID:
		return m.Responder, true
	}
	return MatchSide{}, false
}

// MatchChunkSize is the largest chunk a backend must accept: messages are
// stored in pieces of at most this size so that no layer holds a whole
// 32 MB round-1 message at once.
const MatchChunkSize = 1 << 20

// Matches stores matching sessions and their round-1 messages in chunks.
//
// Chunks are written outside any transaction, one statement each, under
// an upload id the caller draws at random; CompleteRound1, inside
// Store.Update under the agreement's lock, then names the one upload that
// counts. So a failed or concurrent upload never mixes into the message a
// peer reads.
type Matches interface {
	// Create stores a new session. ErrConflict if the id exists;
	// ErrNotFound if the agreement, a party or the handover does not exist.
	Create(ctx context.Context, m MatchSession) error
	// Get returns the session, or ErrNotFound.
	Get(ctx context.Context, id string) (MatchSession, error)
	// ListByParty returns the sessions a party is in (either side), newest
	// first; agreementID, when not empty, restricts them to one agreement.
	ListByParty(ctx context.Context, partyID, agreementID string) ([]MatchSession, error)
	// PutChunk stores chunk seq (0, 1, ...) of partyID's upload attempt
	// upload. ErrConflict if that chunk exists; ErrNotFound if the session
	// does not exist.
	PutChunk(ctx context.Context, id, partyID, upload string, seq int, data []byte) error
	// Chunk returns chunk seq of an upload, or ErrNotFound.
	Chunk(ctx context.Context, id, partyID, upload string, seq int) ([]byte, error)
	// Uploads returns the ids of partyID's upload attempts that have
	// chunks, in order; none for no such session.
	Uploads(ctx context.Context, id, partyID string) ([]string, error)
	// CompleteRound1 records side (its PartyID, Upload, Count, Size, At,
	// LedgerIndex) as that party's finished round 1. ErrConflict if the
	// party's round 1 is already complete; ErrNotFound if the session does
	// not exist or partyID is not one of its sides.
	CompleteRound1(ctx context.Context, id string, side MatchSide) error
	// DeleteChunks removes partyID's chunks of every upload except keep
	// ("": all of them) and reports how many it removed.
	DeleteChunks(ctx context.Context, id, partyID, keep string) (int, error)
	// DeleteUpload removes the chunks of one upload attempt (a failed one)
	// and reports how many it removed.
	DeleteUpload(ctx context.Context, id, partyID, upload string) (int, error)
}
