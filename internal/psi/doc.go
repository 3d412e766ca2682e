// Package psi owns parley's private matching: a mutual ECDH private set
// intersection over X25519 in which each party learns which of its own
// wanted identifiers (aliases, e-mail addresses, wallets, file hashes, IP
// addresses, domains) the other party also holds, and nothing else.
//
// # Protocol
//
// Party A holds set X and a fresh secret scalar a; B holds Y and b.
//
//	Round 1: A → B  H(x)^a for x in X, shuffled     (32-byte u-coordinates)
//	         B → A  H(y)^b for y in Y, shuffled
//	Round 2: A → B  tag((H(y)^b)^a) in B's order    (16-byte tags)
//	         B → A  tag((H(x)^a)^b) in A's order
//	Result:  A marks x as matched when the tag B returned for it is among
//	         the tags A computed for B's elements; B likewise.
//
// H is hash_to_curve for curve25519_XMD:SHA-512_ELL2_RO_ (RFC 9380) with a
// DST bound to the session id and both party ids; inputs are
// domain-separated as "parley-psi-v1|<kind>|<normalized value>" (see
// Normalize). "^a" is X25519 (RFC 7748) with the session's secret scalar: a
// Montgomery ladder on the u-coordinate, which commutes
// (X25519(a, X25519(b, u)) = X25519(b, X25519(a, u))), clears the cofactor
// (the clamped scalar is a multiple of 8) and identifies P with -P, which
// costs nothing here since H(x) = -H(y) has probability 2^-252. A relay sees
// only the two set sizes. Each round-2 message is one opaque stream so that
// it can be deposited in the handover escrow and released to both sides at
// once: neither side can learn the result and withhold its own part.
//
// # Versions
//
// The message header carries the protocol version (Version). Version 1 ran
// the same protocol over ristretto255 (RFC 9496); version 2 replaced it
// because it is faster with the same guarantees: docs/BENCHMARKS.md has the
// measurements, docs/security.md what each side learns. A message of
// another version is refused, so both sides of a session run the same one,
// and the relay records it in the ledger.
//
// # Arithmetic
//
// Hashing uses filippo.io/edwards25519 (field arithmetic, point addition
// and cofactor clearing), with the square roots' exponentiations batched.
// X25519 runs on circl's implementation, or, on amd64 CPUs with AVX-512
// IFMA, eight ladders at once in vector registers (x25519_amd64.s), both
// constant-time in the scalar; the tests check each against the other and
// against crypto/ecdh, and every vector operation against math/big.
//
// # What this package must never do
//
// It never sends anything anywhere (callers move the messages), never reveals
// or persists the session scalar, never accepts a message from another
// session, round or role, and never stores or logs plaintext identifiers.
// It has no knowledge of agreements beyond the element cap it is given.
package psi
