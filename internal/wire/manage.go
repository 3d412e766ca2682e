package wire

import (
	"encoding/json"
	"time"
)

// Request is a request as the management API returns it.
type Request struct {
	ID             string     `json:"id"`
	Agreement      string     `json:"agreement"`
	Requester      string     `json:"requester"`
	Responder      string     `json:"responder"`
	Subject        string     `json:"subject"`
	Refs           []string   `json:"refs"`
	Reason         string     `json:"reason"`
	Urgency        string     `json:"urgency"`
	State          string     `json:"state"`
	FiledAt        time.Time  `json:"filed_at"`
	AckBy          time.Time  `json:"ack_by"`
	FulfilBy       time.Time  `json:"fulfil_by"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	AnsweredAt     *time.Time `json:"answered_at,omitempty"`
	Ground         string     `json:"ground,omitempty"`
	GroundText     string     `json:"ground_text,omitempty"`
	Handover       string     `json:"handover,omitempty"`
	// AnswerPending: Handover is named as the answer but not released
	// yet; the request is still open and its deadlines run.
	AnswerPending bool   `json:"answer_pending,omitempty"`
	AckOverdue    bool   `json:"ack_overdue"`
	AnswerOverdue bool   `json:"answer_overdue"`
	LedgerIndex   *int64 `json:"ledger_index,omitempty"`
}

// NewRequest is the body of POST /api/v1/requests.
type NewRequest struct {
	Agreement string   `json:"agreement"`
	Subject   string   `json:"subject"`
	Refs      []string `json:"refs,omitempty"`
	Reason    string   `json:"reason"`
	Urgency   string   `json:"urgency,omitempty"`
}

// Handover is a handover case as the management API returns it.
type Handover struct {
	ID                  string            `json:"id"`
	Agreement           string            `json:"agreement"`
	Proposer            string            `json:"proposer"`
	Counterpart         string            `json:"counterpart"`
	ProposerDelivers    string            `json:"proposer_delivers"`
	CounterpartDelivers string            `json:"counterpart_delivers"`
	Request             string            `json:"request,omitempty"`
	Deadline            time.Time         `json:"deadline"`
	State               string            `json:"state"`
	CreatedAt           time.Time         `json:"created_at"`
	DecidedAt           *time.Time        `json:"decided_at,omitempty"`
	ClosedAt            *time.Time        `json:"closed_at,omitempty"`
	ReleaseLedgerIndex  int64             `json:"release_ledger_index,omitempty"`
	Deposits            []HandoverDeposit `json:"deposits,omitempty"`
	// Chunks is the number of chunks a side of a gradual case (between
	// two nodes without an escrow node) is released in; 0 for a case
	// released in one step. Gradual is its progress (GET of one case).
	Chunks      int              `json:"chunks,omitempty"`
	Gradual     *GradualProgress `json:"gradual,omitempty"`
	LedgerIndex *int64           `json:"ledger_index,omitempty"`
	// Released is set on a deposit's answer when that deposit released
	// the case.
	Released bool `json:"released,omitempty"`
}

// HandoverDeposit is one side's deposit in a case, without its content.
type HandoverDeposit struct {
	Party       string    `json:"party"`
	Sealed      bool      `json:"sealed"`
	SHA256      string    `json:"sha256"`
	Objects     int       `json:"objects"`
	DepositedAt time.Time `json:"deposited_at"`
	LedgerIndex int64     `json:"ledger_index"`
	Dispute     string    `json:"dispute,omitempty"`
	// Manifest is the depositor's signed agreement.Manifest;
	// DisputeStatement the recipient's signed agreement.Dispute. Both
	// sides see both.
	Manifest         json.RawMessage `json:"manifest,omitempty"`
	DisputeStatement json.RawMessage `json:"dispute_statement,omitempty"`
}

// HandoverProposal is the body of POST /api/v1/handovers: what the caller
// delivers, what it expects, optionally the request it answers, and a
// deadline (zero: the latest the agreement allows).
type HandoverProposal struct {
	Agreement string    `json:"agreement"`
	Delivers  string    `json:"delivers"`
	Expects   string    `json:"expects"`
	Request   string    `json:"request,omitempty"`
	Deadline  time.Time `json:"deadline,omitzero"`
	// Chunks asks for gradual release (2 to 64): only between two nodes
	// under an agreement that names no escrow node.
	Chunks int `json:"chunks,omitempty"`
}

// GradualProgress is where a gradual case stands, as one node knows it.
type GradualProgress struct {
	Chunks     int            `json:"chunks"`
	Committed  []string       `json:"committed"` // the sides whose signed commitment is in
	StoppedBy  string         `json:"stopped_by,omitempty"`
	StopReason string         `json:"stop_reason,omitempty"`
	List       []GradualChunk `json:"list"`
}

// GradualChunk is one committed chunk of one side.
type GradualChunk struct {
	Depositor string `json:"depositor"`
	Index     int    `json:"index"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	// Held: its sealed bytes are on this node (the depositor's until they
	// are sent or destroyed; the recipient's once they arrived).
	Held        bool       `json:"held"`
	MovedAt     *time.Time `json:"moved_at,omitempty"` // sent (depositor's node) or arrived (recipient's)
	ConfirmedAt *time.Time `json:"confirmed_at,omitempty"`
}

// ChunkDeposit is one side's deposit in a gradual case: its signed
// agreement.ChunkCommitment and the sealed chunks (age files) it names,
// in order.
type ChunkDeposit struct {
	Commitment json.RawMessage `json:"commitment"`
	Chunks     [][]byte        `json:"chunks"`
}

// ChunkVerdict carries a recipient's signed agreement.ChunkVerdict
// (confirmation or rejection of one chunk).
type ChunkVerdict struct {
	Verdict json.RawMessage `json:"verdict"`
}

// DepositReceipt is the answer to a deposit.
type DepositReceipt struct {
	Handover Handover `json:"handover"`
	SHA256   string   `json:"sha256"`
	Objects  int      `json:"objects"`
	Released bool     `json:"released"`
}

// Match is a private-matching session as the management API returns it.
type Match struct {
	ID              string       `json:"id"`
	Agreement       string       `json:"agreement"`
	SessionID       string       `json:"session_id"` // hex, 32 bytes
	Cap             int64        `json:"cap"`
	Initiator       string       `json:"initiator"`
	Responder       string       `json:"responder"`
	Handover        string       `json:"handover"`
	State           string       `json:"state"` // one of the MatchState* values
	Deadline        time.Time    `json:"deadline"`
	CreatedAt       time.Time    `json:"created_at"`
	InitiatorRound1 *MatchRound1 `json:"initiator_round1,omitempty"`
	ResponderRound1 *MatchRound1 `json:"responder_round1,omitempty"`
	LedgerIndex     int64        `json:"ledger_index"`
}

// MatchRound1 is one side's finished round 1: what the server learned.
type MatchRound1 struct {
	Count       int64     `json:"count"`
	Bytes       int64     `json:"bytes"`
	At          time.Time `json:"at"`
	LedgerIndex int64     `json:"ledger_index"`
}

// Round1Receipt is the answer to a round-1 upload.
type Round1Receipt struct {
	Match       Match  `json:"match"`
	Count       int64  `json:"count"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"`
	LedgerIndex int64  `json:"ledger_index"`
}

// Session states as the API shows them, derived from the session and its
// handover.
const (
	MatchStateRound1   = "round1"   // waiting for one or both round-1 messages
	MatchStateRound2   = "round2"   // both round 1 in; round 2 through the handover
	MatchStateReleased = "released" // both round-2 messages released
	MatchStateExpired  = "expired"  // the deadline passed first
)
