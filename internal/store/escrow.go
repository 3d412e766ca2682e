package store

import (
	"context"
	"fmt"
	"time"
)

// Handover states. A case starts proposed; the counterpart accepts or
// declines it; an accepted case ends released (both deposits in before the
// deadline) or expired (deadline passed first). A proposed case whose
// deadline passes expires too. Released, declined and expired are final.
const (
	HandoverProposed = "proposed"
	HandoverAccepted = "accepted"
	HandoverDeclined = "declined"
	HandoverReleased = "released"
	HandoverExpired  = "expired"
	// HandoverStopped: a gradual handover (Gradual) that a side stopped
	// by rejecting a chunk; what was exchanged before stays. Final.
	HandoverStopped = "stopped"
)

// Gradual marks a handover between two nodes without an escrow node as
// released gradually (docs/federation.md): each side's bundle in Chunks
// sealed chunks, released alternately, each only after the recipient
// confirmed the chunk before.
type Gradual struct {
	HandoverID string
	Chunks     int
	// ProposerCommitment and CounterpartCommitment are each side's signed
	// agreement.ChunkCommitment (JSON); nil until it is recorded here.
	ProposerCommitment    []byte
	CounterpartCommitment []byte
	// StoppedBy is the party whose rejection stopped the exchange (""
	// while it runs), with its reason and when.
	StoppedBy  string
	StopReason string
	StoppedAt  time.Time
}

// Chunk is one chunk of one side's deposit in a gradual handover, as this
// node knows it: committed (SHA256, Size) from the depositor's commitment
// on; its content held from the deposit (on the depositor's node) or its
// arrival (on the recipient's).
type Chunk struct {
	HandoverID string
	Depositor  string
	Index      int // 1..Gradual.Chunks
	SHA256     [32]byte
	Size       int64
	// Content is the age ciphertext; nil when not held here (not arrived,
	// or destroyed), and always nil from Chunks (see Held).
	Content []byte
	Held    bool // Content is held here (set by Chunk and Chunks)
	// MovedAt is when the depositor's node queued the chunk for the
	// recipient's node (on the depositor's node) or when it arrived (on
	// the recipient's); zero before.
	MovedAt time.Time
	// ConfirmedAt is when the recipient confirmed it, with its signed
	// agreement.ChunkVerdict; zero and nil before.
	ConfirmedAt  time.Time
	Confirmation []byte
	LedgerIndex  int64 // of the entry recording its move
}

// Handover is one escrowed swap under an agreement.
type Handover struct {
	ID                  string // "handover--<uuid>"
	AgreementID         string
	Proposer            string // party id
	Counterpart         string // party id
	ProposerDelivers    string // what the proposer is to deposit
	CounterpartDelivers string // what the counterpart is to deposit
	RequestID           string // the request this case answers; "" if none
	Deadline            time.Time
	State               string
	CreatedAt           time.Time
	DecidedAt           time.Time // accepted or declined; zero before
	ClosedAt            time.Time // released or expired; zero before
	NearNotified        bool      // the "deadline near" event was sent
	ReleaseLedgerIndex  int64     // index of the handover.released entry; 0 before
}

// Deposit is one side's bundle in a handover. Content is the STIX bundle
// (plain) or the age ciphertext (sealed); SHA256 is over Content.
type Deposit struct {
	HandoverID  string
	PartyID     string
	Sealed      bool
	Content     []byte
	Size        int64 // bytes of the whole Content; set by Deposit and DepositPart
	SHA256      [32]byte
	Objects     int // plain: objects in the bundle; sealed: 0 (unknown to the server)
	DepositedAt time.Time
	LedgerIndex int64 // index of its handover.deposit_committed entry
	// Dispute is the recipient's complaint about this deposit after
	// release ("" when none), and when it was filed.
	Dispute    string
	DisputedAt time.Time
	// Manifest is the depositor's signed manifest of the deposit (JSON,
	// opaque here; nil when none was given). DisputeStatement is the
	// disputer's signed dispute (JSON; nil when the dispute was unsigned).
	Manifest         []byte
	DisputeStatement []byte
}

// Handovers stores handover cases and their deposits.
//
// Release and expiry must be atomic with the deposit that causes them:
// domain code calls these methods inside one Store.Update, after taking the
// agreement's lock (Agreements.Lock), so that two deposits on one case,
// or a deposit and the sweeper, never interleave. Backends need no further
// locking of their own beyond what each method states.
type Handovers interface {
	// Create stores a new case. ErrConflict if the id exists; ErrNotFound
	// if the agreement or a party does not exist.
	Create(ctx context.Context, h Handover) error
	// Get returns the case, or ErrNotFound.
	Get(ctx context.Context, id string) (Handover, error)
	// Update overwrites the mutable fields of the case with id h.ID
	// (State, DecidedAt, ClosedAt, NearNotified, ReleaseLedgerIndex).
	// ErrNotFound if it does not exist.
	Update(ctx context.Context, h Handover) error
	// ListByParty returns the cases a party is in (either side), newest
	// first; agreementID, when not empty, restricts them to one agreement.
	ListByParty(ctx context.Context, partyID, agreementID string) ([]Handover, error)
	// Due returns open cases (proposed or accepted) whose deadline is at or
	// before expireBefore, or at or before nearBefore without NearNotified,
	// oldest deadline first, at most limit of them.
	Due(ctx context.Context, expireBefore, nearBefore time.Time, limit int) ([]Handover, error)

	// PutDeposit stores a deposit. ErrConflict if this party already has a
	// deposit in the case; ErrNotFound if the case does not exist.
	PutDeposit(ctx context.Context, d Deposit) error
	// Deposit returns one side's deposit with its content, or ErrNotFound.
	Deposit(ctx context.Context, handoverID, partyID string) (Deposit, error)
	// DepositPart returns one side's deposit with Content only its bytes
	// from offset on, at most n of them (none from offset at or past the
	// end, or for n 0), and Size the whole content's bytes, reading no
	// more of the content than that part: a node serving a large deposit
	// part by part, or asking only its hash, does not hold the whole
	// each time. ErrNotFound if there is no such deposit; an error for a
	// negative offset or n.
	DepositPart(ctx context.Context, handoverID, partyID string, offset, n int64) (Deposit, error)
	// Deposits returns the deposits of a case without their Content
	// (metadata only), ordered by DepositedAt.
	Deposits(ctx context.Context, handoverID string) ([]Deposit, error)
	// DeleteDeposit destroys one side's deposit and reports whether there
	// was one.
	DeleteDeposit(ctx context.Context, handoverID, partyID string) (bool, error)
	// SetDispute records the recipient's dispute of partyID's deposit,
	// with its signed statement (nil if unsigned). ErrNotFound if there is
	// no such deposit; ErrConflict if it is already disputed (the first
	// dispute stands).
	SetDispute(ctx context.Context, handoverID, partyID, text string, statement []byte, at time.Time) error

	// CreateGradual marks case g.HandoverID as gradual. ErrConflict if it
	// is already; ErrNotFound if there is no such case.
	CreateGradual(ctx context.Context, g Gradual) error
	// Gradual returns the gradual record of a case, or ErrNotFound (no
	// such case, or one released in one step).
	Gradual(ctx context.Context, handoverID string) (Gradual, error)
	// UpdateGradual overwrites the commitments and the stop of
	// g.HandoverID. ErrNotFound if it is not gradual.
	UpdateGradual(ctx context.Context, g Gradual) error
	// PutChunk stores a committed chunk (Content may be nil).
	// ErrConflict if it exists; ErrNotFound if the case is not gradual.
	PutChunk(ctx context.Context, c Chunk) error
	// Chunk returns one chunk with its content, or ErrNotFound.
	Chunk(ctx context.Context, handoverID, depositor string, index int) (Chunk, error)
	// Chunks returns a case's chunks without their content (Held says
	// whether it is here), by depositor then index. None for no such case.
	Chunks(ctx context.Context, handoverID string) ([]Chunk, error)
	// UpdateChunk overwrites Content (nil destroys it), MovedAt,
	// ConfirmedAt, Confirmation and LedgerIndex of one chunk. ErrNotFound
	// if it does not exist.
	UpdateChunk(ctx context.Context, c Chunk) error
}

// Request states. A request is filed, then acknowledged, then answered:
// fulfilled (through a handover) or refused with a coded ground. It may be
// refused or fulfilled without an acknowledgement first. Under an
// agreement between two nodes, a filing the responder's node refused for
// good closes it undelivered on the requester's node, the peer's code as
// its ground (docs/federation.md).
const (
	RequestFiled        = "filed"
	RequestAcknowledged = "acknowledged"
	RequestFulfilled    = "fulfilled"
	RequestRefused      = "refused"
	RequestUndelivered  = "undelivered"
)

// RequestOpen reports whether a request in state may still be answered:
// filed or acknowledged. Every other state is final.
func RequestOpen(state string) bool {
	return state == RequestFiled || state == RequestAcknowledged
}

// Request is one party's request to the other for intelligence.
type Request struct {
	ID             string // "request--<uuid>"
	AgreementID    string
	Requester      string
	Responder      string
	Subject        string
	Refs           []string // STIX ids or identifiers (aliases, addresses, hashes)
	Reason         string
	Urgency        string
	State          string
	FiledAt        time.Time
	AckBy          time.Time // acknowledgement deadline
	FulfilBy       time.Time // answer deadline
	AcknowledgedAt time.Time
	AnsweredAt     time.Time // fulfilled or refused (never set when undelivered)
	Ground         string    // refusal ground code; undelivered: the peer node's refusal code
	GroundText     string    // free text (required with ground "other"); undelivered: the peer's message
	HandoverID     string    // the handover that fulfils it
	AckOverdue     bool      // flagged: not acknowledged by AckBy
	AnswerOverdue  bool      // flagged: not answered by FulfilBy
	NearNotified   bool      // the "deadline near" event was sent
}

// Requests stores requests. Like Handovers, state changes are made inside
// Store.Update under the agreement's lock.
type Requests interface {
	// Create stores a new request. ErrConflict if the id exists;
	// ErrNotFound if the agreement or a party does not exist.
	Create(ctx context.Context, r Request) error
	// Get returns the request, or ErrNotFound.
	Get(ctx context.Context, id string) (Request, error)
	// Update overwrites the mutable fields of request r.ID (State,
	// AcknowledgedAt, AnsweredAt, Ground, GroundText, HandoverID,
	// AckOverdue, AnswerOverdue, NearNotified). ErrNotFound if absent.
	Update(ctx context.Context, r Request) error
	// ListByParty returns the requests a party made or received, newest
	// first; agreementID, when not empty, restricts them to one agreement.
	ListByParty(ctx context.Context, partyID, agreementID string) ([]Request, error)
	// ListByAgreement returns every request under an agreement, oldest first.
	ListByAgreement(ctx context.Context, agreementID string) ([]Request, error)
	// Due returns unanswered requests (filed or acknowledged) that have a
	// deadline at or before before which is not yet flagged: still filed
	// with AckBy passed and not AckOverdue, FulfilBy passed and not
	// AnswerOverdue, or either deadline at or before near and not
	// NearNotified. Oldest first, at most limit.
	Due(ctx context.Context, before, near time.Time, limit int) ([]Request, error)
}

// Event is one notification to a party, in its own sequence.
type Event struct {
	PartyID string
	Seq     int64 // 1, 2, ... per party; assigned by Append
	Kind    string
	Subject string // the handover or request id
	Data    []byte // JSON object
	At      time.Time
}

// Events keeps each party's event stream.
type Events interface {
	// Append adds e to e.PartyID's stream and returns its sequence number:
	// one more than the party's previous event. Appends for one party are
	// serialized by the backend (a per-party counter row), so two
	// transactions never hand out the same number and a rolled-back
	// transaction hands out none. ErrNotFound if the party does not exist.
	Append(ctx context.Context, e Event) (int64, error)
	// After returns the party's events with Seq > after, ascending, at most
	// limit of them. An empty result is not an error.
	After(ctx context.Context, partyID string, after int64, limit int) ([]Event, error)
	// Before returns the party's events with Seq < before (every event
	// when before <= 0), newest first, at most limit of them: pages of a
	// history read backwards. An empty result is not an error.
	Before(ctx context.Context, partyID string, before int64, limit int) ([]Event, error)
}

// CheckPart refuses a negative offset or length of a deposit part
// (Handovers.DepositPart, HeldCases.DepositPart): SQL would read one
// counted from the end.
func CheckPart(offset, n int64) error {
	if offset < 0 || n < 0 {
		return fmt.Errorf("store: deposit part of %d bytes at %d", n, offset)
	}
	return nil
}
