// Package agreement owns the signed bilateral agreement between two parties:
// the document and its validation, party keys and their rotation, the
// statements parties sign, the lifecycle those signatures drive, and the
// reciprocity arithmetic and scope check the agreement's terms define.
//
// # Keys
//
// Each party holds an Ed25519 signing key and an age X25519 identity; the
// identity's recipient (age1...) is the sealing key other parties encrypt
// sealed deposits to. A key id is the first 8 bytes, in hex, of SHA-256 of the
// Ed25519 public key. Keys are stored as PEM blocks (see MarshalPrivateKeys).
//
// # Documents and signatures
//
// A Document is strict JSON (ParseDocument refuses unknown fields and names
// every problem it finds). Its Canonical form is the RFC 8785 encoding of the
// normalized document, and its Hash is SHA-256 of those bytes. Parties never
// sign the document directly: they sign a Statement binding the action, the
// agreement id, the version, the document hash and the key id, so a
// signature can only ever count for the action and version it was made for.
//
// # Lifecycle
//
// State folds the signatures recorded for an agreement into its Status at a
// given time. CheckNext tells whether one more signature is a legal step.
//
// # What it must never do
//
// It performs no I/O beyond the key file helpers, keeps no state, and never
// trusts a signature it has not verified against a key the KeyResolver vouches
// for. Storage, HTTP and authorization decisions belong to other packages.
package agreement
