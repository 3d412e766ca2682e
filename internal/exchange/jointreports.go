package exchange

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Joint reports across nodes (issue 14; docs/federation.md "Joint reports
// across nodes"). Under an agreement between two nodes each node knows
// one half of each flow: how many of its own party's contributions it
// released to the other party (its own count, its feed.released entries),
// and how many of the other party's it received from the other node
// (feed.received entries its puller writes, RecordFeedReceived). When both
// nodes saw the same exchange the two halves meet: what one released is
// what the other received, and package report builds the same facts on
// both. A party signs on its own node as on one server; this node records
// the signature and relays the signed statement, with the facts it
// signed, to the other node (OutboxReportSignature), which checks it and
// records it beside its own (ReceiveReportSignature): nothing else there
// changes.

// OutboxReportSignature is the outbox kind of a report signature relayed
// from the signer's node to the other party's node.
const OutboxReportSignature = "report.signature"

// Events on the other party's node when a report signature arrives from
// the signer's node, or was refused.
const (
	EventReportSigned  = "report.signed"
	EventReportRefused = "node.report_refused"
)

// Figures are what a joint report across nodes states, per party in the
// agreement's order (party A, party B): how many of its contributions
// reached the other party in the period and by its end, as this node
// counts them (released by this node for its own party, received by this
// node for the other).
type Figures struct {
	Released      [2]int64 `json:"released"`
	ReleasedTotal [2]int64 `json:"released_total"`
}

// attrs writes f as ledger attributes ("A,B").
func (f Figures) attrs(m map[string]string) {
	m["released"] = strconv.FormatInt(f.Released[0], 10) + "," + strconv.FormatInt(f.Released[1], 10)
	m["released_total"] = strconv.FormatInt(f.ReleasedTotal[0], 10) + "," + strconv.FormatInt(f.ReleasedTotal[1], 10)
}

// figuresOf reads the figures of a relayed report signature's entry; false
// when it has none (a signature made on this node).
func figuresOf(e ledger.Entry) (*Figures, bool) {
	pair := func(s string) ([2]int64, bool) {
		a, b, ok := strings.Cut(s, ",")
		x, err1 := strconv.ParseInt(a, 10, 64)
		y, err2 := strconv.ParseInt(b, 10, 64)
		return [2]int64{x, y}, ok && err1 == nil && err2 == nil
	}
	r, ok1 := pair(e.Attrs["released"])
	t, ok2 := pair(e.Attrs["released_total"])
	if !ok1 || !ok2 {
		return nil, false
	}
	return &Figures{Released: r, ReleasedTotal: t}, true
}

// ReportMessage is a report signature on its way from the signer's node:
// the signed statement (agreement.SignedReport) and the facts (package
// report's canonical JSON) whose hash it signs, as that node computed them.
type ReportMessage struct {
	Agreement string          `json:"agreement"`
	Statement json.RawMessage `json:"statement"`
	Facts     json.RawMessage `json:"facts"`
}

// ReportReceipt says what became of a relayed report signature.
type ReportReceipt struct {
	Duplicate   bool  `json:"duplicate"`
	LedgerIndex int64 `json:"ledger_index"`
}

// NodeSides returns, for an agreement between two nodes, its party that
// lives on this node and the one that lives on the other; ok is false for
// an agreement on one server (or a node without a key, or one whose
// document places neither party here).
func (s *Service) NodeSides(a Agreement) (local, remote string, ok bool) {
	doc := a.Status.Document
	if doc == nil || !doc.CrossNode() || s.node == "" {
		return "", "", false
	}
	for i, p := range doc.Parties {
		if p.Node == s.node && doc.Parties[1-i].Node != s.node {
			return p.PartyID, doc.Parties[1-i].PartyID, true
		}
	}
	return "", "", false
}

// RecordFeedReceived records, as a feed.received ledger entry, that this
// node pulled from peer a page of its party's contributions under
// agreementID: the peer's publish order (after, next] carrying objects
// contributions (distinct object ids). A joint report across nodes counts
// what the other party's node released to this node's party from these
// entries. The pull's cursor, past the page, is written in the same
// transaction: a page is recorded once or, when either write fails, not
// at all and pulled again (a cursor written apart from its entry could
// fail after it and the page be recorded twice, counted twice by joint
// reports). ErrInvalid for a range that is empty or holds fewer ordinals
// than objects, or a cursor of another pull or not at next;
// ErrNotPartyHere when peer has no party in the agreement.
func (s *Service) RecordFeedReceived(ctx context.Context, peer store.Peer, agreementID string, after, next, objects int64, cursor store.FeedCursor) error {
	if after < 0 || next <= after || objects < 0 || objects > next-after {
		return fault.Errorf("%w: a received page of (%d, %d] with %d contributions", ErrInvalid, after, next, objects)
	}
	if cursor.AgreementID != agreementID || cursor.After != next {
		return fault.Errorf("%w: the cursor of a received page of %s must stand at %d", ErrInvalid, agreementID, next)
	}
	cursor.UpdatedAt = s.now()
	return s.st.Update(ctx, func(tx store.Handle) error {
		if err := tx.Agreements().Lock(ctx, agreementID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fault.Errorf("%w: %s", ErrNotPartyHere, agreementID)
			}
			return err
		}
		rec, err := tx.Agreements().Get(ctx, agreementID)
		if err != nil {
			return err
		}
		var remote, local string
		for _, pair := range [][2]string{{rec.PartyA, rec.PartyB}, {rec.PartyB, rec.PartyA}} {
			rp, err := tx.Federation().RemoteParty(ctx, pair[0])
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if rp.NodeKeyID == peer.KeyID {
				remote, local = pair[0], pair[1]
			}
		}
		if remote == "" {
			return fault.Errorf("%w: %s", ErrNotPartyHere, agreementID)
		}
		_, err = s.record(ctx, tx, ledger.Entry{Kind: ledger.KindFeedReceived, Actor: remote, Agreement: agreementID,
			Subject: fmt.Sprintf("received--%s--%s--%d", agreementID, remote, next), Time: s.now().Truncate(time.Microsecond),
			Parties: []string{remote, local},
			Attrs: map[string]string{"contributor": remote, "recipient": local, "from": strconv.FormatInt(after+1, 10),
				"to": strconv.FormatInt(next, 10), "objects": strconv.FormatInt(objects, 10), "peer": peer.Name}})
		if err != nil {
			return err
		}
		if cursor.PartyID != remote {
			return fault.Errorf("%w: the cursor of a received page of %s is not the pull of %s", ErrInvalid, agreementID, remote)
		}
		return tx.Federation().SetFeedCursor(ctx, cursor)
	})
}

// relayReport writes a report signature to the outbox for the other
// party's node, in tx, when a is between two nodes.
func (s *Service) relayReport(ctx context.Context, tx store.Handle, a Agreement, signer string, statement, facts []byte) error {
	if a.Status.Document == nil || !a.Status.Document.CrossNode() {
		return nil
	}
	if len(facts) == 0 {
		return fault.Errorf("a report signature under %s between two nodes without its facts", a.Record.ID)
	}
	other := a.Counterpart(signer)
	rp, err := tx.Federation().RemoteParty(ctx, other)
	if err != nil {
		return fault.Errorf("the node of %s: %w", other, err)
	}
	body, err := json.Marshal(ReportMessage{Agreement: a.Record.ID, Statement: statement, Facts: facts})
	if err != nil {
		return err
	}
	now := s.now()
	_, err = tx.Federation().Enqueue(ctx, store.OutboxEntry{PeerKeyID: rp.NodeKeyID, AgreementID: a.Record.ID, PartyID: signer,
		Kind: OutboxReportSignature, Body: body, CreatedAt: now, NextAttempt: now})
	return err
}

// ReceiveReportSignature records, on the node of the other party, a
// report signature the signer's node relayed: sr, with the figures and
// parties of the facts it signs (package report checked that those facts
// are a report across nodes on sr's agreement and period, hashing to
// sr.ReportHash). Checked before anything is stored: the agreement is here,
// between two nodes, countersigned, with the signer on peer (else
// ErrNotPeersParty) and the other party on this node (else
// ErrNotPartyHere); parties are the agreement's (ErrInvalid); sr verifies
// under a key this node holds for the signer (the agreement package's
// signature errors) and is not dated ahead of this node's clock
// (ErrInvalid). The same statement again answers Duplicate and changes
// nothing. It records a report.signed entry (attribute via: the peer) and
// the statement, and tells this node's party; it changes nothing else.
func (s *Service) ReceiveReportSignature(ctx context.Context, peer store.Peer, sr agreement.SignedReport, parties []string, fig Figures) (ReportReceipt, error) {
	var out ReportReceipt
	raw, err := json.Marshal(sr)
	if err != nil {
		return out, err
	}
	if d := sr.SignedAt.Sub(s.now()); d > MaxClockSkew {
		return out, fault.Errorf("%w: signed_at %s is ahead of this node's clock", ErrInvalid, sr.SignedAt.Format(time.RFC3339))
	}
	err = s.st.Update(ctx, func(tx store.Handle) error {
		a, other, err := s.lockRelayed(ctx, tx, peer, sr.AgreementID, sr.PartyID)
		if err != nil {
			return err
		}
		if len(parties) != 2 || parties[0] != a.Record.PartyA || parties[1] != a.Record.PartyB {
			return fault.Errorf("%w: the report names the parties %v, not %s and %s", ErrInvalid, parties, a.Record.PartyA, a.Record.PartyB)
		}
		if !countersigned(a) {
			return fault.Errorf("%w: agreement %s was never countersigned here, so there is nothing to report", ErrConflict, sr.AgreementID)
		}
		keys, err := loadKeys(ctx, tx, sr.PartyID)
		if err != nil {
			return err
		}
		if err := agreement.VerifyReport(keys, sr); err != nil {
			return err
		}
		stored, err := tx.Agreements().ReportSignatures(ctx, sr.AgreementID)
		if err != nil {
			return err
		}
		for _, rs := range stored {
			if bytes.Equal(rs.Statement, raw) {
				out.Duplicate, out.LedgerIndex = true, rs.LedgerIndex
				return nil
			}
		}
		now := s.now().Truncate(time.Microsecond)
		sum := sha256.Sum256(raw)
		attrs := map[string]string{"from": sr.From.UTC().Format(time.RFC3339Nano), "to": sr.To.UTC().Format(time.RFC3339Nano),
			"key_id": sr.KeyID, "via": peer.Name}
		fig.attrs(attrs)
		idx, err := s.record(ctx, tx, ledger.Entry{Kind: ledger.KindReportSigned, Actor: sr.PartyID, Agreement: sr.AgreementID,
			Subject: party.NewID("report-signature"), Time: now, Parties: []string{a.Record.PartyA, a.Record.PartyB},
			Attrs: attrs, Digests: map[string]string{"report": sr.ReportHash, "statement": "sha256:" + hex.EncodeToString(sum[:])}})
		if err != nil {
			return err
		}
		if err := tx.Agreements().AddReportSignature(ctx, store.ReportSignature{AgreementID: sr.AgreementID, LedgerIndex: idx, PartyID: sr.PartyID,
			KeyID: sr.KeyID, ReportHash: sr.ReportHash, From: sr.From.UTC(), To: sr.To.UTC(), SignedAt: now, Statement: raw}); err != nil {
			return err
		}
		out.LedgerIndex = idx
		st := &Step{Tx: tx, Agreement: a, Now: now}
		return st.Notify(ctx, other.PartyID, EventReportSigned, sr.AgreementID, map[string]any{"by": sr.PartyID, "via": peer.Name,
			"from": sr.From.UTC().Format(time.RFC3339Nano), "to": sr.To.UTC().Format(time.RFC3339Nano), "report_hash": sr.ReportHash})
	})
	return out, err
}

// RefusedReportSignature tells this node's party of the agreement a
// relayed report signature named that it was refused, and why
// (EventReportRefused). It tells no one when the agreement is not here or
// not between two nodes (a peer cannot write to local parties' streams).
func (s *Service) RefusedReportSignature(ctx context.Context, peer store.Peer, agreementID, code string, why error) error {
	a, err := s.loadAgreement(ctx, s.st, agreementID, s.now())
	if err != nil {
		return nil
	}
	local, _, ok := s.NodeSides(a)
	if !ok {
		return nil
	}
	text := "refused"
	if msg, ok := fault.MessageOf(why); ok {
		text = string(msg)
	}
	data, err := json.Marshal(map[string]string{"peer": peer.Name, "code": code, "message": text})
	if err != nil {
		return err
	}
	_, err = s.st.Events().Append(ctx, store.Event{PartyID: local, Kind: EventReportRefused, Subject: agreementID, Data: data, At: s.now()})
	return err
}
