package agreement

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/parley-cti/parley/internal/canonjson"
	"github.com/parley-cti/parley/internal/fault"
)

// Action is what a signature consents to.
type Action string

// The actions of the agreement lifecycle.
const (
	ActionPropose     Action = "propose"
	ActionCountersign Action = "countersign"
	ActionAmend       Action = "amend"
	ActionSuspend     Action = "suspend"
	ActionResume      Action = "resume"
	ActionTerminate   Action = "terminate"
)

func (a Action) valid() bool {
	switch a {
	case ActionPropose, ActionCountersign, ActionAmend, ActionSuspend, ActionResume, ActionTerminate:
		return true
	}
	return false
}

// signatureContext separates agreement signatures from every other use of
// the same key (key rotations, ledger checkpoints).
const signatureContext = "parley agreement signature v1"

// MaxReasonLen bounds the free-text reason of suspend/resume/terminate.
const MaxReasonLen = 1024

// Statement is what a party signs: one action on one version of one
// document, identified by its hash, by one key. Suspend and terminate also
// bind when they take effect and why.
type Statement struct {
	Action       Action    `json:"action"`
	AgreementID  string    `json:"agreement_id"`
	Version      int       `json:"version"`
	DocumentHash string    `json:"document_hash"` // lowercase hex SHA-256 of the canonical document
	KeyID        string    `json:"key_id"`
	PartyID      string    `json:"party_id"`
	SignedAt     time.Time `json:"signed_at"`
	EffectiveAt  time.Time `json:"effective_at,omitzero"`
	Reason       string    `json:"reason,omitempty"`
}

// Signature is a signed Statement.
type Signature struct {
	Statement
	Sig []byte `json:"sig"` // Ed25519 over the statement's canonical bytes; base64 in JSON
}

// StatementFor fills a statement for action on doc by partyID's key keyID,
// signed at at. Set EffectiveAt and Reason afterwards for suspend, resume and
// terminate.
func StatementFor(doc *Document, action Action, partyID, keyID string, at time.Time) Statement {
	h := doc.Hash()
	return Statement{
		Action:       action,
		AgreementID:  doc.ID,
		Version:      doc.Version,
		DocumentHash: hex.EncodeToString(h[:]),
		KeyID:        keyID,
		PartyID:      partyID,
		SignedAt:     at.UTC(),
	}
}

// check reports the first way st is malformed.
func (st Statement) check() error {
	switch {
	case !st.Action.valid():
		return fmt.Errorf("unknown action %q", st.Action)
	case !validAgreementID(st.AgreementID):
		return fmt.Errorf("agreement_id %q is not agreement--<uuid>", st.AgreementID)
	case st.Version < 1 || st.Version > maxVersion:
		return fmt.Errorf("version %d out of range", st.Version)
	case len(st.DocumentHash) != 64 || !isLowerHex(st.DocumentHash):
		return fmt.Errorf("document_hash must be 64 lowercase hex digits")
	case !validKeyID(st.KeyID):
		return fmt.Errorf("key_id %q is not 16 lowercase hex digits", st.KeyID)
	case !validText(st.PartyID):
		return fmt.Errorf("party_id must be 1 to %d printable characters", maxTextLen)
	case st.SignedAt.IsZero():
		return fmt.Errorf("signed_at is required")
	case len(st.Reason) > MaxReasonLen:
		return fmt.Errorf("reason is longer than %d bytes", MaxReasonLen)
	}
	switch st.Action {
	case ActionSuspend, ActionTerminate:
		if st.EffectiveAt.IsZero() || st.Reason == "" {
			return fmt.Errorf("%s needs effective_at and reason", st.Action)
		}
	case ActionPropose, ActionCountersign, ActionAmend:
		if !st.EffectiveAt.IsZero() || st.Reason != "" {
			return fmt.Errorf("%s takes no effective_at or reason", st.Action)
		}
	}
	return nil
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Canonical returns the bytes a signature covers: the RFC 8785 encoding of
// the statement with a context string, times in UTC.
func (st Statement) Canonical() ([]byte, error) {
	m := map[string]any{
		"context":       signatureContext,
		"action":        string(st.Action),
		"agreement_id":  st.AgreementID,
		"version":       st.Version,
		"document_hash": st.DocumentHash,
		"key_id":        st.KeyID,
		"party_id":      st.PartyID,
		"signed_at":     st.SignedAt.UTC().Format(time.RFC3339Nano),
	}
	if !st.EffectiveAt.IsZero() {
		m["effective_at"] = st.EffectiveAt.UTC().Format(time.RFC3339Nano)
	}
	if st.Reason != "" {
		m["reason"] = st.Reason
	}
	return canonjson.Marshal(m)
}

// Sign signs st with priv. st.KeyID must be priv's key id (it is filled in
// when empty). It returns ErrUnknownKey for another key id and
// ErrBadSignature, with the reason, for a malformed statement.
func Sign(priv *PrivateKeys, st Statement) (Signature, error) {
	if st.KeyID == "" {
		st.KeyID = priv.KeyID()
	}
	if st.KeyID != priv.KeyID() {
		return Signature{}, fault.Errorf("%w: statement names key %s, signing key is %s", ErrUnknownKey, st.KeyID, priv.KeyID())
	}
	st.SignedAt = st.SignedAt.UTC()
	if !st.EffectiveAt.IsZero() {
		st.EffectiveAt = st.EffectiveAt.UTC()
	}
	if err := st.check(); err != nil {
		return Signature{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	msg, err := st.Canonical()
	if err != nil {
		return Signature{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	return Signature{Statement: st, Sig: ed25519.Sign(priv.Signing, msg)}, nil
}

// Verify checks the cryptographic signature of sig against pub: that sig
// names pub's key (else ErrUnknownKey) and that the signature covers exactly
// this statement (else ErrBadSignature). It does not check the statement
// against a document; VerifyFor does.
func Verify(pub PublicKeys, sig Signature) error {
	if sig.KeyID != pub.KeyID {
		return fault.Errorf("%w: signature by key %s, not %s", ErrUnknownKey, sig.KeyID, pub.KeyID)
	}
	if len(pub.SigningKey) != ed25519.PublicKeySize || len(sig.Sig) != ed25519.SignatureSize {
		return fault.Errorf("%w: wrong key or signature size", ErrBadSignature)
	}
	if err := sig.check(); err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	msg, err := sig.Canonical()
	if err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	if !ed25519.Verify(pub.SigningKey, msg, sig.Sig) {
		return fault.Errorf("%w: %s by %s on %s v%d", ErrBadSignature, sig.Action, sig.PartyID, sig.AgreementID, sig.Version)
	}
	return nil
}

// VerifyFor checks that sig is a valid signature on exactly doc by a party to
// it, with a key keys vouches for at the time of signing. Errors:
// ErrDocumentChanged (another agreement or a different document hash),
// ErrWrongVersion, ErrNotParty (signer not a party, or the key belongs to
// someone else), ErrUnknownKey / ErrKeyRotated from keys, ErrBadSignature.
//
// SignedAt is the signer's claim; the server must refuse signatures whose
// SignedAt is far from when it received them, or a stolen rotated-out key
// could backdate a statement.
func VerifyFor(doc *Document, keys KeyResolver, sig Signature) error {
	if sig.AgreementID != doc.ID {
		return fault.Errorf("%w: signature is for %s, not %s", ErrDocumentChanged, sig.AgreementID, doc.ID)
	}
	if sig.Version != doc.Version {
		return fault.Errorf("%w: signature is for version %d, document is version %d", ErrWrongVersion, sig.Version, doc.Version)
	}
	h := doc.Hash()
	if sig.DocumentHash != hex.EncodeToString(h[:]) {
		return fault.Errorf("%w: %s version %d", ErrDocumentChanged, doc.ID, doc.Version)
	}
	if _, _, err := doc.Party(sig.PartyID); err != nil {
		return err
	}
	owner, pub, err := keys.ResolveKey(sig.KeyID, sig.SignedAt)
	if err != nil {
		return err
	}
	if owner != sig.PartyID {
		return fault.Errorf("%w: key %s belongs to %q, not %q", ErrNotParty, sig.KeyID, owner, sig.PartyID)
	}
	return Verify(pub, sig)
}

// ParseSignature decodes a signature from JSON strictly (no unknown or
// duplicate fields) and checks its shape. Errors wrap ErrBadSignature.
func ParseSignature(raw []byte) (Signature, error) {
	if _, err := canonjson.Canonicalize(raw); err != nil {
		return Signature{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var sig Signature
	if err := dec.Decode(&sig); err != nil {
		return Signature{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := sig.check(); err != nil {
		return Signature{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	if len(sig.Sig) != ed25519.SignatureSize {
		return Signature{}, fault.Errorf("%w: sig is %d bytes, want %d", ErrBadSignature, len(sig.Sig), ed25519.SignatureSize)
	}
	return sig, nil
}
