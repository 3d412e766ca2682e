package agreement

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/parley-cti/parley/internal/canonjson"
	"github.com/parley-cti/parley/internal/fault"
)

// PublicKeys are what a party publishes: the key that verifies its signatures
// and the age recipient others seal deposits to.
type PublicKeys struct {
	SigningKey       ed25519.PublicKey `json:"signing_key"`       // base64 in JSON
	SealingRecipient string            `json:"sealing_recipient"` // age1...
	KeyID            string            `json:"key_id"`
	// SealingSig is the signing key's signature binding SealingRecipient
	// to it (see sealing.go); base64 in JSON.
	SealingSig []byte `json:"sealing_sig,omitempty"`
}

// PrivateKeys are a party's secret keys. Keep them in a file only the party's
// user can read (WritePrivateKeysFile).
type PrivateKeys struct {
	Signing ed25519.PrivateKey
	Sealing *age.X25519Identity
}

// KeyID derives the key id of an Ed25519 public key: the first 8 bytes, in
// lowercase hex, of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKeys makes a fresh signing key and sealing identity.
func GenerateKeys() (*PrivateKeys, error) {
	_, signing, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fault.Errorf("agreement: generate signing key: %w", err)
	}
	sealing, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fault.Errorf("agreement: generate sealing identity: %w", err)
	}
	return &PrivateKeys{Signing: signing, Sealing: sealing}, nil
}

// Public returns the public half of k.
func (k *PrivateKeys) Public() PublicKeys {
	pub := k.Signing.Public().(ed25519.PublicKey)
	return PublicKeys{SigningKey: pub, SealingRecipient: k.Sealing.Recipient().String(), KeyID: KeyID(pub), SealingSig: SignSealingKey(k)}
}

// KeyID is the id of k's signing key.
func (k *PrivateKeys) KeyID() string { return KeyID(k.Signing.Public().(ed25519.PublicKey)) }

// Validate checks that p is well formed and that its KeyID matches its
// signing key. Errors wrap ErrInvalidKey.
func (p PublicKeys) Validate() error {
	if len(p.SigningKey) != ed25519.PublicKeySize {
		return fault.Errorf("%w: signing key is %d bytes, want %d", ErrInvalidKey, len(p.SigningKey), ed25519.PublicKeySize)
	}
	if want := KeyID(p.SigningKey); p.KeyID != want {
		return fault.Errorf("%w: key id %q does not match the signing key (%s)", ErrInvalidKey, p.KeyID, want)
	}
	if _, err := age.ParseX25519Recipient(p.SealingRecipient); err != nil {
		return fault.Errorf("%w: sealing recipient: %v", ErrInvalidKey, err)
	}
	return nil
}

// Key file encoding. Both are PEM blocks; the age strings travel in headers so
// the files stay readable by hand:
//
//	-----BEGIN PARLEY PRIVATE KEYS-----
//	Key-Id: 0123456789abcdef
//	Sealing-Identity: AGE-SECRET-KEY-1...
//
//	<base64 of the 32-byte Ed25519 seed>
//	-----END PARLEY PRIVATE KEYS-----
//
// and PARLEY PUBLIC KEYS with Key-Id, Sealing-Recipient, Sealing-Sig and the 32-byte
// Ed25519 public key.
const (
	pemPrivate = "PARLEY PRIVATE KEYS"
	pemPublic  = "PARLEY PUBLIC KEYS"
)

// MarshalPrivateKeys encodes k as a PEM block (see the format above).
func MarshalPrivateKeys(k *PrivateKeys) []byte {
	return pem.EncodeToMemory(&pem.Block{
		Type:    pemPrivate,
		Headers: map[string]string{"Key-Id": k.KeyID(), "Sealing-Identity": k.Sealing.String()},
		Bytes:   k.Signing.Seed(),
	})
}

// ParsePrivateKeys decodes MarshalPrivateKeys output. Errors wrap ErrInvalidKey.
func ParsePrivateKeys(data []byte) (*PrivateKeys, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemPrivate {
		return nil, fault.Errorf("%w: no %s PEM block", ErrInvalidKey, pemPrivate)
	}
	if len(block.Bytes) != ed25519.SeedSize {
		return nil, fault.Errorf("%w: signing seed is %d bytes, want %d", ErrInvalidKey, len(block.Bytes), ed25519.SeedSize)
	}
	sealing, err := age.ParseX25519Identity(block.Headers["Sealing-Identity"])
	if err != nil {
		return nil, fault.Errorf("%w: sealing identity: %v", ErrInvalidKey, err)
	}
	k := &PrivateKeys{Signing: ed25519.NewKeyFromSeed(block.Bytes), Sealing: sealing}
	if id, ok := block.Headers["Key-Id"]; ok && id != k.KeyID() {
		return nil, fault.Errorf("%w: Key-Id %q does not match the key (%s)", ErrInvalidKey, id, k.KeyID())
	}
	return k, nil
}

// MarshalPublicKeys encodes p as a PEM block.
func MarshalPublicKeys(p PublicKeys) []byte {
	return pem.EncodeToMemory(&pem.Block{
		Type:    pemPublic,
		Headers: publicHeaders(p),
		Bytes:   p.SigningKey,
	})
}

func publicHeaders(p PublicKeys) map[string]string {
	h := map[string]string{"Key-Id": p.KeyID, "Sealing-Recipient": p.SealingRecipient}
	if len(p.SealingSig) > 0 {
		h["Sealing-Sig"] = base64.StdEncoding.EncodeToString(p.SealingSig)
	}
	return h
}

// ParsePublicKeys decodes MarshalPublicKeys output and validates it. Errors
// wrap ErrInvalidKey.
func ParsePublicKeys(data []byte) (PublicKeys, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemPublic {
		return PublicKeys{}, fault.Errorf("%w: no %s PEM block", ErrInvalidKey, pemPublic)
	}
	p := PublicKeys{
		SigningKey:       ed25519.PublicKey(block.Bytes),
		SealingRecipient: block.Headers["Sealing-Recipient"],
		KeyID:            block.Headers["Key-Id"],
	}
	if sig, ok := block.Headers["Sealing-Sig"]; ok {
		b, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			return PublicKeys{}, fault.Errorf("%w: Sealing-Sig is not base64", ErrInvalidKey)
		}
		p.SealingSig = b
	}
	if err := p.Validate(); err != nil {
		return PublicKeys{}, err
	}
	return p, nil
}

// WritePrivateKeysFile writes k to a new file with mode 0600. It refuses to
// overwrite an existing file: losing a key cannot be undone.
func WritePrivateKeysFile(path string, k *PrivateKeys) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fault.Errorf("agreement: write keys: %w", err)
	}
	if _, err := f.Write(MarshalPrivateKeys(k)); err != nil {
		f.Close()
		return fault.Errorf("agreement: write keys: %w", err)
	}
	if err := f.Close(); err != nil {
		return fault.Errorf("agreement: write keys: %w", err)
	}
	return nil
}

// ReadPrivateKeysFile reads a key file, refusing one that others can read or
// write (as ssh does), since the signing key proves the party's consent.
func ReadPrivateKeysFile(path string) (*PrivateKeys, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fault.Errorf("agreement: read keys: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fault.Errorf("%w: %s has mode %v; it must be readable by its owner only (chmod 600)", ErrInvalidKey, path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fault.Errorf("agreement: read keys: %w", err)
	}
	return ParsePrivateKeys(data)
}

// KeyRotation is a party's statement, signed with its old key, that its keys
// are now NewKeys from At on.
type KeyRotation struct {
	PartyID  string     `json:"party_id"`
	OldKeyID string     `json:"old_key_id"`
	NewKeys  PublicKeys `json:"new_keys"`
	At       time.Time  `json:"at"`
	Sig      []byte     `json:"sig"`
}

// rotationStatement is what the old key signs. The context string keeps a
// rotation signature from ever verifying as an agreement signature.
func (r KeyRotation) statement() ([]byte, error) {
	return canonjson.Marshal(map[string]any{
		"context":               "parley key rotation v1",
		"party_id":              r.PartyID,
		"old_key_id":            r.OldKeyID,
		"new_key_id":            r.NewKeys.KeyID,
		"new_signing_key":       base64.StdEncoding.EncodeToString(r.NewKeys.SigningKey),
		"new_sealing_recipient": r.NewKeys.SealingRecipient,
		"at":                    r.At.UTC().Format(time.RFC3339Nano),
	})
}

// RotateKeys signs, with old, the statement that party's keys become newKeys at at.
func RotateKeys(old *PrivateKeys, partyID string, newKeys PublicKeys, at time.Time) (KeyRotation, error) {
	if err := newKeys.Validate(); err != nil {
		return KeyRotation{}, err
	}
	r := KeyRotation{PartyID: partyID, OldKeyID: old.KeyID(), NewKeys: newKeys, At: at.UTC()}
	msg, err := r.statement()
	if err != nil {
		return KeyRotation{}, err
	}
	r.Sig = ed25519.Sign(old.Signing, msg)
	return r, nil
}

// VerifyRotation checks that r is signed by oldKeys and names well-formed new
// keys. It returns ErrUnknownKey when r names another old key and
// ErrBadSignature when the signature does not verify.
func VerifyRotation(oldKeys PublicKeys, r KeyRotation) error {
	if r.OldKeyID != oldKeys.KeyID {
		return fault.Errorf("%w: rotation names old key %q, not %q", ErrUnknownKey, r.OldKeyID, oldKeys.KeyID)
	}
	if err := oldKeys.Validate(); err != nil {
		return err
	}
	if err := r.NewKeys.Validate(); err != nil {
		return err
	}
	if r.NewKeys.KeyID == r.OldKeyID {
		return fault.Errorf("%w: rotation to the same key", ErrInvalidKey)
	}
	msg, err := r.statement()
	if err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	if !ed25519.Verify(oldKeys.SigningKey, msg, r.Sig) {
		return fault.Errorf("%w: key rotation for party %q", ErrBadSignature, r.PartyID)
	}
	return nil
}

// KeyResolver finds the keys behind a key id as they stood at a given time.
//
// ResolveKey returns the party that held keyID at time at and its public
// keys. It returns an error wrapping ErrUnknownKey when no such key is known
// or it was not yet valid at at, and ErrKeyRotated (which wraps
// ErrUnknownKey) when the key had been rotated out before at.
type KeyResolver interface {
	ResolveKey(keyID string, at time.Time) (partyID string, pub PublicKeys, err error)
}

// KeyRing is an in-memory KeyResolver built from registrations and verified
// rotations. It is safe for concurrent use.
type KeyRing struct {
	mu      sync.RWMutex
	keys    map[string]*ringKey // by key id
	current map[string]string   // party id -> current key id
}

type ringKey struct {
	party       string
	pub         PublicKeys
	from, until time.Time // until is zero while the key is current
}

// NewKeyRing returns an empty ring.
func NewKeyRing() *KeyRing {
	return &KeyRing{keys: map[string]*ringKey{}, current: map[string]string{}}
}

// Register records pub as partyID's first key, valid from from. It refuses
// (ErrInvalidKey) a party that already has a key — later keys come only
// through Rotate — and a key id already registered.
func (r *KeyRing) Register(partyID string, pub PublicKeys, from time.Time) error {
	if err := pub.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.current[partyID]; ok {
		return fault.Errorf("%w: party %q already has a key; rotate it instead", ErrInvalidKey, partyID)
	}
	if _, ok := r.keys[pub.KeyID]; ok {
		return fault.Errorf("%w: key %s is already registered", ErrInvalidKey, pub.KeyID)
	}
	r.keys[pub.KeyID] = &ringKey{party: partyID, pub: pub, from: from}
	r.current[partyID] = pub.KeyID
	return nil
}

// Rotate applies a verified key rotation: the old key stops being valid at
// rot.At and the new one starts. The old key must be the party's current key.
func (r *KeyRing) Rotate(rot KeyRotation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok := r.current[rot.PartyID]
	if !ok {
		return fault.Errorf("%w: party %q has no key", ErrUnknownKey, rot.PartyID)
	}
	if cur != rot.OldKeyID {
		return fault.Errorf("%w: %s is not party %q's current key", ErrKeyRotated, rot.OldKeyID, rot.PartyID)
	}
	old := r.keys[cur]
	if err := VerifyRotation(old.pub, rot); err != nil {
		return err
	}
	if rot.At.Before(old.from) {
		return fault.Errorf("%w: rotation at %s predates the old key (%s)", ErrInvalidKey, rot.At, old.from)
	}
	if _, ok := r.keys[rot.NewKeys.KeyID]; ok {
		return fault.Errorf("%w: key %s is already registered", ErrInvalidKey, rot.NewKeys.KeyID)
	}
	old.until = rot.At
	r.keys[rot.NewKeys.KeyID] = &ringKey{party: rot.PartyID, pub: rot.NewKeys, from: rot.At}
	r.current[rot.PartyID] = rot.NewKeys.KeyID
	return nil
}

// ResolveKey implements KeyResolver.
func (r *KeyRing) ResolveKey(keyID string, at time.Time) (string, PublicKeys, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[keyID]
	switch {
	case !ok:
		return "", PublicKeys{}, fault.Errorf("%w: %q", ErrUnknownKey, keyID)
	case at.Before(k.from):
		return "", PublicKeys{}, fault.Errorf("%w: %s is not valid before %s", ErrUnknownKey, keyID, k.from.Format(time.RFC3339))
	case !k.until.IsZero() && !at.Before(k.until):
		return "", PublicKeys{}, fault.Errorf("%w: %s was rotated out at %s", ErrKeyRotated, keyID, k.until.Format(time.RFC3339))
	}
	return k.party, k.pub, nil
}
