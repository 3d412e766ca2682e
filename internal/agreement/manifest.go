package agreement

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/canonjson"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/stix"
)

// Deposit manifests and disputes (issue 12, finding 8). A sealed deposit
// is opaque to the server, so its depositor signs what it claims to hand
// over: how many STIX objects, of which types, with which content
// fingerprints (stix.ContentFingerprint), bound to the exact bytes
// deposited. The recipient's client checks the opened deposit against it;
// if they differ, the depositor's own signature proves what it promised,
// and the recipient files a dispute signed with its key.

// BundleSummary is what a manifest claims of a bundle.
type BundleSummary struct {
	Objects int            `json:"objects"`
	Types   map[string]int `json:"types"`
	// Fingerprints is the lowercase hex SHA-256 over the objects' content
	// fingerprints in lowercase hex, sorted, each followed by "\n": a
	// commitment to every object's content that the recipient recomputes.
	Fingerprints string `json:"fingerprints"`
}

// SummarizeBundle summarizes the objects of a STIX bundle (raw JSON).
func SummarizeBundle(bundle []byte) (BundleSummary, error) {
	var env struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(bundle, &env); err != nil {
		return BundleSummary{}, fault.Errorf("summarize bundle: %w", err)
	}
	s := BundleSummary{Objects: len(env.Objects), Types: map[string]int{}}
	fps := make([]string, 0, len(env.Objects))
	for i, raw := range env.Objects {
		var o struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			return BundleSummary{}, fault.Errorf("summarize bundle: objects[%d]: %w", i, err)
		}
		fp, err := stix.ContentFingerprint(raw)
		if err != nil {
			return BundleSummary{}, fault.Errorf("summarize bundle: objects[%d]: %w", i, err)
		}
		s.Types[o.Type]++
		fps = append(fps, hex.EncodeToString(fp[:]))
	}
	slices.Sort(fps)
	var b strings.Builder
	for _, f := range fps {
		b.WriteString(f)
		b.WriteByte('\n')
	}
	sum := sha256.Sum256([]byte(b.String()))
	s.Fingerprints = hex.EncodeToString(sum[:])
	return s, nil
}

// Diff says how got differs from s ("" when it does not).
func (s BundleSummary) Diff(got BundleSummary) string {
	var out []string
	if s.Objects != got.Objects {
		out = append(out, fmt.Sprintf("%d objects, not the %d promised", got.Objects, s.Objects))
	}
	types := map[string]bool{}
	for t := range s.Types {
		types[t] = true
	}
	for t := range got.Types {
		types[t] = true
	}
	names := make([]string, 0, len(types))
	for t := range types {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, t := range names {
		if s.Types[t] != got.Types[t] {
			out = append(out, fmt.Sprintf("%d %s, not %d", got.Types[t], t, s.Types[t]))
		}
	}
	if s.Fingerprints != got.Fingerprints {
		out = append(out, "object contents differ from the fingerprints promised")
	}
	return strings.Join(out, "; ")
}

// Manifest is a depositor's signed statement of a deposit.
type Manifest struct {
	Handover  string `json:"handover"`
	Depositor string `json:"depositor"`
	KeyID     string `json:"key_id"`
	// ContentSHA256 is the lowercase hex SHA-256 of the deposited bytes
	// (the age file when sealed), binding the summary to them.
	ContentSHA256 string `json:"content_sha256"`
	BundleSummary
	Sig []byte `json:"sig"`
}

func (m Manifest) statement() ([]byte, error) {
	return canonjson.Marshal(map[string]any{
		"context": "parley deposit manifest v1", "handover": m.Handover, "depositor": m.Depositor, "key_id": m.KeyID,
		"content_sha256": m.ContentSHA256, "objects": m.Objects, "types": m.Types, "fingerprints": m.Fingerprints,
	})
}

// SignManifest signs m with k (filling KeyID).
func SignManifest(k *PrivateKeys, m Manifest) (Manifest, error) {
	m.KeyID, m.Sig = k.KeyID(), nil
	msg, err := m.statement()
	if err != nil {
		return Manifest{}, err
	}
	m.Sig = ed25519.Sign(k.Signing, msg)
	return m, nil
}

// VerifyManifest checks m's signature by pub. Errors wrap ErrUnknownKey
// (another key) or ErrBadSignature.
func VerifyManifest(pub PublicKeys, m Manifest) error {
	if m.KeyID != pub.KeyID {
		return fault.Errorf("%w: manifest signed by key %s, not %s", ErrUnknownKey, m.KeyID, pub.KeyID)
	}
	msg, err := m.statement()
	if err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	if len(pub.SigningKey) != ed25519.PublicKeySize || !ed25519.Verify(pub.SigningKey, msg, m.Sig) {
		return fault.Errorf("%w: manifest of %s's deposit in %s", ErrBadSignature, m.Depositor, m.Handover)
	}
	return nil
}

// Dispute is a recipient's signed complaint about a released deposit.
type Dispute struct {
	Handover  string `json:"handover"`
	Depositor string `json:"depositor"` // whose deposit is disputed
	Disputer  string `json:"disputer"`
	KeyID     string `json:"key_id"`
	Reason    string `json:"reason"`
	// ManifestSHA256 is the lowercase hex SHA-256 of the disputed
	// manifest's signature ("" when the deposit had none): which promise
	// is said to be broken.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	// Observed is what the disputer found on opening, when it could.
	Observed *BundleSummary `json:"observed,omitempty"`
	SignedAt time.Time      `json:"signed_at"`
	Sig      []byte         `json:"sig"`
}

func (d Dispute) statement() ([]byte, error) {
	m := map[string]any{
		"context": "parley handover dispute v1", "handover": d.Handover, "depositor": d.Depositor, "disputer": d.Disputer,
		"key_id": d.KeyID, "reason": d.Reason, "manifest_sha256": d.ManifestSHA256, "signed_at": d.SignedAt.UTC().Format(time.RFC3339Nano),
	}
	if d.Observed != nil {
		m["observed"] = map[string]any{"objects": d.Observed.Objects, "types": d.Observed.Types, "fingerprints": d.Observed.Fingerprints}
	}
	return canonjson.Marshal(m)
}

// SignDispute signs d with k (filling KeyID).
func SignDispute(k *PrivateKeys, d Dispute) (Dispute, error) {
	d.KeyID, d.Sig = k.KeyID(), nil
	msg, err := d.statement()
	if err != nil {
		return Dispute{}, err
	}
	d.Sig = ed25519.Sign(k.Signing, msg)
	return d, nil
}

// VerifyDispute checks d's signature by pub. Errors wrap ErrUnknownKey or
// ErrBadSignature.
func VerifyDispute(pub PublicKeys, d Dispute) error {
	if d.KeyID != pub.KeyID {
		return fault.Errorf("%w: dispute signed by key %s, not %s", ErrUnknownKey, d.KeyID, pub.KeyID)
	}
	msg, err := d.statement()
	if err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	if len(pub.SigningKey) != ed25519.PublicKeySize || !ed25519.Verify(pub.SigningKey, msg, d.Sig) {
		return fault.Errorf("%w: dispute of %s's deposit in %s", ErrBadSignature, d.Depositor, d.Handover)
	}
	return nil
}

// ManifestRef is the ManifestSHA256 a dispute uses for m.
func ManifestRef(m Manifest) string {
	sum := sha256.Sum256(m.Sig)
	return hex.EncodeToString(sum[:])
}
