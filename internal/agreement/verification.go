package agreement

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/parley-cti/parley/internal/canonjson"
	"github.com/parley-cti/parley/internal/fault"
)

// A verification statement is a party's own signed record that its client
// verified the ledger (`parley verify --upload`): up to which checkpoint,
// with what result, and how many of the party's entries it replayed. The
// dashboard shows it instead of the server's claim about itself. Signed
// with the party's Ed25519 key under its own context string, so that it
// can stand in for no other statement, nor they for it.

const verificationContext = "parley ledger verification v1"

// VerificationOK is the only result a client uploads: a failed
// verification is reported to the operator, not recorded as a pass.
const VerificationOK = "ok"

// VerificationStatement is what a party signs after verifying the ledger.
type VerificationStatement struct {
	PartyID string `json:"party_id"`
	KeyID   string `json:"key_id"`
	Origin  string `json:"origin"` // the checkpoint's origin line
	Size    int64  `json:"size"`   // the verified checkpoint's tree size
	// Root is the checkpoint's root hash, standard base64 of 32 bytes.
	Root       string    `json:"root"`
	Result     string    `json:"result"`  // VerificationOK
	Entries    int64     `json:"entries"` // the party's entries replayed
	VerifiedAt time.Time `json:"verified_at"`
}

// SignedVerification is a verification statement with its signature.
type SignedVerification struct {
	VerificationStatement
	Sig []byte `json:"sig"` // Ed25519 over Canonical; base64 in JSON
}

func (st VerificationStatement) check() error {
	root, err := base64.StdEncoding.DecodeString(st.Root)
	switch {
	case !validText(st.PartyID):
		return fmt.Errorf("party_id must be 1 to %d printable characters", maxTextLen)
	case !validKeyID(st.KeyID):
		return fmt.Errorf("key_id %q is not 16 lowercase hex digits", st.KeyID)
	case !validText(st.Origin):
		return fmt.Errorf("origin must be 1 to %d printable characters", maxTextLen)
	case st.Size < 0:
		return fmt.Errorf("size %d is not a verified ledger", st.Size)
	case err != nil || len(root) != 32:
		return fmt.Errorf("root %q is not base64 of 32 bytes", st.Root)
	case st.Result != VerificationOK:
		return fmt.Errorf("result %q is not %q", st.Result, VerificationOK)
	case st.Entries < 0 || st.Entries > st.Size:
		return fmt.Errorf("entries %d is not between 0 and the size %d", st.Entries, st.Size)
	case st.VerifiedAt.IsZero():
		return fmt.Errorf("verified_at is required")
	}
	return nil
}

// Canonical is the RFC 8785 encoding the signature covers.
func (st VerificationStatement) Canonical() ([]byte, error) {
	return canonjson.Marshal(map[string]any{
		"context":     verificationContext,
		"party_id":    st.PartyID,
		"key_id":      st.KeyID,
		"origin":      st.Origin,
		"size":        st.Size,
		"root":        st.Root,
		"result":      st.Result,
		"entries":     st.Entries,
		"verified_at": st.VerifiedAt.UTC().Format(time.RFC3339Nano),
	})
}

// SignVerification signs st with priv. Errors wrap ErrBadSignature (a
// malformed statement) or ErrUnknownKey (st names another key).
func SignVerification(priv *PrivateKeys, st VerificationStatement) (SignedVerification, error) {
	if st.KeyID == "" {
		st.KeyID = priv.KeyID()
	}
	if st.KeyID != priv.KeyID() {
		return SignedVerification{}, fault.Errorf("%w: statement names key %s, signing key is %s", ErrUnknownKey, st.KeyID, priv.KeyID())
	}
	st.VerifiedAt = st.VerifiedAt.UTC()
	if err := st.check(); err != nil {
		return SignedVerification{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	msg, err := st.Canonical()
	if err != nil {
		return SignedVerification{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	return SignedVerification{VerificationStatement: st, Sig: ed25519.Sign(priv.Signing, msg)}, nil
}

// VerifyVerification checks that sv is well formed and signed by the key
// it names, which keys must vouch for as PartyID's at VerifiedAt. Errors
// wrap ErrBadSignature, ErrNotParty (the key is someone else's) or what
// keys returns (ErrUnknownKey, ErrKeyRotated).
func VerifyVerification(keys KeyResolver, sv SignedVerification) error {
	if err := sv.check(); err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	return verifyStatement(keys, sv.KeyID, sv.PartyID, sv.VerifiedAt, sv.Canonical, sv.Sig, func() string { return fmt.Sprintf("verification of size %d by %s", sv.Size, sv.PartyID) })
}
