package escrow

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/store"
)

// MaxManifest bounds a manifest or dispute statement.
const MaxManifest = 16 << 10

// currentKey returns partyID's current public keys, read in tx.
func currentKey(ctx context.Context, tx store.Handle, partyID string) (agreement.PublicKeys, error) {
	ks, err := tx.Keys().ListByParty(ctx, partyID)
	if err != nil {
		return agreement.PublicKeys{}, err
	}
	for i := len(ks) - 1; i >= 0; i-- {
		if ks[i].ValidUntil.IsZero() {
			var pub agreement.PublicKeys
			if err := json.Unmarshal(ks[i].Public, &pub); err != nil {
				return agreement.PublicKeys{}, fault.Errorf("stored key %s: %w", ks[i].KeyID, err)
			}
			return pub, nil
		}
	}
	return agreement.PublicKeys{}, fault.Errorf("%w: %s has registered no keys to sign with", ErrInvalid, partyID)
}

// checkManifest verifies a deposit's signed manifest: it names this case,
// the depositor and the bytes deposited, and the depositor's current key
// signed it; for a plain bundle, it also describes the bundle exactly (the
// server can check that; for a sealed one only the recipient can).
func checkManifest(ctx context.Context, tx store.Handle, raw []byte, id, depositor string, sum [32]byte, plain []byte) error {
	if len(raw) > MaxManifest {
		return fault.Errorf("%w: the manifest is %d bytes, more than %d", ErrInvalid, len(raw), MaxManifest)
	}
	var m agreement.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fault.Errorf("%w: the manifest is not JSON: %v", ErrInvalid, err)
	}
	switch {
	case m.Handover != id:
		return fault.Errorf("%w: the manifest is for handover %q, not %s", ErrInvalid, m.Handover, id)
	case m.Depositor != depositor:
		return fault.Errorf("%w: the manifest names depositor %q, not you", ErrInvalid, m.Depositor)
	case m.ContentSHA256 != hex.EncodeToString(sum[:]):
		return fault.Errorf("%w: the manifest is for content with SHA-256 %q, not the %x deposited", ErrInvalid, m.ContentSHA256, sum)
	}
	pub, err := currentKey(ctx, tx, depositor)
	if err != nil {
		return err
	}
	if err := agreement.VerifyManifest(pub, m); err != nil {
		return fault.Errorf("%w: the manifest is not signed by your current key: %v", ErrInvalid, err)
	}
	if plain != nil {
		got, err := agreement.SummarizeBundle(plain)
		if err != nil {
			return fault.Errorf("%w: %v", ErrInvalid, err)
		}
		if d := m.BundleSummary.Diff(got); d != "" {
			return fault.Errorf("%w: the manifest does not describe the bundle: %s", ErrInvalid, d)
		}
	}
	return nil
}

// checkDispute verifies a signed dispute statement against the step it
// accompanies.
func checkDispute(ctx context.Context, tx store.Handle, raw []byte, id, disputer, depositor, text string, now time.Time) error {
	if len(raw) > MaxManifest {
		return fault.Errorf("%w: the dispute statement is %d bytes, more than %d", ErrInvalid, len(raw), MaxManifest)
	}
	var d agreement.Dispute
	if err := json.Unmarshal(raw, &d); err != nil {
		return fault.Errorf("%w: the dispute statement is not JSON: %v", ErrInvalid, err)
	}
	switch {
	case d.Handover != id || d.Disputer != disputer || d.Depositor != depositor:
		return fault.Errorf("%w: the dispute statement names handover %q, disputer %q and depositor %q, not %s, you and %s", ErrInvalid,
			d.Handover, d.Disputer, d.Depositor, id, depositor)
	case d.Reason != text:
		return fault.Errorf("%w: the dispute statement's reason is not the dispute's text", ErrInvalid)
	case d.SignedAt.Sub(now) > 5*time.Minute || now.Sub(d.SignedAt) > 5*time.Minute:
		return fault.Errorf("%w: the dispute statement's signed_at %s is more than 5 minutes from the server's clock", ErrInvalid, d.SignedAt.Format(time.RFC3339))
	}
	pub, err := currentKey(ctx, tx, disputer)
	if err != nil {
		return err
	}
	if err := agreement.VerifyDispute(pub, d); err != nil {
		return fault.Errorf("%w: the dispute statement is not signed by your current key: %v", ErrInvalid, err)
	}
	return nil
}
