package crosswitness

import (
	"encoding/base64"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/ledger"
)

// The node-to-node endpoints this package serves, each a signed POST with
// a JSON body (see docs/api.md).
const (
	PathAddCheckpoint = "/node/v1/witness/add-checkpoint"
	PathView          = "/node/v1/witness/view"
	PathCheckpoint    = "/node/v1/ledger/checkpoint"
	PathConsistency   = "/node/v1/ledger/consistency"
	PathInclusion     = "/node/v1/ledger/inclusion"
)

// Submission is the body of add-checkpoint: tlog-witness's request (old
// size, consistency proof, signed checkpoint) and the submitter's ledger
// key, which the signature on the request vouches for.
type Submission struct {
	LogKey     string   `json:"log_key"`
	OldSize    int64    `json:"old_size"`
	Proof      []string `json:"proof"` // base64 hashes
	Checkpoint string   `json:"checkpoint"`
}

// Cosigned is the answer to an accepted submission.
type Cosigned struct {
	Cosignature string `json:"cosignature"` // one note signature line
	Size        int64  `json:"size"`
	WitnessKey  string `json:"witness_key"` // the cosigner's tlog-cosignature/v1 key
	LogKey      string `json:"log_key"`     // the cosigner's own ledger key
}

// Refusal is the body of every refusal of this package's endpoints. Size
// is set with code size_conflict (the size to prove from) and rollback
// (the size cosigned before).
type Refusal struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Size    *int64 `json:"size,omitempty"`
}

// Current is the answer to a checkpoint fetch: the node's latest
// checkpoint with its cosignatures, and its keys.
type Current struct {
	Checkpoint string `json:"checkpoint"`
	LogKey     string `json:"log_key"`
	WitnessKey string `json:"witness_key"`
}

// ViewRequest asks a node for its view of a third node's log, named by
// that node's key id.
type ViewRequest struct {
	PeerKeyID string `json:"peer_key_id"`
}

// View is a node's view of another's log: the last checkpoint it
// cosigned (as that node signed it), or none.
type View struct {
	Checkpoint string `json:"checkpoint,omitempty"`
	Size       int64  `json:"size"`
}

// ProofRequest asks for a consistency proof (From, To) or an inclusion
// proof (Index, To).
type ProofRequest struct {
	From  int64 `json:"from,omitempty"`
	Index int64 `json:"index,omitempty"`
	To    int64 `json:"to"`
}

// Proof is a proof's hashes, base64.
type Proof struct {
	Hashes []string `json:"hashes"`
}

func encodeHashes(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

// maxProofHashes bounds a proof from a peer (tlog-witness allows 63).
const maxProofHashes = 63

func decodeHashes(ss []string) ([]tlog.Hash, error) {
	if len(ss) > maxProofHashes {
		return nil, fmt.Errorf("%d proof hashes: %w", len(ss), ledger.ErrMalformed)
	}
	out := make([]tlog.Hash, len(ss))
	for i, s := range ss {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d: %w", i, ledger.ErrMalformed)
		}
		copy(out[i][:], raw)
	}
	return out, nil
}
