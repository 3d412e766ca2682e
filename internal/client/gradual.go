package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/wire"
)

// Gradual release of a handover between two nodes without an escrow node
// (docs/federation.md): the bundle goes in chunks, each a valid STIX
// bundle of its own sealed to the counterpart, with a signed commitment
// to their hashes; the other side's chunks arrive one at a time, each to
// be opened and confirmed (or rejected) before the next is released.

// SplitBundle splits a STIX bundle's objects into n bundles, in order, as
// evenly as it can: each chunk a bundle of its own that the recipient can
// validate alone. The bundle must hold at least n objects.
func SplitBundle(bundle []byte, n int) ([][]byte, error) {
	var b struct {
		Type    string            `json:"type"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil || b.Type != "bundle" {
		return nil, fmt.Errorf("not a STIX bundle")
	}
	if n < agreement.MinChunks || n > agreement.MaxChunks {
		return nil, fmt.Errorf("a bundle is split into %d to %d chunks, not %d", agreement.MinChunks, agreement.MaxChunks, n)
	}
	if len(b.Objects) < n {
		return nil, fmt.Errorf("the bundle has %d objects, fewer than the %d chunks", len(b.Objects), n)
	}
	out := make([][]byte, n)
	at := 0
	for i := range n {
		take := len(b.Objects) / n
		if i < len(b.Objects)%n {
			take++
		}
		part, err := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--" + newUUID(), "objects": b.Objects[at : at+take]})
		if err != nil {
			return nil, err
		}
		out[i], at = part, at+take
	}
	return out, nil
}

// DepositChunks seals each chunk to rcpt, signs the commitment to their
// hashes with keys as depositor, and deposits them in gradual case id.
func (c *Client) DepositChunks(ctx context.Context, keys *agreement.PrivateKeys, id, depositor, rcpt string, chunks [][]byte) (*Handover, Receipt, error) {
	in := wire.ChunkDeposit{Chunks: make([][]byte, len(chunks))}
	com := agreement.ChunkCommitment{Handover: id, Depositor: depositor, SignedAt: time.Now()}
	for i, plain := range chunks {
		ct, sum, err := Seal(plain, rcpt)
		if err != nil {
			return nil, 0, err
		}
		in.Chunks[i] = ct
		com.Chunks = append(com.Chunks, agreement.ChunkRef{SHA256: sum, Size: int64(len(ct))})
	}
	signed, err := agreement.SignCommitment(keys, com)
	if err != nil {
		return nil, 0, err
	}
	if in.Commitment, err = json.Marshal(signed); err != nil {
		return nil, 0, err
	}
	var h Handover
	rc, err := c.call(ctx, http.MethodPut, "/api/v1/handovers/"+url.PathEscape(id)+"/chunks", in, &h)
	return &h, rc, err
}

// FetchChunk downloads chunk index of a gradual case: the other side's
// once it arrived (from empty), or a named depositor's. It checks the
// bytes against the hash the server states.
func (c *Client) FetchChunk(ctx context.Context, id, from string, index int) (*FetchedDeposit, error) {
	path := "/api/v1/handovers/" + url.PathEscape(id) + "/chunks/" + strconv.Itoa(index)
	if from != "" {
		path += "?from=" + url.QueryEscape(from)
	}
	req, err := c.manageRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	d := &FetchedDeposit{Sealed: true}
	_, err = c.send(req, nil, func(resp *http.Response) error {
		d.Depositor = resp.Header.Get(wire.DepositorHeader)
		d.SHA256 = resp.Header.Get(wire.ContentSHA256Header)
		b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		d.Content = b
		return err
	})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(d.Content)
	if hex.EncodeToString(sum[:]) != d.SHA256 {
		return nil, fmt.Errorf("%w: the chunk's bytes do not match the SHA-256 the server states", ErrProtocol)
	}
	return d, nil
}

// SignChunkVerdict signs v (agreement.ChunkConfirm or ChunkReject, the
// latter with a reason; the recipient's verdict on chunk v.Index of
// v.Depositor, whose sealed bytes hash to v.SHA256) with keys, as of now.
func SignChunkVerdict(keys *agreement.PrivateKeys, v agreement.ChunkVerdict) (agreement.ChunkVerdict, error) {
	v.SignedAt = time.Now()
	return agreement.SignChunkVerdict(keys, v)
}

// JudgeChunk signs verdict v with keys (SignChunkVerdict) and records it.
func (c *Client) JudgeChunk(ctx context.Context, keys *agreement.PrivateKeys, v agreement.ChunkVerdict) (*Handover, Receipt, error) {
	v, err := SignChunkVerdict(keys, v)
	if err != nil {
		return nil, 0, err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, 0, err
	}
	var h Handover
	rc, err := c.call(ctx, http.MethodPost, "/api/v1/handovers/"+url.PathEscape(v.Handover)+"/chunk-verdicts", wire.ChunkVerdict{Verdict: raw}, &h)
	return &h, rc, err
}

// newUUID is a random (version 4) UUID, for a chunk's bundle id.
func newUUID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
