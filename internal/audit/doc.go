// Package audit owns the party-side audit of parley's ledger — what
// `parley verify` and `parley witness cosign` do on a party's own machine —
// and the server-side backfill that gives state written before the ledger
// existed its genesis entries.
//
// # Verifying
//
// [Verify] pins the log's key (trust on first use, or explicitly), checks
// the latest checkpoint's signature and cosignatures, its consistency with
// the last checkpoint this party accepted (kept in a [State] directory), the
// inclusion of every receipt the party holds, and then replays every entry
// of the log to recompute the party's agreements (credits per side, released
// prefixes, phase) and handover outcomes, comparing them with what the
// server's API claims. Every failure names its check and the entry or tree
// size concerned.
//
// # Witnessing
//
// [Cosign] runs the witness side of C2SP tlog-witness locally against the
// party's own witness state and hands the cosignature line to the log.
//
// # Backfill
//
// [Backfill] appends one genesis entry per pre-ledger collection, once.
//
// The package trusts nothing the server returns: every byte it uses passes
// through package ledger's checks first. It must never write to the ledger
// except through Backfill at server start, and never send anything but
// cosignatures to the server.
package audit
