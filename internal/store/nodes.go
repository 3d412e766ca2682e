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
