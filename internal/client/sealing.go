package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/parley-cti/parley/internal/agreement"
)

// ErrSealingKey: the client refuses to seal to the sealing key the server
// offers for a counterpart, because it is not bound to the signing key the
// agreement names for that counterpart (no valid signature, no verified
// rotation chain) or contradicts the key pinned on first use.
var ErrSealingKey = errors.New("refusing to seal: the counterpart's sealing key cannot be trusted")

// PinnedKey is a counterpart's sealing key as first seen and verified.
type PinnedKey struct {
	KeyID            string `json:"key_id"`
	SealingRecipient string `json:"sealing_recipient"`
}

// SealingPins keeps counterparts' sealing keys pinned on first use.
// Pinned returns ok false when nothing is pinned for party.
type SealingPins interface {
	Pinned(party string) (k PinnedKey, ok bool, err error)
	Pin(party string, k PinnedKey) error
}

// PinFile is SealingPins in a JSON file ({"party--…": {key_id,
// sealing_recipient}}), kept in the CLI profile's state directory.
type PinFile string

func (f PinFile) load() (map[string]PinnedKey, error) {
	m := map[string]PinnedKey{}
	b, err := os.ReadFile(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	return m, nil
}

// Pinned implements SealingPins.
func (f PinFile) Pinned(party string) (PinnedKey, bool, error) {
	m, err := f.load()
	if err != nil {
		return PinnedKey{}, false, err
	}
	k, ok := m[party]
	return k, ok, nil
}

// Pin implements SealingPins. It writes through a temporary file and a
// rename, so a crash never loses the pins (which would reopen first use).
func (f PinFile) Pin(party string, k PinnedKey) error {
	m, err := f.load()
	if err != nil {
		return err
	}
	m[party] = k
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(string(f))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".pins-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), string(f))
}

// SealingRecipient returns the age recipient to seal to for party under
// agreementID, refusing (ErrSealingKey) unless every link from the
// agreement to the key checks out on this machine:
//
//   - the agreement document names party's signing key id; when mine (the
//     caller's keys, optional) signed the agreement, one of its signatures
//     must be on this very document, so the server cannot have swapped
//     the key id;
//   - party's current key is that key, or reached from it by rotations
//     each signed by the key before;
//   - the current key's sealing recipient is signed by its signing key
//     (agreement.VerifySealingKey);
//   - pins (optional): a key pinned for party earlier must be the current
//     one or lie on the verified rotation chain before it; the current key
//     is then pinned.
func (c *Client) SealingRecipient(ctx context.Context, agreementID, party string, mine *agreement.PrivateKeys, pins SealingPins) (string, error) {
	refuse := func(format string, a ...any) (string, error) {
		return "", fmt.Errorf("%w: %s", ErrSealingKey, fmt.Sprintf(format, a...))
	}
	ag, err := c.Agreement(ctx, agreementID)
	if err != nil {
		return "", err
	}
	var doc agreement.Document
	if err := json.Unmarshal(ag.Document, &doc); err != nil {
		return refuse("agreement %s: the server's document does not parse: %v", agreementID, err)
	}
	named, _, err := doc.Party(party)
	if err != nil {
		return refuse("%v", err)
	}
	if mine != nil {
		// If the caller's current key signed this agreement, one of its
		// signatures must be on exactly the document the server shows.
		sum := doc.Hash()
		hash := hex.EncodeToString(sum[:])
		signed, onThis := false, false
		for _, sig := range ag.Signatures {
			if sig.KeyID != mine.KeyID() {
				continue
			}
			signed = true
			onThis = onThis || (sig.DocumentHash == hash && agreement.Verify(mine.Public(), sig) == nil)
		}
		if signed && !onThis {
			return refuse("agreement %s as the server shows it is not the document you signed", agreementID)
		}
	}
	keys, err := c.PartyKeys(ctx, party)
	if err != nil {
		return "", err
	}
	// The chain of keys, oldest first, each linked to the one before by a
	// rotation it signed. A broken link cuts the chain there.
	start := 0
	for i := 1; i < len(keys); i++ {
		if err := verifyLink(keys[i-1], keys[i]); err != nil {
			start = i
		}
	}
	chain := keys[start:]
	if len(chain) == 0 || chain[len(chain)-1].ValidUntil != "" {
		return refuse("party %s has no current key", party)
	}
	at := slices.IndexFunc(chain, func(k Key) bool { return k.Keys.KeyID == named.KeyID })
	if at < 0 {
		return refuse("the server's current key for %s is not the key %s agreement %s names, nor reached from it by signed rotations", party, named.KeyID, agreementID)
	}
	cur := chain[len(chain)-1].Keys
	if err := agreement.VerifySealingKey(cur); err != nil {
		return refuse("%s's key %s: %v", party, cur.KeyID, err)
	}
	if pins == nil {
		return cur.SealingRecipient, nil
	}
	pinned, ok, err := pins.Pinned(party)
	if err != nil {
		return "", err
	}
	if ok {
		i := slices.IndexFunc(chain, func(k Key) bool { return k.Keys.KeyID == pinned.KeyID })
		switch {
		case i < 0:
			return refuse("%s's key changed from the pinned %s to %s without a rotation signed by the pinned key", party, pinned.KeyID, cur.KeyID)
		case i == len(chain)-1 && pinned.SealingRecipient != cur.SealingRecipient:
			return refuse("%s's key %s now has sealing recipient %s, not the pinned %s", party, cur.KeyID, cur.SealingRecipient, pinned.SealingRecipient)
		}
	}
	if err := pins.Pin(party, PinnedKey{KeyID: cur.KeyID, SealingRecipient: cur.SealingRecipient}); err != nil {
		return "", fmt.Errorf("pinning %s's sealing key: %w", party, err)
	}
	return cur.SealingRecipient, nil
}

// verifyLink checks that next replaced prev by a rotation prev's key signed,
// naming exactly next's keys.
func verifyLink(prev, next Key) error {
	if len(next.Rotation) == 0 {
		return errors.New("no rotation")
	}
	var rot agreement.KeyRotation
	if err := json.Unmarshal(next.Rotation, &rot); err != nil {
		return err
	}
	if err := agreement.VerifyRotation(prev.Keys, rot); err != nil {
		return err
	}
	if rot.NewKeys.KeyID != next.Keys.KeyID || rot.NewKeys.SealingRecipient != next.Keys.SealingRecipient {
		return errors.New("the rotation names other keys")
	}
	return nil
}
