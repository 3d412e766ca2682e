package agreement

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/canonjson"
	"github.com/parley-cti/parley/internal/fault"
)

// Gradual release of a handover between two nodes without an escrow node
// (docs/federation.md): each side splits its bundle into chunks sealed to
// the other, commits up front to every chunk's SHA-256 and size, and the
// nodes release the chunks alternately, each only once the recipient
// confirmed the one before. The commitment and each confirmation (or
// rejection) are the party's own signed statements, so the other node
// checks them against the key it knows for that party rather than taking
// its node's word. Each has its own context string: no statement of one
// kind can stand in for another.

// Bounds of a gradual handover.
const (
	MinChunks = 2
	MaxChunks = 64
)

const (
	commitmentContext = "parley gradual commitment v1"
	chunkVerdictCtx   = "parley gradual chunk verdict v1"
)

// ChunkRef is one committed chunk: the SHA-256 (lowercase hex) and size of
// its sealed bytes.
type ChunkRef struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// ChunkCommitment is a depositor's signed commitment to the chunks of its
// deposit in a gradual handover, in release order.
type ChunkCommitment struct {
	Handover  string     `json:"handover"`
	Depositor string     `json:"depositor"`
	KeyID     string     `json:"key_id"`
	Chunks    []ChunkRef `json:"chunks"`
	SignedAt  time.Time  `json:"signed_at"`
	Sig       []byte     `json:"sig"`
}

func (c ChunkCommitment) check() error {
	switch {
	case !validText(c.Handover) || !strings.HasPrefix(c.Handover, "handover--"):
		return fmt.Errorf("handover %q is not handover--<uuid>", c.Handover)
	case !validText(c.Depositor):
		return fmt.Errorf("depositor must be 1 to %d printable characters", maxTextLen)
	case !validKeyID(c.KeyID):
		return fmt.Errorf("key_id %q is not 16 lowercase hex digits", c.KeyID)
	case c.SignedAt.IsZero():
		return fmt.Errorf("signed_at is required")
	case len(c.Chunks) < MinChunks || len(c.Chunks) > MaxChunks:
		return fmt.Errorf("a commitment names %d to %d chunks, not %d", MinChunks, MaxChunks, len(c.Chunks))
	}
	for i, ch := range c.Chunks {
		if !validSHA256(ch.SHA256) || ch.Size <= 0 {
			return fmt.Errorf("chunks[%d] needs a sha256 (64 lowercase hex digits) and a positive size", i)
		}
	}
	return nil
}

// Canonical is the RFC 8785 encoding the signature covers.
func (c ChunkCommitment) Canonical() ([]byte, error) {
	chunks := make([]any, len(c.Chunks))
	for i, ch := range c.Chunks {
		chunks[i] = map[string]any{"sha256": ch.SHA256, "size": ch.Size}
	}
	return canonjson.Marshal(map[string]any{"context": commitmentContext, "handover": c.Handover, "depositor": c.Depositor,
		"key_id": c.KeyID, "chunks": chunks, "signed_at": c.SignedAt.UTC().Format(time.RFC3339Nano)})
}

// SignCommitment signs c with priv (filling KeyID). Errors wrap
// ErrBadSignature (a malformed commitment).
func SignCommitment(priv *PrivateKeys, c ChunkCommitment) (ChunkCommitment, error) {
	c.KeyID, c.Sig, c.SignedAt = priv.KeyID(), nil, c.SignedAt.UTC()
	if err := c.check(); err != nil {
		return ChunkCommitment{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	msg, err := c.Canonical()
	if err != nil {
		return ChunkCommitment{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	c.Sig = ed25519.Sign(priv.Signing, msg)
	return c, nil
}

// VerifyCommitment checks that c is well formed and signed by the key it
// names, which keys must vouch for as c.Depositor's at SignedAt. Errors
// wrap ErrBadSignature, ErrNotParty or what keys returns.
func VerifyCommitment(keys KeyResolver, c ChunkCommitment) error {
	if err := c.check(); err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	return verifyStatement(keys, c.KeyID, c.Depositor, c.SignedAt, c.Canonical, c.Sig,
		func() string { return fmt.Sprintf("chunk commitment of %s in %s", c.Depositor, c.Handover) })
}

// Chunk verdict actions.
const (
	ChunkConfirm = "confirm" // opened, valid: release the next
	ChunkReject  = "reject"  // garbage: stop the exchange
)

// ChunkVerdict is a recipient's signed confirmation or rejection of one
// chunk of the other side's deposit.
type ChunkVerdict struct {
	Action    string    `json:"action"`
	Handover  string    `json:"handover"`
	Depositor string    `json:"depositor"` // whose chunk
	Recipient string    `json:"recipient"` // who opened it and signs
	Index     int       `json:"index"`     // 1-based
	SHA256    string    `json:"sha256"`    // of the chunk's sealed bytes
	Reason    string    `json:"reason,omitempty"`
	KeyID     string    `json:"key_id"`
	SignedAt  time.Time `json:"signed_at"`
	Sig       []byte    `json:"sig"`
}

func (v ChunkVerdict) check() error {
	switch {
	case v.Action != ChunkConfirm && v.Action != ChunkReject:
		return fmt.Errorf("action %q is neither %s nor %s", v.Action, ChunkConfirm, ChunkReject)
	case !validText(v.Handover) || !strings.HasPrefix(v.Handover, "handover--"):
		return fmt.Errorf("handover %q is not handover--<uuid>", v.Handover)
	case !validText(v.Depositor) || !validText(v.Recipient) || v.Depositor == v.Recipient:
		return fmt.Errorf("depositor and recipient are two parties")
	case v.Index < 1 || v.Index > MaxChunks:
		return fmt.Errorf("index %d is not 1 to %d", v.Index, MaxChunks)
	case !validSHA256(v.SHA256):
		return fmt.Errorf("sha256 is not 64 lowercase hex digits")
	case !validKeyID(v.KeyID):
		return fmt.Errorf("key_id %q is not 16 lowercase hex digits", v.KeyID)
	case v.SignedAt.IsZero():
		return fmt.Errorf("signed_at is required")
	case len(v.Reason) > MaxReasonLen:
		return fmt.Errorf("reason is longer than %d bytes", MaxReasonLen)
	case v.Action == ChunkReject && strings.TrimSpace(v.Reason) == "":
		return fmt.Errorf("a rejection needs a reason: say what is wrong with the chunk")
	}
	return nil
}

// Canonical is the RFC 8785 encoding the signature covers.
func (v ChunkVerdict) Canonical() ([]byte, error) {
	m := map[string]any{"context": chunkVerdictCtx, "action": v.Action, "handover": v.Handover, "depositor": v.Depositor,
		"recipient": v.Recipient, "index": v.Index, "sha256": v.SHA256, "key_id": v.KeyID,
		"signed_at": v.SignedAt.UTC().Format(time.RFC3339Nano)}
	if v.Reason != "" {
		m["reason"] = v.Reason
	}
	return canonjson.Marshal(m)
}

// SignChunkVerdict signs v with priv (filling KeyID). Errors wrap
// ErrBadSignature (a malformed verdict).
func SignChunkVerdict(priv *PrivateKeys, v ChunkVerdict) (ChunkVerdict, error) {
	v.KeyID, v.Sig, v.SignedAt = priv.KeyID(), nil, v.SignedAt.UTC()
	if err := v.check(); err != nil {
		return ChunkVerdict{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	msg, err := v.Canonical()
	if err != nil {
		return ChunkVerdict{}, fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	v.Sig = ed25519.Sign(priv.Signing, msg)
	return v, nil
}

// VerifyChunkVerdict checks that v is well formed and signed by the key it
// names, which keys must vouch for as v.Recipient's at SignedAt. Errors
// wrap ErrBadSignature, ErrNotParty or what keys returns.
func VerifyChunkVerdict(keys KeyResolver, v ChunkVerdict) error {
	if err := v.check(); err != nil {
		return fault.Errorf("%w: %v", ErrBadSignature, err)
	}
	return verifyStatement(keys, v.KeyID, v.Recipient, v.SignedAt, v.Canonical, v.Sig,
		func() string {
			return fmt.Sprintf("%s of chunk %d of %s in %s", v.Action, v.Index, v.Depositor, v.Handover)
		})
}

func validSHA256(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
