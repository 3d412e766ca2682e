package store

import (
	"context"
	"time"
)

// Escrow-node case states (issue 14 item 4): a case arrives proposed from
// the proposer's node; the counterpart's node relays accepted or declined;
// an accepted case ends released (both deposits in) or expired (deadline
// first). Declined, released and expired are final.
const (
	HeldProposed = "proposed"
	HeldAccepted = "accepted"
	HeldDeclined = "declined"
	HeldReleased = "released"
	HeldExpired  = "expired"
)

// HeldCase is a handover this node holds as the escrow node named by an
// agreement between two other nodes. Its id is the handover's id on both
// party nodes.
type HeldCase struct {
	HandoverID      string
	AgreementID     string
	DocumentSHA256  string // "sha256:<hex>" of the agreement version's canonical bytes
	Document        []byte // that version, as both parties signed it
	Proposer        string // party id
	Counterpart     string // party id
	ProposerNode    string // node key the document places the proposer on
	CounterpartNode string
	Deadline        time.Time
	State           string
	CreatedAt       time.Time
	ClosedAt        time.Time // declined, released or expired; zero before
	ReleaseIndex    int64     // ledger index of the release; 0 before
}

// HeldDeposit is one side's sealed deposit on the escrow node.
type HeldDeposit struct {
	HandoverID  string
	PartyID     string
	Content     []byte // age ciphertext; nil from Deposits
	Size        int64  // bytes of Content
	SHA256      [32]byte
	DepositedAt time.Time
	LedgerIndex int64
}

// HeldCases stores the cases this node holds as an escrow node and their
// deposits. Steps on one case run in one Store.Update after Lock, so two
// deposits, or a deposit and the sweeper, never interleave.
type HeldCases interface {
	// Create stores a new case. ErrConflict if its id exists.
	Create(ctx context.Context, c HeldCase) error
	// Lock takes case id's lock until the transaction ends (a no-op
	// outside one). ErrNotFound if there is no such case.
	Lock(ctx context.Context, id string) error
	// Get returns the case, or ErrNotFound.
	Get(ctx context.Context, id string) (HeldCase, error)
	// Update overwrites State, ClosedAt and ReleaseIndex of case c.HandoverID.
	// ErrNotFound if it does not exist.
	Update(ctx context.Context, c HeldCase) error
	// Due returns open cases (proposed or accepted) whose deadline is at or
	// before before, oldest deadline first, at most limit.
	Due(ctx context.Context, before time.Time, limit int) ([]HeldCase, error)
	// List returns up to limit cases, newest first (by CreatedAt, then
	// id), whatever their state: the escrow node operator's view.
	List(ctx context.Context, limit int) ([]HeldCase, error)
	// PutDeposit stores a deposit. ErrConflict if this party has one in
	// the case; ErrNotFound if the case does not exist.
	PutDeposit(ctx context.Context, d HeldDeposit) error
	// Deposit returns one side's deposit with its content, or ErrNotFound.
	Deposit(ctx context.Context, handoverID, partyID string) (HeldDeposit, error)
	// DepositPart returns one side's deposit with Content only its bytes
	// from offset on, at most n of them (none from offset at or past the
	// end, or for n 0), and Size the whole content's bytes, reading no
	// more of the content than that part (Handovers.DepositPart).
	// ErrNotFound if there is no such deposit; an error for a negative
	// offset or n.
	DepositPart(ctx context.Context, handoverID, partyID string, offset, n int64) (HeldDeposit, error)
	// Deposits returns the deposits a case holds, oldest first, without
	// their content (Content nil; Size, SHA256 and the rest set): what an
	// operator may see of sealed bytes. None for a case without deposits
	// or no such case.
	Deposits(ctx context.Context, handoverID string) ([]HeldDeposit, error)
	// DeleteDeposits destroys every deposit of a case and says how many.
	DeleteDeposits(ctx context.Context, handoverID string) (int, error)
}
