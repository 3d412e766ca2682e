package ledger

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strings"
)

// Hiding commitments.
//
// A plain SHA-256 of guessable data (one IP address, a domain, a phone
// number in a handover's terms) is reversed by hashing a dictionary, so a
// version-2 entry holds, for each digest, a commitment keyed by a secret
// that only the parties entitled to the data receive:
//
//	log key      32 random bytes, one per log, kept by the server (Store.CommitmentKey)
//	entry key    HMAC-SHA256(log key, "parley/ledger/entry-key/v2" 0x00 nonce)
//	commitment   "hmac-sha256:" hex(HMAC-SHA256(entry key,
//	                 "parley/ledger/commitment/v2" 0x00 role 0x00 digest))
//
// where nonce is the entry's public random Nonce and digest the plain
// "sha256:<hex>" the entry's builder computed (as version 1 wrote it). The
// server hands an entry's key to the parties entitled to the data it binds
// (internal/exchange decides who), and only for that entry: one key opens
// nothing else, and without it a reader cannot test a guess.

// NonceSize is the number of random bytes in an entry's Nonce.
const NonceSize = 16

// CommitmentKeySize is the size of a log's commitment key and of an entry key.
const CommitmentKeySize = 32

const entryKeyLabel = "parley/ledger/entry-key/v2\x00"

// EntryKey derives the opening key of the entry with nonce from the log's
// commitment key.
func EntryKey(logKey []byte, nonce string) []byte {
	m := hmac.New(sha256.New, logKey)
	m.Write([]byte(entryKeyLabel))
	m.Write([]byte(nonce))
	return m.Sum(nil)
}

// Commit returns the hiding commitment under entryKey of the plain digest
// ("sha256:<64 hex>") that role binds.
func Commit(entryKey []byte, role, digest string) (string, error) {
	if h, ok := strings.CutPrefix(digest, digestPrefix); !ok || !validHex(h, 64) {
		return "", fmt.Errorf("digest %q = %q is not sha256:<64 lowercase hex>: %w", role, digest, ErrInvalid)
	}
	return commit(entryKey, role, digest), nil
}

func commit(entryKey []byte, role, digest string) string {
	m := hmac.New(sha256.New, entryKey)
	m.Write([]byte("parley/ledger/commitment/v2\x00"))
	m.Write([]byte(role))
	m.Write([]byte{0})
	m.Write([]byte(digest))
	return commitmentPrefix + hex.EncodeToString(m.Sum(nil))
}

// Seal returns e as a version-2 entry: a fresh random Nonce, and each
// plain digest replaced by its commitment under the entry key derived from
// logKey. e must be unsealed (V 0 or 2, no Nonce, "sha256:" digests).
func (e Entry) Seal(logKey []byte) (Entry, error) {
	s, err := newSealer(logKey)
	if err != nil {
		return Entry{}, err
	}
	var n [NonceSize]byte
	if _, err := rand.Read(n[:]); err != nil {
		return Entry{}, fmt.Errorf("entry nonce: %w", err)
	}
	return s.seal(e, n[:])
}

// sealer seals many entries under one log key: the key's HMAC state is
// computed once (Append seals a whole batch with one sealer).
type sealer struct {
	kdf hash.Hash // HMAC-SHA256 keyed by the log key
}

func newSealer(logKey []byte) (*sealer, error) {
	if len(logKey) != CommitmentKeySize {
		return nil, fmt.Errorf("commitment key of %d bytes, want %d: %w", len(logKey), CommitmentKeySize, ErrInvalid)
	}
	return &sealer{kdf: hmac.New(sha256.New, logKey)}, nil
}

func (s *sealer) seal(e Entry, nonce []byte) (Entry, error) {
	if (e.V != 0 && e.V != EntryVersion) || e.Nonce != "" {
		return Entry{}, fmt.Errorf("entry %s %s (version %d) is already sealed or of an old version; only new entries are sealed: %w", e.Kind, e.Subject, e.V, ErrInvalid)
	}
	e.V, e.Nonce = EntryVersion, hex.EncodeToString(nonce)
	if len(e.Digests) > 0 {
		s.kdf.Reset()
		s.kdf.Write([]byte(entryKeyLabel))
		s.kdf.Write([]byte(e.Nonce))
		key := s.kdf.Sum(nil)
		plain := e.Digests
		e.Digests = make(map[string]string, len(plain))
		for role, d := range plain {
			c, err := Commit(key, role, d)
			if err != nil {
				return Entry{}, fmt.Errorf("entry %s %s: %w", e.Kind, e.Subject, err)
			}
			e.Digests[role] = c
		}
	}
	return e, nil
}

// Open checks that the entry binds, under entryKey, exactly the plain
// digests given (role → "sha256:<hex>"): every role the entry holds must
// be given and match. A version-1 entry is compared digest by digest.
// It fails with ErrCommitment naming the first role that does not match.
func (e Entry) Open(entryKey []byte, digests map[string]string) error {
	if len(digests) != len(e.Digests) {
		return fmt.Errorf("entry %s %s binds %d digest(s), %d given: %w", e.Kind, e.Subject, len(e.Digests), len(digests), ErrCommitment)
	}
	for _, role := range sortedKeys(e.Digests) {
		want, ok := digests[role]
		got := e.Digests[role]
		if ok && e.V == EntryVersion {
			want = commit(entryKey, role, want)
		}
		if !ok || !hmac.Equal([]byte(got), []byte(want)) {
			return fmt.Errorf("entry %s %s: %q does not open to the digest given: %w", e.Kind, e.Subject, role, ErrCommitment)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
