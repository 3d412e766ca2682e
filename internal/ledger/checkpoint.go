package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxNoteSize bounds a signed checkpoint note with its cosignatures; notes
// are untrusted input for verifiers and witnesses.
const MaxNoteSize = 64 << 10

// Checkpoint is a C2SP tlog-checkpoint body: the log's origin, its size and
// root hash, and optional extension lines.
type Checkpoint struct {
	Origin     string
	Size       int64
	Hash       tlog.Hash
	Extensions []string
}

// Marshal returns the checkpoint body, each line ending in a newline.
func (c Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Hash[:]))
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseCheckpoint parses a checkpoint body (the note text, without
// signatures). It accepts only the canonical form Marshal produces.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	if len(text) > MaxNoteSize || len(text) == 0 || text[len(text)-1] != '\n' {
		return Checkpoint{}, fmt.Errorf("checkpoint: not newline-terminated or too large: %w", ErrMalformed)
	}
	if !utf8.Valid(text) {
		return Checkpoint{}, fmt.Errorf("checkpoint: invalid UTF-8: %w", ErrMalformed)
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("checkpoint: %d lines, want at least 3: %w", len(lines), ErrMalformed)
	}
	for i, l := range lines {
		if l == "" || strings.IndexFunc(l, unicode.IsControl) >= 0 {
			return Checkpoint{}, fmt.Errorf("checkpoint line %d is empty or has control characters: %w", i+1, ErrMalformed)
		}
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("checkpoint size %q: %w", lines[1], ErrMalformed)
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize || base64.StdEncoding.EncodeToString(h) != lines[2] {
		return Checkpoint{}, fmt.Errorf("checkpoint root hash %q: %w", lines[2], ErrMalformed)
	}
	c := Checkpoint{Origin: lines[0], Size: size}
	copy(c.Hash[:], h)
	if len(lines) > 3 {
		c.Extensions = lines[3:]
	}
	return c, nil
}

// Signer signs checkpoints with the log's Ed25519 note key. The key name is
// the log's origin.
type Signer struct {
	ns   note.Signer
	nv   note.Verifier
	vkey string
}

// GenerateSignerKey returns a new note key pair whose name is origin, in the
// x/mod/sumdb/note text encodings: skey is secret, vkey is what verifiers and
// witnesses are configured with.
func GenerateSignerKey(origin string) (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, origin)
}

// NewSigner loads a signer from a note private key (see GenerateSignerKey).
func NewSigner(skey string) (*Signer, error) {
	ns, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("log signing key: %w: %w", ErrInvalid, err)
	}
	// Derive the verifier key so the server can publish it.
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return nil, fmt.Errorf("log signing key: %w", ErrInvalid)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, fmt.Errorf("log signing key is not Ed25519: %w", ErrInvalid)
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(ns.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("log verifier key: %w: %w", ErrInvalid, err)
	}
	nv, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("log verifier key: %w: %w", ErrInvalid, err)
	}
	return &Signer{ns: ns, nv: nv, vkey: vkey}, nil
}

// Origin returns the log's origin line (the key name).
func (s *Signer) Origin() string { return s.ns.Name() }

// Verifier returns the note verifier matching the signer.
func (s *Signer) Verifier() note.Verifier { return s.nv }

// VerifierKey returns the public verifier key to publish.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign returns c as a signed note. c.Origin must be the signer's origin.
func (s *Signer) Sign(c Checkpoint) ([]byte, error) {
	if c.Origin != s.Origin() {
		return nil, fmt.Errorf("sign checkpoint for %q with key %q: %w", c.Origin, s.Origin(), ErrInvalid)
	}
	return note.Sign(&note.Note{Text: string(c.Marshal())}, s.ns)
}

// NewCheckpoint signs and saves a checkpoint of the log's current size, in
// the caller's transaction. If the latest saved checkpoint already covers
// the current size it is returned unchanged: a log signs one head per size.
func NewCheckpoint(ctx context.Context, st Store, s *Signer) (Checkpoint, []byte, error) {
	size, err := st.LockedSize(ctx)
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("ledger size: %w", err)
	}
	switch lsize, lnote, err := st.LatestCheckpoint(ctx); {
	case err == nil && lsize == size:
		c, err := OpenCheckpoint(lnote, s.nv)
		return c, lnote, err
	case err != nil && !errors.Is(err, ErrNotFound):
		return Checkpoint{}, nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	root, err := TreeHash(ctx, st, size)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	c := Checkpoint{Origin: s.Origin(), Size: size, Hash: root}
	signed, err := s.Sign(c)
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("sign checkpoint %d: %w", size, err)
	}
	if err := st.SaveCheckpoint(ctx, size, signed); err != nil {
		return Checkpoint{}, nil, fmt.Errorf("save checkpoint %d: %w", size, err)
	}
	return c, signed, nil
}

// OpenCheckpoint verifies a signed checkpoint note against the log's note
// verifier and parses its body. Signature lines from other keys (witness
// cosignatures) are ignored. ErrBadSignature if the log's signature is
// missing or wrong or the origin is not the key's name; ErrMalformed if the
// note or body cannot be parsed.
func OpenCheckpoint(signed []byte, v note.Verifier) (Checkpoint, error) {
	if len(signed) > MaxNoteSize {
		return Checkpoint{}, fmt.Errorf("checkpoint note of %d bytes: %w", len(signed), ErrMalformed)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return Checkpoint{}, fmt.Errorf("checkpoint not signed by %s: %w", v.Name(), ErrBadSignature)
		}
		return Checkpoint{}, fmt.Errorf("checkpoint note: %w", ErrMalformed)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("checkpoint origin %q signed by key %q: %w", c.Origin, v.Name(), ErrBadSignature)
	}
	return c, nil
}

// VerifyCheckpoint is OpenCheckpoint with the verifier given as a vkey string.
func VerifyCheckpoint(signed []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("log verifier key: %w: %w", ErrInvalid, err)
	}
	return OpenCheckpoint(signed, v)
}

// WithCosignatures appends cosignature lines to a signed note, which is how
// checkpoints are served: clients that know a witness's key verify its line
// with note.Open, others ignore it.
func WithCosignatures(signed []byte, lines [][]byte) []byte {
	out := bytes.Clone(signed)
	for _, l := range lines {
		out = append(out, l...)
		if len(l) == 0 || l[len(l)-1] != '\n' {
			out = append(out, '\n')
		}
	}
	return out
}
