// Package match owns parley's private matching: a mutual ECDH private set
// intersection over ristretto255 in which each party learns which of its own
// wanted identifiers (aliases, e-mail addresses, wallets, file hashes, IP
// addresses, domains) the other party also holds, and nothing else.
//
// # Protocol
//
// Party A holds set X and a fresh secret scalar a; B holds Y and b.
//
//	Round 1: A → B  H(x)^a for x in X, shuffled     (32-byte encodings)
//	         B → A  H(y)^b for y in Y, shuffled
//	Round 2: A → B  tag((H(y)^b)^a) in B's order    (16-byte tags)
//	         B → A  tag((H(x)^a)^b) in A's order
//	Result:  A marks x as matched when the tag B returned for it is among
//	         the tags A computed for B's elements; B likewise.
//
// H is hash_to_ristretto255 (RFC 9380) with a DST bound to the session id
// and both party ids; inputs are domain-separated as
// "parley-psi-v1|<kind>|<normalized value>" (see Normalize). A relay sees
// only the two set sizes. Each round-2 message is one opaque stream so that
// it can be deposited in the handover escrow and released to both sides at
// once: neither side can learn the result and withhold its own part.
//
// # Group backend
//
// ristretto255 is implemented here over filippo.io/edwards25519 (RFC 9496
// encode/decode/map, RFC 9380 expand_message_xmd). circl's
// group.Ristretto255 was measured too and is slower on this code's hot path
// (see bench_test.go); the tests use it as an independent cross-check.
//
// # What this package must never do
//
// It never sends anything anywhere (callers move the messages), never reveals
// or persists the session scalar, never accepts a message from another
// session, round or role, and never stores or logs plaintext identifiers.
// It has no knowledge of agreements beyond the element cap it is given.
package match
