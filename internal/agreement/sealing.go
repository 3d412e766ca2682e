package agreement

import (
	"crypto/ed25519"

	"github.com/parley-cti/parley/internal/canonjson"
	"github.com/parley-cti/parley/internal/fault"
)

// Sealing key records (issue 12, finding 9). A party's sealing recipient is
// what others encrypt deposits to; a server that could swap it would read
// every sealed deposit. So the recipient travels signed by the party's own
// signing key — the key agreements name — in PublicKeys.SealingSig, and
// both the server (at registration and rotation) and the depositor's
// client (before sealing) check the signature.

// sealingStatement is what the signing key signs. The context string keeps
// it from ever verifying as an agreement signature or a rotation.
func sealingStatement(keyID, recipient string) ([]byte, error) {
	return canonjson.Marshal(map[string]any{
		"context":           "parley sealing key v1",
		"key_id":            keyID,
		"sealing_recipient": recipient,
	})
}

// SignSealingKey signs k's sealing recipient with k's signing key.
func SignSealingKey(k *PrivateKeys) []byte {
	msg, err := sealingStatement(k.KeyID(), k.Sealing.Recipient().String())
	if err != nil {
		panic(err) // two strings always encode
	}
	return ed25519.Sign(k.Signing, msg)
}

// VerifySealingKey checks that p's sealing recipient is signed by p's own
// signing key. It returns an error wrapping ErrBadSignature when the
// signature is missing or does not verify, and ErrInvalidKey when p is
// malformed.
func VerifySealingKey(p PublicKeys) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if len(p.SealingSig) == 0 {
		return fault.Errorf("%w: the sealing recipient of key %s is not signed by its signing key (sealing_sig missing)", ErrBadSignature, p.KeyID)
	}
	msg, err := sealingStatement(p.KeyID, p.SealingRecipient)
	if err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	if len(p.SealingSig) != ed25519.SignatureSize || !ed25519.Verify(p.SigningKey, msg, p.SealingSig) {
		return fault.Errorf("%w: the sealing recipient %s is not signed by key %s", ErrBadSignature, p.SealingRecipient, p.KeyID)
	}
	return nil
}
