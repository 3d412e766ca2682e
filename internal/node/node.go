// Package node makes a parley server one node among others (issue 14,
// sovereign nodes): it owns the node's identity (an Ed25519 key and a
// public URL), the peers the operator pins, and the authentication of every
// node-to-node message against those pins.
//
// # Identity
//
// Each node has its own Ed25519 node key, created on first start and kept
// in the database's settings (node.skey), so every instance on one
// PostgreSQL signs as the same node. It is not the ledger's checkpoint
// key: that key signs only checkpoints, and a key that also signed HTTP
// messages whose bytes a peer partly chooses would sign for two protocols
// at once. Both keys are written the same way, as C2SP signed-note
// verifier keys (NAME+HASH+BASE64, algorithm byte 0x01 for Ed25519), so an
// operator pins a node key exactly as a witness key. A key's id (KeyID) is
// the unpadded base64url SHA-256 of its 32 public key bytes: what a
// signature names in its keyid parameter.
//
// # Messages
//
// Node-to-node requests and their responses carry HTTP Message Signatures
// (RFC 9421) with Ed25519 over the method, the target URI and the body's
// Content-Digest (RFC 9530), with created, expires, nonce, keyid, alg and
// tag parameters. The receiver accepts a request only from a pinned key,
// within its validity (at most MaxValidity, with ClockSkew of tolerance),
// with a nonce it has not seen from that key, and with a body matching its
// digest; its response is signed over the status, its own digest and the
// request's signature, so the requester knows which peer answered which
// request. See httpsig.go.
//
// # What it must never do
//
// Accept or send a party's bearer token: a party's token never leaves its
// own node, and /node/ refuses any request that carries an Authorization
// header. Nor does it decide anything about intelligence: it says which
// pinned peer is speaking, and the domain packages decide the rest.
package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/store"
)

// Sentinel errors for what the operator gets wrong when pinning.
var (
	// ErrInvalid: a name, URL or key that is not well formed.
	ErrInvalid = fault.Generic(fault.Invalid, "node: invalid")
	// ErrBadKey: not a C2SP signed-note Ed25519 verifier key.
	ErrBadKey = fmt.Errorf("%w key", ErrInvalid)
	// ErrBadURL: not an absolute http(s) URL of a host without path.
	ErrBadURL = fmt.Errorf("%w URL", ErrInvalid)
	// ErrBadName: not a peer name (see ValidName).
	ErrBadName = fmt.Errorf("%w peer name", ErrInvalid)
	// ErrPeerExists: the name, or the key, is pinned already. It is also
	// a store.ErrConflict.
	ErrPeerExists error = &kindError{"peer already pinned", store.ErrConflict}
	// ErrNoSuchPeer: no peer by that name. It is also a store.ErrNotFound.
	ErrNoSuchPeer error = &kindError{"no such peer", store.ErrNotFound}
	// ErrNoPublicURL: the node has not recorded a public URL yet.
	ErrNoPublicURL = errors.New("node: no public URL recorded")
)

// kindError is a sentinel that is also a more general one, without
// spelling the general one's text into every message.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// KeySetting names the setting holding the node's private key (a note
// signer key); written once, by whichever instance starts first.
const KeySetting = "node.skey"

// PublicKey is a node's verifier key, parsed.
type PublicKey struct {
	VKey string // as pinned and printed: NAME+HASH+BASE64
	ID   string // KeyID of the key
	pub  ed25519.PublicKey
}

// KeyID is the id a signature names its key by: the unpadded base64url
// SHA-256 of the Ed25519 public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ParseKey reads a node's verifier key; ErrBadKey says why not.
func ParseKey(vkey string) (PublicKey, error) {
	if _, err := note.NewVerifier(vkey); err != nil {
		return PublicKey{}, fmt.Errorf("%w %q: want NAME+HASH+BASE64 as `parley node id` prints it (%v)", ErrBadKey, vkey, err)
	}
	// NAME+HASH+BASE64: the name holds no '+', the base64 may.
	parts := strings.SplitN(vkey, "+", 3)
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		return PublicKey{}, fmt.Errorf("%w %q: not an Ed25519 key", ErrBadKey, vkey)
	}
	pub := ed25519.PublicKey(raw[1:])
	return PublicKey{VKey: vkey, ID: KeyID(pub), pub: pub}, nil
}

// Identity is this node's key pair.
type Identity struct {
	Public PublicKey
	priv   ed25519.PrivateKey
}

// NewIdentity reads a note signer key (as GenerateKey writes it).
func NewIdentity(skey string) (*Identity, error) {
	ns, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("node signing key: %w", ErrBadKey)
	}
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if len(parts) != 5 || err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, fmt.Errorf("node signing key is not Ed25519: %w", ErrBadKey)
	}
	priv := ed25519.NewKeyFromSeed(raw[1:])
	vkey, err := note.NewEd25519VerifierKey(ns.Name(), priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("node verifier key: %w", ErrBadKey)
	}
	pk, err := ParseKey(vkey)
	if err != nil {
		return nil, err
	}
	return &Identity{Public: pk, priv: priv}, nil
}

// GenerateKey returns a new node signer key, named parley-node-<random>.
func GenerateKey() (string, error) {
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	skey, _, err := note.GenerateKey(rand.Reader, "parley-node-"+hex.EncodeToString(id))
	return skey, err
}

// LoadIdentity returns the node's identity, creating its key on first use;
// every instance on the database gets the same one.
func LoadIdentity(ctx context.Context, st store.Handle) (*Identity, error) {
	skey, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	v, err := st.Settings().PutIfAbsent(ctx, KeySetting, []byte(skey))
	if err != nil {
		return nil, fmt.Errorf("loading the node key: %w", err)
	}
	return NewIdentity(string(v))
}

// NormalizeURL checks that s is a node's URL (http or https, a host, no
// credentials, path, query or fragment) and returns it as scheme://host.
// A node's URL is the base of every target URI its peers sign, so it must
// say exactly one thing.
func NormalizeURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadURL, s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("%w %q: want http:// or https://", ErrBadURL, s)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%w %q: no host", ErrBadURL, s)
	case u.User != nil:
		return "", fmt.Errorf("%w %q: a node URL carries no credentials", ErrBadURL, s)
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("%w %q: a node URL is scheme://host[:port], without path, query or fragment", ErrBadURL, s)
	}
	return scheme + "://" + strings.ToLower(u.Host), nil
}

// ValidName reports whether name can name a peer: 1 to 64 letters, digits,
// '.', '_' or '-', starting with a letter or digit (it appears in command
// lines, logs and later in PARTY@PEER).
func ValidName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !ok && (i == 0 || r != '.' && r != '_' && r != '-') {
			return false
		}
	}
	return true
}

// Peers pins and unpins peers over a store.
type Peers struct {
	st  store.Store
	now func() time.Time
}

// NewPeers returns the peer registry on st.
func NewPeers(st store.Store) *Peers { return &Peers{st: st, now: time.Now} }

// Add pins a peer: its name here, its URL and its verifier key. It fails
// with ErrBadName, ErrBadURL or ErrBadKey on malformed input, with
// ErrPeerExists if the name or the key is pinned already, and with
// ErrInvalid if the key is self's (a node is not its own peer; self may be
// nil when unknown).
func (p *Peers) Add(ctx context.Context, self *Identity, name, rawURL, vkey string) (store.Peer, error) {
	if !ValidName(name) {
		return store.Peer{}, fmt.Errorf("%w %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrBadName, name)
	}
	u, err := NormalizeURL(rawURL)
	if err != nil {
		return store.Peer{}, err
	}
	k, err := ParseKey(vkey)
	if err != nil {
		return store.Peer{}, err
	}
	if self != nil && k.ID == self.Public.ID {
		return store.Peer{}, fmt.Errorf("%w: %s is this node's own key; pin the other node's key (`parley node id` on it)", ErrInvalid, vkey)
	}
	peer := store.Peer{Name: name, URL: u, Key: k.VKey, KeyID: k.ID, AddedAt: p.now().UTC()}
	err = p.st.Nodes().AddPeer(ctx, peer)
	if errors.Is(err, store.ErrConflict) {
		if _, gerr := p.st.Nodes().Peer(ctx, name); gerr == nil {
			return store.Peer{}, fmt.Errorf("%w: a peer named %q exists; remove it first to pin another", ErrPeerExists, name)
		}
		if other, gerr := p.st.Nodes().PeerByKeyID(ctx, k.ID); gerr == nil {
			return store.Peer{}, fmt.Errorf("%w: this key is pinned already as peer %q", ErrPeerExists, other.Name)
		}
		return store.Peer{}, fmt.Errorf("%w: %v", ErrPeerExists, err)
	}
	if err != nil {
		return store.Peer{}, err
	}
	return peer, nil
}

// Get returns the peer named name, or ErrNoSuchPeer.
func (p *Peers) Get(ctx context.Context, name string) (store.Peer, error) {
	peer, err := p.st.Nodes().Peer(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Peer{}, fmt.Errorf("%w %q (see parley peer list)", ErrNoSuchPeer, name)
	}
	return peer, err
}

// ByKeyID returns the peer whose key has id keyID, or ErrUnknownKey.
func (p *Peers) ByKeyID(ctx context.Context, keyID string) (store.Peer, error) {
	peer, err := p.st.Nodes().PeerByKeyID(ctx, keyID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Peer{}, fmt.Errorf("%w: key id %q", ErrUnknownKey, keyID)
	}
	return peer, err
}

// PublicURL returns the URL the node last announced, or ErrNoPublicURL.
func (p *Peers) PublicURL(ctx context.Context) (string, error) { return PublicURL(ctx, p.st) }

// List returns the pinned peers by name.
func (p *Peers) List(ctx context.Context) ([]store.Peer, error) { return p.st.Nodes().Peers(ctx) }

// Remove unpins the peer named name; ErrNoSuchPeer if there is none.
func (p *Peers) Remove(ctx context.Context, name string) error {
	err := p.st.Nodes().RemovePeer(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w %q (see parley peer list)", ErrNoSuchPeer, name)
	}
	return err
}

// PublicURL returns the URL the node last announced, or ErrNoPublicURL.
func PublicURL(ctx context.Context, st store.Handle) (string, error) {
	u, err := st.Nodes().PublicURL(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: start `parley serve` (with --public-url when peers reach it by another address) on this data directory first", ErrNoPublicURL)
	}
	return u, err
}

// Announce records u as the node's public URL after checking it.
func Announce(ctx context.Context, st store.Handle, u string, at time.Time) (string, error) {
	n, err := NormalizeURL(u)
	if err != nil {
		return "", err
	}
	return n, st.Nodes().SetPublicURL(ctx, n, at.UTC())
}
