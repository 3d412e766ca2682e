package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// Kind names the state change an Entry records.
type Kind string

// The state changes parley records. The string values are part of the
// ledger's format: never rename one, only add.
const (
	KindAgreementProposed   Kind = "agreement.proposed"
	KindAgreementSigned     Kind = "agreement.signed"
	KindAgreementAmended    Kind = "agreement.amended"
	KindAgreementSuspended  Kind = "agreement.suspended"
	KindAgreementTerminated Kind = "agreement.terminated"

	KindFeedBatch    Kind = "feed.batch"    // digest of a batch of objects a party contributed
	KindFeedReleased Kind = "feed.released" // objects released to the other party
	// A receiving party's signed contest of one credit, and its withdrawal.
	KindFeedContested        Kind = "feed.contested"
	KindFeedContestWithdrawn Kind = "feed.contest_withdrawn"
	// A page of the other party's contributions this node pulled from
	// that party's node under an agreement between two nodes: the range
	// of the peer's publish order it covered and how many contributions
	// it carried (what a joint report across nodes counts as received).
	KindFeedReceived Kind = "feed.received"

	KindHandoverProposed         Kind = "handover.proposed"
	KindHandoverDepositCommitted Kind = "handover.deposit_committed"
	KindHandoverReleased         Kind = "handover.released"
	KindHandoverWithdrawn        Kind = "handover.withdrawn"
	KindHandoverExpired          Kind = "handover.expired"
	KindHandoverDisputed         Kind = "handover.disputed"
	// Gradual release between two nodes without an escrow node: a side's
	// signed commitment to its chunks' hashes, a chunk leaving its
	// depositor's node or arriving at the recipient's (attr step), the
	// recipient's signed confirmation of one, and the exchange stopped by
	// a rejection.
	KindHandoverChunksCommitted Kind = "handover.chunks_committed"
	KindHandoverChunkMoved      Kind = "handover.chunk_moved"
	KindHandoverChunkConfirmed  Kind = "handover.chunk_confirmed"
	KindHandoverStopped         Kind = "handover.stopped"

	KindRequestFiled        Kind = "request.filed"
	KindRequestAcknowledged Kind = "request.acknowledged"
	KindRequestFulfilled    Kind = "request.fulfilled"
	KindRequestRefused      Kind = "request.refused"
	KindRequestOverdue      Kind = "request.overdue"
	// A request's answering handover is named but not yet released, and
	// a request reopened because that handover was declined, expired or
	// its deposit withdrawn (issue 12, finding 7).
	KindRequestAnswerPending Kind = "request.answer_pending"
	KindRequestReopened      Kind = "request.reopened"
	// A request closed undelivered on its requester's node: the
	// responder's node refused its filing for good (between nodes only;
	// attrs peer and code, the peer's refusal code).
	KindRequestUndelivered Kind = "request.undelivered"

	KindMatchStarted Kind = "match.started" // a private matching session and the handover escrowing its round 2
	KindMatchRound1  Kind = "match.round1"  // one side's round-1 message: its element count and digest, no item

	// A party's signature of a joint report on an agreement over a period
	// (package report): the report's hash and the signed statement, as
	// commitments.
	KindReportSigned Kind = "report.signed"

	// A pinned peer node caught misbehaving as this node witnessed its
	// ledger (package crosswitness): a forged, forked, rolled-back or
	// unprovable checkpoint, a changed key, a receipt its log no longer
	// holds. Subject is the peer's node key id; Attrs name the peer and
	// both conflicting checkpoints (sizes and roots).
	KindNodePeerIncident Kind = "node.peer_incident"
)

var knownKinds = map[Kind]bool{
	KindAgreementProposed: true, KindAgreementSigned: true, KindAgreementAmended: true,
	KindAgreementSuspended: true, KindAgreementTerminated: true,
	KindFeedBatch: true, KindFeedReleased: true, KindFeedContested: true, KindFeedContestWithdrawn: true, KindFeedReceived: true,
	KindHandoverProposed: true, KindHandoverDepositCommitted: true, KindHandoverReleased: true,
	KindHandoverWithdrawn: true, KindHandoverExpired: true, KindHandoverDisputed: true,
	KindHandoverChunksCommitted: true, KindHandoverChunkMoved: true, KindHandoverChunkConfirmed: true, KindHandoverStopped: true,
	KindRequestFiled: true, KindRequestAcknowledged: true, KindRequestFulfilled: true,
	KindRequestRefused: true, KindRequestOverdue: true,
	KindRequestAnswerPending: true, KindRequestReopened: true, KindRequestUndelivered: true,
	KindMatchStarted: true, KindMatchRound1: true,
	KindReportSigned:     true,
	KindNodePeerIncident: true,
}

// Kinds returns every known Kind, for documentation and tests.
func Kinds() []Kind {
	out := make([]Kind, 0, len(knownKinds))
	for k := range knownKinds {
		out = append(out, k)
	}
	return out
}

// Known reports whether k is a Kind this version of parley writes.
func (k Kind) Known() bool { return knownKinds[k] }

// Entry format versions. The version is part of every encoded entry; the
// verifier accepts both, and Append writes only EntryVersion.
const (
	// EntryVersionPlain entries (written before 2026-12) hold plain
	// "sha256:<hex>" digests. They cannot be rewritten, so readers keep
	// accepting them, but a digest of guessable data in one can be
	// reversed by a dictionary: see docs/security.md.
	EntryVersionPlain = 1
	// EntryVersion entries carry a random Nonce and hold hiding
	// commitments ("hmac-sha256:<hex>") instead of digests: see Seal.
	EntryVersion = 2
)

// MaxEntrySize is the largest encoded entry: C2SP entry bundles prefix each
// entry with a 16-bit length.
const MaxEntrySize = 1<<16 - 1

// Entry is one ledger statement: what changed, to what, by whom, when, and
// the digests that bind it to documents kept elsewhere. It never carries the
// intelligence itself.
//
// Encoding: Encode produces RFC 8785 canonical JSON (byte-identical to
// internal/canonjson, which tests check), with times in UTC. DecodeEntry accepts only this exact form, so each
// statement has one encoding and one leaf hash.
type Entry struct {
	// Actor is the party that caused the change; empty when the server
	// acted on its own (expiry, overdue).
	Actor string `json:"actor,omitempty"`
	// Agreement is the agreement the change happened under, if any.
	Agreement string `json:"agreement,omitempty"`
	// Attrs holds small metadata: counts, reason codes, deadlines.
	Attrs map[string]string `json:"attrs,omitempty"`
	// Digests maps a role ("document", "bundle", "objects") to
	// "sha256:<64 lowercase hex>" when the entry is built, and to its
	// hiding commitment "hmac-sha256:<64 lowercase hex>" once sealed
	// (version 2; Append seals every entry it writes).
	Digests map[string]string `json:"digests,omitempty"`
	Kind    Kind              `json:"kind"`
	// Nonce (version 2) is 32 lowercase hex digits of randomness from
	// which the server derives this entry's opening key (EntryKey). It is
	// public; the key is not.
	Nonce string `json:"nonce,omitempty"`
	// Parties lists the parties the change concerns (e.g. a release's recipient).
	Parties []string `json:"parties,omitempty"`
	// Subject is the ID of what changed: agreement, handover, request or batch.
	Subject string    `json:"subject"`
	Time    time.Time `json:"time"`
	V       int       `json:"v"`
}

// Validate checks the fields a reader relies on.
func (e Entry) Validate() error {
	switch {
	case !e.Kind.Known():
		return fmt.Errorf("entry kind %q: %w", e.Kind, ErrInvalid)
	case e.Subject == "":
		return fmt.Errorf("entry %s: empty subject: %w", e.Kind, ErrInvalid)
	case e.Time.IsZero() || e.Time.Year() < 1 || e.Time.Year() > 9999:
		return fmt.Errorf("entry %s %s: time %s out of range: %w", e.Kind, e.Subject, e.Time, ErrInvalid)
	case e.V != EntryVersion && e.V != EntryVersionPlain:
		return fmt.Errorf("entry %s %s: version %d: %w", e.Kind, e.Subject, e.V, ErrInvalid)
	case e.V == EntryVersionPlain && e.Nonce != "":
		return fmt.Errorf("entry %s %s: a version-1 entry has no nonce: %w", e.Kind, e.Subject, ErrInvalid)
	case e.V == EntryVersion && !validHex(e.Nonce, 2*NonceSize):
		return fmt.Errorf("entry %s %s: nonce %q is not %d lowercase hex digits: %w", e.Kind, e.Subject, e.Nonce, 2*NonceSize, ErrInvalid)
	}
	prefix := digestPrefix
	if e.V == EntryVersion {
		prefix = commitmentPrefix
	}
	for role, d := range e.Digests {
		if h, ok := strings.CutPrefix(d, prefix); !ok || !validHex(h, 64) {
			return fmt.Errorf("entry %s %s (version %d): digest %q = %q is not %s<64 hex>: %w", e.Kind, e.Subject, e.V, role, d, prefix, ErrInvalid)
		}
	}
	// encoding/json would silently replace invalid UTF-8, breaking hashes.
	valid := utf8.ValidString(e.Actor) && utf8.ValidString(e.Agreement) && utf8.ValidString(e.Subject)
	for _, p := range e.Parties {
		valid = valid && utf8.ValidString(p)
	}
	for k, v := range e.Attrs {
		valid = valid && utf8.ValidString(k) && utf8.ValidString(v)
	}
	for k := range e.Digests {
		valid = valid && utf8.ValidString(k)
	}
	if !valid {
		return fmt.Errorf("entry %s %s: invalid UTF-8: %w", e.Kind, e.Subject, ErrInvalid)
	}
	return nil
}

const (
	digestPrefix     = "sha256:"
	commitmentPrefix = "hmac-sha256:"
)

func validHex(h string, n int) bool {
	if len(h) != n {
		return false
	}
	for i := range len(h) {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Encode returns the canonical encoding of e; times are normalized to UTC.
// V 0 means version 2 for a sealed entry (one with a Nonce) and version 1
// otherwise: Encode never seals (it has no key); Append does.
func (e Entry) Encode() ([]byte, error) {
	if e.V == 0 {
		e.V = EntryVersionPlain
		if e.Nonce != "" {
			e.V = EntryVersion
		}
	}
	e.Time = e.Time.UTC()
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b := appendCanonical(make([]byte, 0, 256), &e)
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("entry %s %s: %d bytes > %d: %w", e.Kind, e.Subject, len(b), MaxEntrySize, ErrInvalid)
	}
	return b, nil
}

// DecodeEntry parses an entry and insists it is in canonical form, so that
// one statement has exactly one encoding (and one leaf hash).
func DecodeEntry(b []byte) (Entry, error) {
	var e Entry
	if len(b) > MaxEntrySize {
		return Entry{}, fmt.Errorf("entry of %d bytes: %w", len(b), ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("entry: %w: %w", ErrMalformed, err)
	}
	if e.V != EntryVersion && e.V != EntryVersionPlain {
		return Entry{}, fmt.Errorf("entry version %d: %w", e.V, ErrMalformed)
	}
	again, err := e.Encode()
	if err != nil {
		return Entry{}, fmt.Errorf("entry: %w: %w", ErrMalformed, err)
	}
	if !bytes.Equal(again, b) {
		return Entry{}, fmt.Errorf("entry is not in canonical form: %w", ErrMalformed)
	}
	return e, nil
}

// Receipt is what a party keeps to later prove an entry is in the log: its
// index and its leaf hash (tlog.RecordHash of the encoded entry).
type Receipt struct {
	Index int64     `json:"index"`
	Hash  tlog.Hash `json:"hash"`
}

// ReceiptFor returns the receipt for the encoded entry at index.
func ReceiptFor(index int64, encoded []byte) Receipt {
	return Receipt{Index: index, Hash: tlog.RecordHash(encoded)}
}
