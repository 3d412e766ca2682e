// Package audit owns the party-side audit of parley's ledger: what
// `parley verify` and `parley witness cosign` do on a party's own machine.
// It holds no server-side code (the genesis backfill of pre-ledger state is
// exchange.Service.Backfill) and links no server package, not even the
// ledger's HTTP surface: it reads the log with its own [LedgerClient]. What
// a party runs to check the server is not built from the server's parts
// (internal/archtest enforces it).
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
// The package trusts nothing the server returns: every byte it uses passes
// through package ledger's checks first. It never writes to the ledger and
// never sends anything but cosignatures to the server.
package audit
