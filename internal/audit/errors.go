package audit

import "errors"

// Sentinels of an audit. Ledger-level failures (bad signature, rollback,
// fork, inconsistent or truncated proofs, edited entries) keep package
// ledger's sentinels; these name what only the audit can see.
var (
	// ErrMismatch: the server's API claims something the ledger does not
	// record (a balance, a released count, an agreement's phase).
	ErrMismatch = errors.New("audit: the server's API differs from the ledger")
	// ErrInvariant: the ledger itself records an impossible history (a
	// release beyond what was contributed, a handover released twice).
	ErrInvariant = errors.New("audit: the ledger records an impossible history")
	// ErrReceipt: an entry the party holds a receipt for is not the entry it
	// was given (another actor or kind, or different bytes than first seen).
	ErrReceipt = errors.New("audit: receipt does not match the log")
	// ErrKeyChanged: the server presents a log key other than the pinned one.
	ErrKeyChanged = errors.New("audit: log key differs from the pinned key")
	// ErrNotPinned: a witness named on the command line has no pinned key.
	ErrNotPinned = errors.New("audit: no pinned key")
)
