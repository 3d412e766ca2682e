package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/ledger"
)

// CosignRemote is the log as a witnessing party sees it: its read API and
// the endpoint taking cosignature lines (*LedgerClient).
type CosignRemote interface {
	ledger.Remote
	SubmitCosignature(ctx context.Context, size int64, line []byte) error
}

// CosignResult is what a witness cosigned.
type CosignResult struct {
	Checkpoint ledger.Checkpoint
	From       int64  // the size cosigned before (0 for the first time)
	Line       []byte // the cosignature line handed to the log
}

// Cosign witnesses the log's latest checkpoint as C2SP tlog-witness
// prescribes: it checks the log's signature with logVKey, proves the
// checkpoint consistent with the size this witness last cosigned (kept in
// st), persists the new state, then hands the cosignature line to the log.
// Errors are Witness.AddCheckpoint's (ErrBadSignature, ErrFork,
// ErrInconsistent, ErrTruncatedProof, ErrNotFound for another log) or the
// submission's.
func Cosign(ctx context.Context, st State, witnessSKey, logVKey string, r CosignRemote, now time.Time) (CosignResult, error) {
	prev, err := st.WitnessState()
	if err != nil {
		return CosignResult{}, err
	}
	w, err := ledger.NewWitness(witnessSKey, logVKey, prev, st.SaveWitnessState)
	if err != nil {
		return CosignResult{}, err
	}
	signed, err := r.Checkpoint(ctx)
	if err != nil {
		return CosignResult{}, fmt.Errorf("fetch checkpoint: %w", err)
	}
	c, err := ledger.VerifyCheckpoint(signed, logVKey)
	if err != nil {
		return CosignResult{}, err
	}
	if c.Size < prev.Size {
		return CosignResult{}, fmt.Errorf("log presents size %d, this witness cosigned %d: %w", c.Size, prev.Size, ledger.ErrRollback)
	}
	var proof tlog.TreeProof
	if prev.Size > 0 && c.Size > prev.Size {
		if proof, err = r.ConsistencyProof(ctx, prev.Size, c.Size); err != nil {
			return CosignResult{}, fmt.Errorf("fetch consistency proof %d→%d: %w", prev.Size, c.Size, err)
		}
	}
	line, err := w.AddCheckpoint(ledger.AddCheckpointRequest{OldSize: prev.Size, Proof: proof, Checkpoint: signed}, now)
	if err != nil {
		var sc *ledger.SizeConflictError
		if errors.As(err, &sc) {
			return CosignResult{}, fmt.Errorf("witness state disagrees with itself: %w", err)
		}
		return CosignResult{}, err
	}
	if err := r.SubmitCosignature(ctx, c.Size, line); err != nil {
		return CosignResult{}, fmt.Errorf("cosigned checkpoint %d, but the log refused the cosignature: %w", c.Size, err)
	}
	return CosignResult{Checkpoint: c, From: prev.Size, Line: line}, nil
}
