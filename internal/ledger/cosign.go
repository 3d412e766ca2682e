package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the C2SP signed-note signature type of Ed25519
// tlog-cosignature/v1 keys.
const algCosignatureV1 = 0x04

// cosignatureLen is the decoded signature: u64 timestamp || Ed25519 signature.
const cosignatureLen = 8 + ed25519.SignatureSize

// MaxCosignatureLine bounds one cosignature line from a party.
const MaxCosignatureLine = 1 << 10

func cosignKeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// cosignedMessage is what a cosignature/v1 signs: a header, the timestamp
// and the whole checkpoint body.
func cosignedMessage(body []byte, ts uint64) []byte {
	msg := fmt.Appendf(nil, "cosignature/v1\ntime %d\n", ts)
	return append(msg, body...)
}

// GenerateWitnessKey returns a new Ed25519 tlog-cosignature/v1 key pair for
// a witness named name: skey "PRIVATE+KEY+<name>+<hash>+<base64(0x04||seed)>"
// and vkey "<name>+<hash>+<base64(0x04||pub)>" (a C2SP vkey).
func GenerateWitnessKey(name string) (skey, vkey string, err error) {
	if !validKeyName(name) {
		return "", "", fmt.Errorf("witness name %q: %w", name, ErrInvalid)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	hash := cosignKeyHash(name, pub)
	vkey = fmt.Sprintf("%s+%08x+%s", name, hash, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, hash, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, priv.Seed()...)))
	return skey, vkey, nil
}

// CosignatureVerifier is a note.Verifier for one witness's
// tlog-cosignature/v1 signatures, so cosigned checkpoints can be checked
// with note.Open.
type CosignatureVerifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

// NewCosignatureVerifier parses a witness vkey (see GenerateWitnessKey).
func NewCosignatureVerifier(vkey string) (*CosignatureVerifier, error) {
	name, rest, _ := strings.Cut(vkey, "+")
	hash16, key64, _ := strings.Cut(rest, "+")
	hash, err1 := strconv.ParseUint(hash16, 16, 32)
	key, err2 := base64.StdEncoding.DecodeString(key64)
	if len(hash16) != 8 || err1 != nil || err2 != nil || !validKeyName(name) ||
		len(key) != 1+ed25519.PublicKeySize || key[0] != algCosignatureV1 {
		return nil, fmt.Errorf("witness key: %w", ErrMalformed)
	}
	pub := ed25519.PublicKey(key[1:])
	if uint32(hash) != cosignKeyHash(name, pub) {
		return nil, fmt.Errorf("witness key %s: key hash mismatch: %w", name, ErrMalformed)
	}
	return &CosignatureVerifier{name: name, hash: uint32(hash), pub: pub}, nil
}

// Name returns the witness name.
func (v *CosignatureVerifier) Name() string { return v.name }

// KeyHash returns the key ID.
func (v *CosignatureVerifier) KeyHash() uint32 { return v.hash }

// Verify reports whether sig (timestamp || signature) cosigns msg.
func (v *CosignatureVerifier) Verify(msg, sig []byte) bool {
	ts, ok := cosignatureTime(sig)
	if !ok {
		return false
	}
	return ed25519.Verify(v.pub, cosignedMessage(msg, ts), sig[8:])
}

func cosignatureTime(sig []byte) (uint64, bool) {
	if len(sig) != cosignatureLen {
		return 0, false
	}
	ts := binary.BigEndian.Uint64(sig)
	return ts, ts <= math.MaxInt64
}

// cosigner is a note.Signer producing cosignature/v1 signatures at a fixed time.
type cosigner struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
	ts   uint64
}

func (s *cosigner) Name() string    { return s.name }
func (s *cosigner) KeyHash() uint32 { return s.hash }
func (s *cosigner) Sign(msg []byte) ([]byte, error) {
	sig := binary.BigEndian.AppendUint64(nil, s.ts)
	return append(sig, ed25519.Sign(s.priv, cosignedMessage(msg, s.ts))...), nil
}

func parseWitnessSecret(skey string) (*cosigner, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" || !validKeyName(parts[2]) {
		return nil, fmt.Errorf("witness private key: %w", ErrInvalid)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algCosignatureV1 {
		return nil, fmt.Errorf("witness private key: %w", ErrInvalid)
	}
	priv := ed25519.NewKeyFromSeed(raw[1:])
	hash := cosignKeyHash(parts[2], priv.Public().(ed25519.PublicKey))
	if fmt.Sprintf("%08x", hash) != parts[3] {
		return nil, fmt.Errorf("witness private key: key hash mismatch: %w", ErrInvalid)
	}
	return &cosigner{name: parts[2], hash: hash, priv: priv}, nil
}

// Cosignature is a parsed note signature line "— <name> <base64>".
type Cosignature struct {
	Name    string
	KeyHash uint32
	Time    time.Time // zero unless the signature is cosignature/v1 shaped
	Sig     []byte    // the signature after the key hash
}

// ParseSignatureLine parses one note signature line (with or without the
// trailing newline). It checks the shape only; Verify checks the signature.
func ParseSignatureLine(line []byte) (Cosignature, error) {
	if len(line) > MaxCosignatureLine {
		return Cosignature{}, fmt.Errorf("signature line of %d bytes: %w", len(line), ErrMalformed)
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	rest, ok := bytes.CutPrefix(line, []byte("— "))
	// Same character rules as note.Open: UTF-8, no control characters.
	if !ok || !utf8.Valid(rest) || bytes.ContainsFunc(rest, unicode.IsControl) {
		return Cosignature{}, fmt.Errorf("signature line does not start with an em dash: %w", ErrMalformed)
	}
	name, b64, ok := strings.Cut(string(rest), " ")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || !validKeyName(name) || len(raw) < 5 {
		return Cosignature{}, fmt.Errorf("signature line: %w", ErrMalformed)
	}
	c := Cosignature{Name: name, KeyHash: binary.BigEndian.Uint32(raw), Sig: raw[4:]}
	if ts, ok := cosignatureTime(c.Sig); ok {
		c.Time = time.Unix(int64(ts), 0).UTC()
	}
	return c, nil
}

// VerifyCosignatureLine checks that line is a valid tlog-cosignature/v1 by
// the witness with vkey over the checkpoint body (the note text, without
// signatures). It returns the parsed cosignature. ErrMalformed for a line
// that does not parse, ErrBadSignature for one that does not verify.
func VerifyCosignatureLine(body, line []byte, vkey string) (Cosignature, error) {
	c, err := ParseSignatureLine(line)
	if err != nil {
		return Cosignature{}, err
	}
	v, err := NewCosignatureVerifier(vkey)
	if err != nil {
		return Cosignature{}, fmt.Errorf("witness %s: %w", c.Name, err)
	}
	if c.Name != v.Name() || c.KeyHash != v.KeyHash() || !v.Verify(body, c.Sig) {
		return Cosignature{}, fmt.Errorf("cosignature by %s: %w", c.Name, ErrBadSignature)
	}
	return c, nil
}

// cosignLine returns the witness's cosignature line for the checkpoint
// body at time now. It is the signing half of Witness.AddCheckpoint, kept
// separate for tools that cosign out of band.
func cosignLine(s *cosigner, body []byte, now time.Time) ([]byte, error) {
	c := *s
	c.ts = uint64(max(now.Unix(), 0))
	signed, err := note.Sign(&note.Note{Text: string(body)}, &c)
	if err != nil {
		return nil, fmt.Errorf("cosign: %w", err)
	}
	// note.Sign returns text, a blank line, then our one signature line.
	return signed[len(body)+1:], nil
}

// WitnessVerifierKey returns the vkey of a witness private key (as
// GenerateWitnessKey writes both).
func WitnessVerifierKey(skey string) (string, error) {
	s, err := parseWitnessSecret(skey)
	if err != nil {
		return "", err
	}
	pub := s.priv.Public().(ed25519.PublicKey)
	return fmt.Sprintf("%s+%08x+%s", s.name, s.hash, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...))), nil
}
