package agreement

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/canonjson"
	"github.com/parley-cti/parley/internal/fault"
)

// A contest is the receiving party's signed objection to the credit the
// other side earned for one object it judged worthless; a withdrawal is
// the same party's signed taking-back of a contest. Both are signed with the
// party's Ed25519 key, like the agreement's own statements, but under their
// own context string, so that no contest can stand in for a lifecycle
// signature or the other way round.

// ContestAction says what a contest statement does.
type ContestAction string

const (
	// ContestFile contests the credit for ObjectID.
	ContestFile ContestAction = "contest"
	// ContestWithdraw withdraws the contest ContestID.
	ContestWithdraw ContestAction = "withdraw"
)

const contestContext = "parley credit contest v1"

// ContestStatement is what a contest or a withdrawal says.
type ContestStatement struct {
	Action      ContestAction `json:"action"`
	AgreementID string        `json:"agreement_id"`
	PartyID     string        `json:"party_id"` // the contesting party
	KeyID       string        `json:"key_id"`
	// ObjectID is the contested object, a contribution of the other party
	// released to PartyID (contest only).
	ObjectID string `json:"object_id,omitempty"`
	// ContestID names the contest withdrawn (withdraw only).
	ContestID string    `json:"contest_id,omitempty"`
	Reason    string    `json:"reason,omitempty"` // why the object is worthless (contest only; required)
	SignedAt  time.Time `json:"signed_at"`
}

// SignedContest is a contest statement with its signature.
type SignedContest struct {
	ContestStatement
	Sig []byte `json:"sig"` // Ed25519 over Canonical; base64 in JSON
}

func (st ContestStatement) check() error {
	switch {
	case st.Action != ContestFile && st.Action != ContestWithdraw:
		return fmt.Errorf("unknown contest action %q", st.Action)
	case !validAgreementID(st.AgreementID):
		return fmt.Errorf("agreement_id %q is not agreement--<uuid>", st.AgreementID)
	case !validText(st.PartyID):
		return fmt.Errorf("party_id must be 1 to %d printable characters", maxTextLen)
	case !validKeyID(st.KeyID):
		return fmt.Errorf("key_id %q is not 16 lowercase hex digits", st.KeyID)
	case st.SignedAt.IsZero():
		return fmt.Errorf("signed_at is required")
	case len(st.Reason) > MaxReasonLen:
		return fmt.Errorf("reason is longer than %d bytes", MaxReasonLen)
	}
	if st.Action == ContestFile {
		if !validText(st.ObjectID) || !strings.Contains(st.ObjectID, "--") || st.ContestID != "" {
			return fmt.Errorf("a contest names one object_id (type--uuid) and no contest_id")
		}
		if strings.TrimSpace(st.Reason) == "" {
			return fmt.Errorf("a contest needs a reason: say why the object is worthless")
		}
		return nil
	}
	if !validText(st.ContestID) || st.ObjectID != "" || st.Reason != "" {
		return fmt.Errorf("a withdrawal names one contest_id and nothing else")
	}
	return nil
}

// Canonical is the RFC 8785 encoding the signature covers.
func (st ContestStatement) Canonical() ([]byte, error) {
	m := map[string]any{
		"context":      contestContext,
		"action":       string(st.Action),
		"agreement_id": st.AgreementID,
		"party_id":     st.PartyID,
		"key_id":       st.KeyID,
		"signed_at":    st.SignedAt.UTC().Format(time.RFC3339Nano),
	}
	if st.ObjectID != "" {
		m["object_id"] = st.ObjectID
	}
	if st.ContestID != "" {
		m["contest_id"] = st.ContestID
	}
	if st.Reason != "" {
		m["reason"] = st.Reason
	}
	return canonjson.Marshal(m)
}

// SignContest signs st with priv. Errors wrap ErrBadSignature (a malformed
// statement) or ErrUnknownKey (st names another key).
func SignContest(priv *PrivateKeys, st ContestStatement) (SignedContest, error) {
	if st.KeyID == "" {
		st.KeyID = priv.KeyID()
	}
	if st.KeyID != priv.KeyID() {
		return SignedContest{}, fault.Errorf("%w: statement names key %s, signing key is %s", ErrUnknownKey, st.KeyID, priv.KeyID())
	}
	st.SignedAt = st.SignedAt.UTC()
	if err := st.check(); err != nil {
		return SignedContest{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	msg, err := st.Canonical()
	if err != nil {
		return SignedContest{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	return SignedContest{ContestStatement: st, Sig: ed25519.Sign(priv.Signing, msg)}, nil
}

// VerifyContest checks that sc is well formed and signed by the key it
// names, which keys must vouch for as PartyID's at SignedAt. Errors wrap
// ErrBadSignature, ErrNotParty (the key is someone else's) or what keys
// returns (ErrUnknownKey, ErrKeyRotated).
func VerifyContest(keys KeyResolver, sc SignedContest) error {
	if err := sc.check(); err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	return verifyStatement(keys, sc.KeyID, sc.PartyID, sc.SignedAt, sc.Canonical, sc.Sig, func() string { return fmt.Sprintf("%s by %s under %s", sc.Action, sc.PartyID, sc.AgreementID) })
}

// verifyStatement is the check every signed statement of a party shares
// (contests, joint reports, client verifications): keys must vouch for
// keyID as partyID's at at, and sig must be its Ed25519 signature of the
// statement's canonical bytes. what names the statement in the error.
// Errors wrap ErrBadSignature, ErrNotParty or what keys returns.
func verifyStatement(keys KeyResolver, keyID, partyID string, at time.Time, canonical func() ([]byte, error), sig []byte, what func() string) error {
	owner, pub, err := keys.ResolveKey(keyID, at)
	if err != nil {
		return err
	}
	if owner != partyID {
		return fault.Errorf("%w: key %s belongs to %q, not %q", ErrNotParty, keyID, owner, partyID)
	}
	if pub.KeyID != keyID || len(pub.SigningKey) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return fault.Errorf("%w: wrong key or signature size", ErrBadSignature)
	}
	msg, err := canonical()
	if err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	if !ed25519.Verify(pub.SigningKey, msg, sig) {
		return fault.Errorf("%w: %s", ErrBadSignature, what())
	}
	return nil
}
