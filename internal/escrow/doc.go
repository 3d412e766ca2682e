// Package escrow owns handovers: escrowed swaps of one STIX bundle per side
// under an agreement in force.
//
// # Lifecycle
//
// One party proposes a case (what each side delivers, optionally the
// request it answers, a deadline no later than the agreement's escrow
// deadline allows); the other accepts or declines. Each side then deposits
// one bundle, plain (validated and scope-checked at once) or sealed (age
// ciphertext to the counterpart's registered X25519 recipient; the server
// keeps only the ciphertext and its SHA-256). A deposit may be withdrawn
// until the other side has deposited. The second deposit releases both in
// the same database transaction that stores it; a deadline that passes
// first expires the case and destroys its deposits (the sweeper, Run).
//
// # Release of plain bundles
//
// On release the objects of a plain deposit are stored, by exchange
// (exchange.DeliverHandover, the one path by which a release writes
// intelligence), in the collection of kind handover of the agreement's
// TAXII API root that only the recipient reads ("Handed over to <name>"),
// created on first use, so TAXII clients see them beside the give-to-get
// collections. They earn no give-to-get credit: the swap is
// its own reciprocity. Sealed bundles are only downloadable (Fetch); the
// recipient's client decrypts and validates them.
//
// # Crash safety
//
// Every state change, its ledger entries and its events commit in one
// transaction taken under the agreement's lock, so a release reaches both
// sides or neither. PARLEY_CRASH_AT=<point> makes the process exit with
// status 137 at a named point (see crash.go) so tests can prove it.
//
// This package must never import the HTTP layer, never read plaintext of a
// sealed deposit, and never touch SQL: storage goes through package store.
package escrow
