package store

import (
	"context"
	"time"
)

// Peer is another parley node this node's operator has pinned: its name
// here, the URL it answers on and the Ed25519 key it signs node-to-node
// messages with (a C2SP signed-note verifier key, as package node writes
// it). KeyID is derived from the key by package node; the store keeps it
// so that a signed request finds its peer with one lookup.
type Peer struct {
	Name    string
	URL     string
	Key     string
	KeyID   string
	AddedAt time.Time
}

// Nodes stores what makes this parley a node among others: the public URL
// it last announced and the peers its operator pinned. Package node owns
// the rules (key and URL formats); the store only keeps them.
type Nodes interface {
	// SetPublicURL records the URL this node answers on, replacing the one
	// recorded before.
	SetPublicURL(ctx context.Context, url string, at time.Time) error
	// PublicURL returns the recorded URL, or ErrNotFound if none was.
	PublicURL(ctx context.Context) (string, error)
	// AddPeer stores p. ErrConflict if a peer with its name or its key id
	// is pinned already (one key, one peer).
	AddPeer(ctx context.Context, p Peer) error
	// Peer returns the peer named name, or ErrNotFound.
	Peer(ctx context.Context, name string) (Peer, error)
	// PeerByKeyID returns the peer whose key has id keyID, or ErrNotFound.
	PeerByKeyID(ctx context.Context, keyID string) (Peer, error)
	// Peers returns every pinned peer ordered by name.
	Peers(ctx context.Context) ([]Peer, error)
	// RemovePeer unpins the peer named name; ErrNotFound if there is none.
	RemovePeer(ctx context.Context, name string) error
}

// RemoteParty is a party of a peer node that a party of this node has an
// agreement with (issue 14, item 2). It also has a row in parties (named
// NAME@PEER there, so it never takes a local party's name) so that its
// keys and agreements hang off it like a local party's; it has no tokens.
// NodeKeyID is the id of the peer's node key (package node), the only
// peer that may speak for it; Name is its name on its own node, as
// documents name it.
type RemoteParty struct {
	PartyID   string
	NodeKey   string
	NodeKeyID string
	Name      string
	LearnedAt time.Time
}

// Outbox states.
const (
	OutboxPending   = "pending"   // to be sent
	OutboxDelivered = "delivered" // the peer accepted it
	OutboxRefused   = "refused"   // the peer refused it for good (a signed, coded answer)
)

// OutboxEntry is one message this node owes a peer: written in the
// transaction of the change it reports, sent (and retried) until the peer
// answers, in Seq order per peer.
type OutboxEntry struct {
	Seq         int64 // assigned by Enqueue
	PeerKeyID   string
	AgreementID string
	PartyID     string // the local party the message is about (told when it is refused)
	Kind        string
	Body        []byte
	CreatedAt   time.Time
	State       string
	Attempts    int
	NextAttempt time.Time
	LastError   string
	DoneAt      time.Time
}

// Federation stores what this node knows of other nodes' parties and what
// it owes them.
type Federation interface {
	// AddRemoteParty records p. ErrConflict if its party id is recorded.
	AddRemoteParty(ctx context.Context, p RemoteParty) error
	// RemoteParty returns the remote party with id partyID, or ErrNotFound
	// (also for a local party).
	RemoteParty(ctx context.Context, partyID string) (RemoteParty, error)
	// Enqueue stores e as pending and returns its Seq.
	Enqueue(ctx context.Context, e OutboxEntry) (int64, error)
	// OutboxHeads returns, for each peer, its oldest pending entry.
	OutboxHeads(ctx context.Context) ([]OutboxEntry, error)
	// OutboxRetry records a failed attempt: attempts, when to try next and
	// why it failed. ErrNotFound if seq is not pending.
	OutboxRetry(ctx context.Context, seq int64, attempts int, next time.Time, lastErr string) error
	// OutboxDone closes a pending entry as delivered or refused.
	// ErrNotFound if seq is not pending (another instance closed it).
	OutboxDone(ctx context.Context, seq int64, state string, at time.Time, lastErr string) error
	// Outbox returns up to limit entries for agreementID (every agreement
	// when empty), newest first.
	Outbox(ctx context.Context, agreementID string, limit int) ([]OutboxEntry, error)
	// OutboxRefused returns the entries under agreementID that the peer
	// with node key id peerKeyID refused for good, oldest first.
	OutboxRefused(ctx context.Context, agreementID, peerKeyID string) ([]OutboxEntry, error)
	// FeedCursor returns where this node's pull of a peer's party's
	// contributions under agreementID stands, or ErrNotFound before the
	// first pull (issue 14, item 3).
	FeedCursor(ctx context.Context, agreementID, partyID string) (FeedCursor, error)
	// SetFeedCursor records c, replacing the one before.
	SetFeedCursor(ctx context.Context, c FeedCursor) error
	// FeedCursors returns every feed cursor, by agreement and party.
	FeedCursors(ctx context.Context) ([]FeedCursor, error)
}

// FeedCursor is where this node's pull of a peer's party's contributions
// under one agreement stands: After is the last ordinal (the peer's
// publish order) it ingested; the rest says how the last attempts went.
type FeedCursor struct {
	AgreementID string
	PartyID     string // the peer's party whose contributions are pulled
	After       int64
	Pulled      int64 // objects ingested so far
	Refused     int64 // objects refused so far (invalid, out of scope)
	Attempts    int   // failed attempts in a row
	NextAttempt time.Time
	LastError   string
	UpdatedAt   time.Time
	// LastSuccess is when the peer last answered with a page this node
	// took (new objects or none); PeerReleased how many contributions the
	// peer said then it releases (its claim, shown, never relied on).
	LastSuccess  time.Time
	PeerReleased int64
	// VersionsAfter is where the pull of later versions of contributions
	// already pulled stands: the peer's position token ("" before any).
	VersionsAfter string
}
