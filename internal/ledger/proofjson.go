package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// MaxProofHashes bounds a proof read from untrusted input: an inclusion
// proof has at most 63 hashes and a consistency proof at most 2·63.
const MaxProofHashes = 128

// InclusionProofJSON is the JSON body of GET {prefix}/proof/inclusion.
type InclusionProofJSON struct {
	Index  int64       `json:"index"`
	Size   int64       `json:"size"`
	Hashes []tlog.Hash `json:"hashes"`
}

// ConsistencyProofJSON is the JSON body of GET {prefix}/proof/consistency.
type ConsistencyProofJSON struct {
	From   int64       `json:"from"`
	To     int64       `json:"to"`
	Hashes []tlog.Hash `json:"hashes"`
}

// ParseProof extracts the "hashes" array of a proof JSON body (either kind),
// insisting on base64 32-byte hashes and at most MaxProofHashes of them.
// The caller checks the proof with CheckInclusion or CheckConsistency,
// which catch a proof of the wrong length with ErrTruncatedProof.
func ParseProof(data []byte) ([]tlog.Hash, error) {
	if len(data) > 64<<10 {
		return nil, fmt.Errorf("proof of %d bytes: %w", len(data), ErrMalformed)
	}
	var doc struct {
		Hashes *[]json.RawMessage `json:"hashes"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil || doc.Hashes == nil {
		return nil, fmt.Errorf("proof: %w", ErrMalformed)
	}
	if dec.More() {
		return nil, fmt.Errorf("proof: trailing data: %w", ErrMalformed)
	}
	if len(*doc.Hashes) > MaxProofHashes {
		return nil, fmt.Errorf("proof with %d hashes: %w", len(*doc.Hashes), ErrMalformed)
	}
	out := make([]tlog.Hash, len(*doc.Hashes))
	for i, raw := range *doc.Hashes {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("proof hash %d: %w", i, ErrMalformed)
		}
		h, err := parseHash(s)
		if err != nil {
			return nil, fmt.Errorf("proof hash %d: %w", i, err)
		}
		out[i] = h
	}
	return out, nil
}
