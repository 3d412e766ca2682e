// Package crosswitness makes pinned peer nodes each other's witnesses
// (issue 14 item 5): every node cosigns its peers' ledger checkpoints, as a
// C2SP tlog-witness does, and checks its peers' logs against what it and
// its other peers have seen, so that a node showing different histories to
// different peers, or whose log lost an entry it had given a receipt for,
// is caught and named.
//
// # Keys
//
// A node has three keys: its node key (package node: it signs HTTP
// messages), its ledger key (it signs checkpoints) and its witness key (a
// tlog-cosignature/v1 key, created on first use in the settings as
// node.witness-skey: it cosigns peers' checkpoints). A peer learns the
// ledger and witness keys of another only inside messages signed by the
// pinned node key (a submission, its answer, or a checkpoint fetch) and
// keeps them in its view of that peer (store.PeerLog, by node key id); a
// later message naming other keys is refused and recorded as key_changed.
//
// # Submitting
//
// [Service.Run] submits this node's latest checkpoint to every pinned peer
// whenever the checkpointer signs one (and every Interval), with a
// consistency proof from the size the peer last cosigned — tlog-witness's
// add-checkpoint, carried in a signed POST /node/v1/witness/add-checkpoint.
// The peer's cosignature is checked and stored with the checkpoint (the
// peer's witness key is registered as a witness of this log), so
// GET /ledger/checkpoint serves it. A peer that is down is retried with
// exponential backoff; since each submission carries the latest checkpoint
// and a proof from what the peer last cosigned, nothing is lost by missing
// one: the next cosignature covers every entry before it.
//
// # Witnessing
//
// On a submission from a pinned peer, [Service.AddCheckpoint] checks the
// checkpoint's signature with the peer's ledger key, compares it with the
// last checkpoint of that log this node cosigned (a smaller size is a
// rollback, the same size with another root a fork), checks the
// consistency proof, cosigns, and moves its view only then. Every refusal
// that is evidence against the peer (forged, fork, rollback,
// inconsistent, key_changed) is recorded (see below); a stale old size is
// the protocol's ordinary 409 with the size to prove from.
//
// # Checking
//
// [Service.CheckPeers] (`parley verify --peers`) fetches each peer's
// current checkpoint and proofs over signed node requests, checks the
// signature, consistency with this node's view, each receipt the peer gave
// this node, and asks every other peer for its own view of that log: two
// checkpoints signed by one ledger key that no consistency proof joins
// prove a split view. Where another peer's view is the very checkpoint the
// peer serves, that checkpoint must carry the other peer's cosignature.
//
// # Recording
//
// An incident names the peer (its pinned name and node key), the kind and
// both conflicting checkpoints. It is stored once (store.PeerIncident), logged,
// appended to this node's ledger (node.peer_incident) and sent to every
// party of this node as an event of that kind; the node keeps serving
// everyone, the peer included.
//
// # What it must never do
//
// Trust a peer's word for anything a signature or a proof can check;
// cosign a checkpoint before its view has moved to it; or let one peer's
// failure stop the submissions to, or the checks of, the others.
package crosswitness
