package store

import (
	"context"
	"time"
)

// PeerLog is this node's view of a pinned peer's ledger (issue 14 item 5,
// package crosswitness): the keys the peer announced, signed by its node
// key, and the last checkpoint of its log this node cosigned. The view
// follows the peer's node key id, not the name it is pinned under, so
// unpinning and pinning the same node again keeps what it has shown.
type PeerLog struct {
	KeyID      string // the peer's node key id (Peer.KeyID)
	Peer       string // the name it was pinned under when last updated
	LogKey     string // its ledger's verifier key (C2SP signed-note vkey)
	WitnessKey string // its tlog-cosignature/v1 key; "" until learned
	Size       int64  // size of Checkpoint; 0 before the first cosignature
	Checkpoint []byte // the signed note last cosigned; nil before the first
	UpdatedAt  time.Time
}

// PeerIncident is one misbehaviour of a peer this node caught: who (its
// name and node key), what (Kind: forged, fork, rollback, inconsistent,
// key_changed, receipt, cosignature), and the evidence — the checkpoint
// this node held (Ours) and the one the peer showed (Theirs), as signed
// notes, either of which may be empty. Digest identifies the incident, so
// the same lie caught twice is recorded once.
type PeerIncident struct {
	KeyID  string
	Peer   string
	Kind   string
	Detail string
	Ours   []byte
	Theirs []byte
	Digest string
	At     time.Time
}

// PeerReceipt is an entry a peer's log said it contained: its index and
// leaf hash (base64), as the peer's node handed them to this node.
type PeerReceipt struct {
	KeyID    string
	Index    int64
	LeafHash string
	AddedAt  time.Time
}

// PeerLogs stores what this node knows of its peers' ledgers. Package
// crosswitness owns the rules; the store only keeps them.
type PeerLogs interface {
	// PeerLog returns the view of the peer with node key id keyID, or
	// ErrNotFound.
	PeerLog(ctx context.Context, keyID string) (PeerLog, error)
	// PeerLogs returns every view, ordered by key id.
	PeerLogs(ctx context.Context) ([]PeerLog, error)
	// CreatePeerLog stores a first view; ErrConflict if one exists for
	// l.KeyID.
	CreatePeerLog(ctx context.Context, l PeerLog) error
	// UpdatePeerLog replaces the view of l.KeyID only if its stored size
	// is still prevSize (ErrConflict otherwise: another submission moved
	// it first); ErrNotFound if there is none.
	UpdatePeerLog(ctx context.Context, l PeerLog, prevSize int64) error
	// AddPeerIncident records i; ErrConflict if an incident with its
	// (KeyID, Digest) is recorded already.
	AddPeerIncident(ctx context.Context, i PeerIncident) error
	// PeerIncidents returns up to limit incidents, newest first.
	PeerIncidents(ctx context.Context, limit int) ([]PeerIncident, error)
	// AddPeerReceipt records r. Recording the same receipt again is a
	// no-op; another hash at a recorded (KeyID, Index) is ErrConflict.
	AddPeerReceipt(ctx context.Context, r PeerReceipt) error
	// PeerReceipts returns the receipts of the peer with node key id
	// keyID, by index.
	PeerReceipts(ctx context.Context, keyID string) ([]PeerReceipt, error)
}
