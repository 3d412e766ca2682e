package ledger

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxAddCheckpointBody bounds a tlog-witness add-checkpoint request body.
const MaxAddCheckpointBody = MaxNoteSize + 64*64

// maxProofLines is the tlog-witness limit on consistency proof lines.
const maxProofLines = 63

// AddCheckpointRequest is the body of a C2SP tlog-witness add-checkpoint
// call: the size the submitter believes the witness last cosigned, a
// consistency proof from it, and the new signed checkpoint.
type AddCheckpointRequest struct {
	OldSize    int64
	Proof      tlog.TreeProof
	Checkpoint []byte
}

// Marshal encodes the request body.
func (r AddCheckpointRequest) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseAddCheckpoint parses an add-checkpoint request body. It checks the
// framing only; Witness.AddCheckpoint checks signatures and proofs.
func ParseAddCheckpoint(body []byte) (AddCheckpointRequest, error) {
	if len(body) > MaxAddCheckpointBody {
		return AddCheckpointRequest{}, fmt.Errorf("add-checkpoint body of %d bytes: %w", len(body), ErrMalformed)
	}
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	sizeText, okPrefix := bytes.CutPrefix(line, []byte("old "))
	if !ok || !okPrefix {
		return AddCheckpointRequest{}, fmt.Errorf("add-checkpoint: missing old size line: %w", ErrMalformed)
	}
	old, err := parseDecimal(string(sizeText))
	if err != nil {
		return AddCheckpointRequest{}, fmt.Errorf("add-checkpoint old size: %w", err)
	}
	req := AddCheckpointRequest{OldSize: old}
	proof, rest, err := parseProofLines(rest, maxProofLines)
	if err != nil {
		return AddCheckpointRequest{}, fmt.Errorf("add-checkpoint proof: %w", err)
	}
	req.Proof = tlog.TreeProof(proof)
	req.Checkpoint = rest
	return req, nil
}

// parseProofLines reads base64 hash lines up to an empty line and returns
// the hashes and what follows the empty line.
func parseProofLines(b []byte, limit int) ([]tlog.Hash, []byte, error) {
	var out []tlog.Hash
	for {
		line, rest, ok := bytes.Cut(b, []byte("\n"))
		if !ok {
			return nil, nil, fmt.Errorf("missing blank line after proof: %w", ErrMalformed)
		}
		b = rest
		if len(line) == 0 {
			return out, b, nil
		}
		if len(out) == limit {
			return nil, nil, fmt.Errorf("more than %d proof hashes: %w", limit, ErrMalformed)
		}
		h, err := parseHash(string(line))
		if err != nil {
			return nil, nil, err
		}
		out = append(out, h)
	}
}

// parseHash decodes one canonical standard-base64 32-byte hash.
func parseHash(s string) (tlog.Hash, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != tlog.HashSize || base64.StdEncoding.EncodeToString(raw) != s {
		return tlog.Hash{}, fmt.Errorf("hash %.60q: %w", s, ErrMalformed)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h, nil
}

// parseDecimal parses a non-negative decimal with no leading zeros.
func parseDecimal(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("number %.30q: %w", s, ErrMalformed)
	}
	return n, nil
}

// WitnessState is what a witness must persist between calls: the latest
// checkpoint it cosigned for the log.
type WitnessState struct {
	Size int64     `json:"size"`
	Hash tlog.Hash `json:"hash"`
}

// SizeConflictError reports that the submitter's old size is not the size
// the witness last cosigned; tlog-witness answers 409 with Size. It wraps
// ErrConflict.
type SizeConflictError struct{ Size int64 }

func (e *SizeConflictError) Error() string {
	return fmt.Sprintf("ledger: witness last cosigned size %d", e.Size)
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *SizeConflictError) Unwrap() error { return ErrConflict }

// Witness is the witness side of C2SP tlog-witness for one log: a party
// runs it to cosign parley's checkpoints only after checking they extend
// everything it has cosigned before. Safe for concurrent use; the state
// check and update are atomic, as the protocol requires.
type Witness struct {
	signer  *cosigner
	log     note.Verifier
	persist func(WitnessState) error

	mu    sync.Mutex
	state WitnessState
}

// NewWitness creates a witness with its private key (GenerateWitnessKey),
// the log's verifier key, the last persisted state (zero for a new
// witness) and a function that durably saves a new state before the
// witness answers (nil to keep state in memory only).
func NewWitness(skey, logVKey string, state WitnessState, persist func(WitnessState) error) (*Witness, error) {
	s, err := parseWitnessSecret(skey)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(logVKey)
	if err != nil {
		return nil, fmt.Errorf("log verifier key: %w: %w", ErrInvalid, err)
	}
	if persist == nil {
		persist = func(WitnessState) error { return nil }
	}
	return &Witness{signer: s, log: v, persist: persist, state: state}, nil
}

// Name returns the witness's key name.
func (w *Witness) Name() string { return w.signer.name }

// State returns the latest cosigned state.
func (w *Witness) State() WitnessState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// AddCheckpoint runs the tlog-witness checks and returns a cosignature line.
// Errors, with the HTTP status tlog-witness maps them to:
//   - ErrNotFound (404): the checkpoint's origin is not the witnessed log;
//   - ErrBadSignature (403): the log's signature does not verify;
//   - ErrInvalid (400): old size larger than the checkpoint size;
//   - *SizeConflictError / ErrConflict (409): old size is not the witness's size;
//   - ErrFork (409): same size as last cosigned but a different root;
//   - ErrInconsistent / ErrTruncatedProof (422): the consistency proof fails;
//   - ErrMalformed (400): the checkpoint cannot be parsed.
func (w *Witness) AddCheckpoint(req AddCheckpointRequest, now time.Time) ([]byte, error) {
	n, err := note.Open(req.Checkpoint, note.VerifierList(w.log))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			c, perr := ParseCheckpoint([]byte(unverified.Note.Text))
			if perr == nil && c.Origin != w.log.Name() {
				return nil, fmt.Errorf("unknown log origin %q: %w", c.Origin, ErrNotFound)
			}
			return nil, fmt.Errorf("checkpoint not signed by %s: %w", w.log.Name(), ErrBadSignature)
		case errors.As(err, &invalid):
			return nil, fmt.Errorf("checkpoint signature by %s: %w", w.log.Name(), ErrBadSignature)
		}
		return nil, fmt.Errorf("checkpoint note: %w", ErrMalformed)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return nil, err
	}
	if c.Origin != w.log.Name() {
		return nil, fmt.Errorf("unknown log origin %q: %w", c.Origin, ErrNotFound)
	}
	if req.OldSize > c.Size {
		return nil, fmt.Errorf("old size %d > checkpoint size %d: %w", req.OldSize, c.Size, ErrInvalid)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if req.OldSize != w.state.Size {
		return nil, &SizeConflictError{Size: w.state.Size}
	}
	if req.OldSize == c.Size {
		if len(req.Proof) != 0 {
			return nil, fmt.Errorf("non-empty proof for equal sizes %d: %w", c.Size, ErrTruncatedProof)
		}
		if c.Hash != w.state.Hash && c.Size != 0 {
			return nil, fmt.Errorf("checkpoint at size %d has a different root than cosigned: %w", c.Size, ErrFork)
		}
	} else if err := CheckConsistency(req.Proof, w.state.Size, w.state.Hash, c.Size, c.Hash); err != nil {
		return nil, err
	}
	line, err := cosignLine(w.signer, []byte(n.Text), now)
	if err != nil {
		return nil, err
	}
	next := WitnessState{Size: c.Size, Hash: c.Hash}
	if err := w.persist(next); err != nil {
		return nil, fmt.Errorf("persist witness state: %w", err)
	}
	w.state = next
	return line, nil
}
