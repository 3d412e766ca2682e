package ledger

import (
	"errors"

	"github.com/parley-cti/parley/internal/fault"
)

// Store sentinels. Store implementations wrap these (with %w) so callers can
// branch with errors.Is whatever the database underneath.
var (
	// ErrNotFound: the requested entry, hash, checkpoint or cosignature does
	// not exist (yet).
	ErrNotFound = fault.Generic(fault.NotFound, "ledger: not found")
	// ErrConflict: a concurrent writer got there first (WriteEntries at a
	// first index that is not the current size, or a different checkpoint
	// already saved at the same size).
	ErrConflict = fault.Generic(fault.Conflict, "ledger: conflict")
	// ErrInvalid: the caller passed arguments that can never succeed
	// (negative index, mismatched counts, an entry too large or malformed).
	ErrInvalid = fault.Generic(fault.Invalid, "ledger: invalid argument")
)

// Verification sentinels. Each names one way a log can misbehave, so that
// `parley verify` can say exactly what went wrong.
var (
	// ErrBadSignature: a checkpoint or cosignature is not signed by the
	// expected key, or is malformed.
	ErrBadSignature = errors.New("ledger: bad signature")
	// ErrRollback: the log presented a checkpoint smaller than one already seen.
	ErrRollback = errors.New("ledger: rollback to an older tree size")
	// ErrFork: the log presented two different roots for the same size.
	ErrFork = errors.New("ledger: fork (two roots for one size)")
	// ErrInconsistent: a newer checkpoint does not extend an older one.
	ErrInconsistent = errors.New("ledger: checkpoints are inconsistent")
	// ErrBadProof: an inclusion proof does not lead to the checkpoint root.
	ErrBadProof = errors.New("ledger: proof does not verify")
	// ErrEntryMismatch: an entry's bytes or hash differ from what the tree holds.
	ErrEntryMismatch = errors.New("ledger: entry does not match the tree")
	// ErrTruncatedProof: a proof has fewer (or more) hashes than its sizes require.
	ErrTruncatedProof = errors.New("ledger: proof has the wrong length")
	// ErrCommitment: an entry's commitment does not open, under the key
	// given, to the digest its reader expected.
	ErrCommitment = errors.New("ledger: commitment does not open to the expected digest")
	// ErrMalformed: untrusted input (checkpoint text, proof, tile path,
	// cosignature line, entry JSON) could not be parsed.
	ErrMalformed = errors.New("ledger: malformed input")
)
