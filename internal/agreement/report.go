package agreement

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/canonjson"
	"github.com/parley-cti/parley/internal/fault"
)

// A report signature is one party's signed statement that it has read the
// joint report on an agreement over a period (package report) and accepts
// it: the report is named by the SHA-256 of its canonical JSON. Signed with
// the party's Ed25519 key under its own context string, so that it can
// stand in for no lifecycle or contest signature, nor they for it.

const reportContext = "parley joint report v1"

// ReportStatement is what a party signs of a joint report.
type ReportStatement struct {
	AgreementID string `json:"agreement_id"`
	PartyID     string `json:"party_id"` // the signing party
	KeyID       string `json:"key_id"`
	// ReportHash is "sha256:<64 lowercase hex>" of the report's canonical
	// JSON (report.Facts).
	ReportHash string    `json:"report_hash"`
	From       time.Time `json:"from"` // the period the report covers
	To         time.Time `json:"to"`
	SignedAt   time.Time `json:"signed_at"`
}

// SignedReport is a report statement with its signature.
type SignedReport struct {
	ReportStatement
	Sig []byte `json:"sig"` // Ed25519 over Canonical; base64 in JSON
}

func (st ReportStatement) check() error {
	h, ok := strings.CutPrefix(st.ReportHash, "sha256:")
	switch {
	case !validAgreementID(st.AgreementID):
		return fmt.Errorf("agreement_id %q is not agreement--<uuid>", st.AgreementID)
	case !validText(st.PartyID):
		return fmt.Errorf("party_id must be 1 to %d printable characters", maxTextLen)
	case !validKeyID(st.KeyID):
		return fmt.Errorf("key_id %q is not 16 lowercase hex digits", st.KeyID)
	case !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "":
		return fmt.Errorf("report_hash %q is not sha256:<64 lowercase hex>", st.ReportHash)
	case st.From.IsZero() || st.To.IsZero() || !st.From.Before(st.To):
		return fmt.Errorf("the period from %s to %s is empty", st.From.Format(time.RFC3339), st.To.Format(time.RFC3339))
	case st.SignedAt.IsZero():
		return fmt.Errorf("signed_at is required")
	}
	return nil
}

// Canonical is the RFC 8785 encoding the signature covers.
func (st ReportStatement) Canonical() ([]byte, error) {
	return canonjson.Marshal(map[string]any{
		"context":      reportContext,
		"agreement_id": st.AgreementID,
		"party_id":     st.PartyID,
		"key_id":       st.KeyID,
		"report_hash":  st.ReportHash,
		"from":         st.From.UTC().Format(time.RFC3339Nano),
		"to":           st.To.UTC().Format(time.RFC3339Nano),
		"signed_at":    st.SignedAt.UTC().Format(time.RFC3339Nano),
	})
}

// SignReport signs st with priv. Errors wrap ErrBadSignature (a malformed
// statement) or ErrUnknownKey (st names another key).
func SignReport(priv *PrivateKeys, st ReportStatement) (SignedReport, error) {
	if st.KeyID == "" {
		st.KeyID = priv.KeyID()
	}
	if st.KeyID != priv.KeyID() {
		return SignedReport{}, fault.Errorf("%w: statement names key %s, signing key is %s", ErrUnknownKey, st.KeyID, priv.KeyID())
	}
	st.SignedAt, st.From, st.To = st.SignedAt.UTC(), st.From.UTC(), st.To.UTC()
	if err := st.check(); err != nil {
		return SignedReport{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	msg, err := st.Canonical()
	if err != nil {
		return SignedReport{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	return SignedReport{ReportStatement: st, Sig: ed25519.Sign(priv.Signing, msg)}, nil
}

// VerifyReport checks that sr is well formed and signed by the key it
// names, which keys must vouch for as PartyID's at SignedAt. Errors wrap
// ErrBadSignature, ErrNotParty (the key is someone else's) or what keys
// returns (ErrUnknownKey, ErrKeyRotated).
func VerifyReport(keys KeyResolver, sr SignedReport) error {
	if err := sr.check(); err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	return verifyStatement(keys, sr.KeyID, sr.PartyID, sr.SignedAt, sr.Canonical, sr.Sig, func() string {
		return fmt.Sprintf("report %s by %s under %s", sr.ReportHash, sr.PartyID, sr.AgreementID)
	})
}
