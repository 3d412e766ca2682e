// Package ledger owns parley's tamper-evident record: an append-only Merkle
// tree (RFC 6962 hashing via golang.org/x/mod/sumdb/tlog) of canonical JSON
// statements, signed checkpoints (C2SP tlog-checkpoint in a C2SP signed note),
// witness cosignatures (C2SP tlog-cosignature/v1 and the witness side of
// C2SP tlog-witness), C2SP tlog-tiles encodings, and the client-side checks
// that `parley verify` runs.
//
// # Writing
//
// Every state change in parley appends an [Entry] in the same database
// transaction as the change itself: the caller opens the transaction, wraps it
// in a [Store] and calls [Append]. Stores hold only hashes and statements;
// the ledger never holds intelligence itself, only digests of it, and
// Append seals every entry ([Entry.Seal]): each digest becomes a hiding
// commitment under a per-entry key derived from the log's secret
// commitment key, so a reader cannot reverse a digest of guessable data
// (an IP address, a phone number) by hashing a dictionary. [EntryKey]
// gives the key that opens one entry, for those entitled to it;
// [Entry.Open] checks an entry against the digests its reader knows.
// Version-1 entries, written before, hold plain digests and are still read.
//
// # Reading and proving
//
// [TreeHash], [InclusionProof] and [ConsistencyProof] read stored hashes from
// a [Reader]. [NewCheckpoint] signs the current tree head with a [Signer];
// a [Checkpointer] does so periodically.
//
// # Verifying
//
// A [Verifier] keeps the last checkpoint it accepted and refuses rollbacks,
// forks and inconsistent histories; it checks receipts and replays entries
// for domain packages. Every failure is a distinct sentinel error.
//
// The package must never import database/sql, never hold or log the content
// of intelligence objects, never write a plain digest into a new entry, and
// never rewrite or delete an entry once written.
package ledger
