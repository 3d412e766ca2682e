package exchange

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// What package report needs from the exchange: the objects each side
// released to the other (to count them by type and marking), and the
// recording of a party's signature of a joint report. Who may see a report
// is decided here, like everything else: only the two parties to its
// agreement; anyone else gets ErrNotFound.

// ReportSignature is one party's signature of a joint report, as the
// ledger records it.
type ReportSignature struct {
	Party       string    `json:"party"`
	KeyID       string    `json:"key_id"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	SignedAt    time.Time `json:"signed_at"` // when the server recorded it
	LedgerIndex int64     `json:"ledger_index"`
	// Matches is set when the signature is of the report hash the caller
	// asked about (its commitment opens to it).
	Matches bool `json:"matches"`
	// Statement is the signed statement (agreement.SignedReport as JSON)
	// exactly as the ledger entry's "statement" digest covers it (base64
	// in JSON, so that no re-encoding changes a byte), so that anyone can
	// check the signature and the commitment again; absent for signatures
	// recorded before statements were kept.
	Statement []byte `json:"statement,omitempty"`
	// ReportHash is the hash the statement signs (from the statement; empty
	// without one).
	ReportHash string `json:"report_hash,omitempty"`
	// Via names the peer node that relayed the signature, under an
	// agreement between two nodes (the signer signed on its own node);
	// Figures are then what that node's report states, to compare with
	// this node's. Both empty for a signature made on this node.
	Via     string   `json:"via,omitempty"`
	Figures *Figures `json:"figures,omitempty"`
}

// ReleasedObjects calls fn with the last version of each of contributor's
// contributions under agreementID whose ordinal is at most upTo: the
// objects the other party had been released once upTo of them were. Both
// parties may ask in both directions: each already knows what it gave and
// what it received. Anyone else gets ErrNotFound.
func (s *Service) ReleasedObjects(ctx context.Context, p party.Principal, agreementID, contributor string, upTo int64, fn func(store.Object) error) error {
	a, err := s.Agreement(ctx, p, agreementID)
	if err != nil {
		return err
	}
	if contributor != a.Record.PartyA && contributor != a.Record.PartyB {
		return fault.Errorf("%w: %s is not a party to %s", ErrNotFound, contributor, agreementID)
	}
	if upTo <= 0 {
		return nil
	}
	cs, err := s.st.Collections().List(ctx, agreementID)
	if err != nil {
		return err
	}
	var coll string
	for _, c := range cs {
		if c.Agreement == agreementID && c.Contributor == contributor {
			coll = c.ID
		}
	}
	if coll == "" {
		return nil // never countersigned: nothing was contributed
	}
	q := store.ObjectQuery{Collection: coll, Limit: 1000,
		Released: &store.ReleaseBound{Agreement: agreementID, Contributor: contributor, UpTo: upTo}}
	for {
		pg, err := s.st.Objects().Query(ctx, q)
		if err != nil {
			return err
		}
		for _, o := range pg.Objects {
			if err := fn(o); err != nil {
				return err
			}
		}
		if !pg.More || len(pg.Objects) == 0 {
			return nil
		}
		last := pg.Objects[len(pg.Objects)-1]
		q.After = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
	}
}

// markStored records, in the transaction of an ingest under agreementID,
// the type and TLP level of each version it stored (or found stored) in
// partyID's collection, so that ReleasedTally counts them without reading
// them (store.Credits.Mark keeps the latest version of each credited one).
func markStored(ctx context.Context, tx store.Handle, agreementID, partyID string, objs []store.Object, parsed []*stix.Object) error {
	marks := make([]store.Mark, len(objs))
	for i, o := range objs {
		marks[i] = store.Mark{ObjectID: o.ID, Type: o.Type, TLP: tlpLevel(parsed[i].Markings), Version: o.Version}
	}
	return tx.Credits().Mark(ctx, agreementID, partyID, marks)
}

// tlpLevel is the most restrictive TLP level among object marking refs;
// -1 when there is none.
func tlpLevel(refs []string) int {
	best := -1
	for _, r := range refs {
		if l, ok := stix.TLPLevel(r); ok && l > best {
			best = l
		}
	}
	return best
}

// ReleasedTally counts, by type and TLP level (of the latest version),
// contributor's contributions under agreementID with ordinals at most upTo:
// the objects ReleasedObjects would list, from the stored tallies rather
// than the objects. Both parties may ask in both directions; anyone else
// gets ErrNotFound. Contributions credited before tallies existed are
// marked on first use, once, under the agreement's lock.
func (s *Service) ReleasedTally(ctx context.Context, p party.Principal, agreementID, contributor string, upTo int64) ([]store.Tally, error) {
	a, err := s.Agreement(ctx, p, agreementID)
	if err != nil {
		return nil, err
	}
	if contributor != a.Record.PartyA && contributor != a.Record.PartyB {
		return nil, fault.Errorf("%w: %s is not a party to %s", ErrNotFound, contributor, agreementID)
	}
	if upTo <= 0 {
		return []store.Tally{}, nil
	}
	marked, err := s.st.Credits().Marked(ctx, agreementID, contributor)
	if err != nil {
		return nil, err
	}
	if !marked {
		if err := s.markAll(ctx, agreementID, contributor); err != nil {
			return nil, fault.Errorf("marking the contributions of %s under %s: %w", contributor, agreementID, err)
		}
	}
	return s.st.Credits().Tally(ctx, agreementID, contributor, upTo)
}

// markAll marks the latest version of every contribution of contributor
// under agreementID (those credited before marks existed), then records
// that all are marked.
func (s *Service) markAll(ctx context.Context, agreementID, contributor string) error {
	return s.st.Update(ctx, func(tx store.Handle) error {
		if err := tx.Agreements().Lock(ctx, agreementID); err != nil {
			return err
		}
		if done, err := tx.Credits().Marked(ctx, agreementID, contributor); err != nil || done {
			return err
		}
		cs, err := tx.Collections().List(ctx, agreementID)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.Agreement != agreementID || c.Contributor != contributor {
				continue
			}
			q := store.ObjectQuery{Collection: c.ID, Limit: 1000,
				Released: &store.ReleaseBound{Agreement: agreementID, Contributor: contributor, UpTo: math.MaxInt64}}
			for {
				pg, err := tx.Objects().Query(ctx, q)
				if err != nil {
					return err
				}
				marks := make([]store.Mark, len(pg.Objects))
				for i, o := range pg.Objects {
					var refs struct {
						Markings []string `json:"object_marking_refs"`
					}
					_ = json.Unmarshal(o.Raw, &refs) // stored objects are valid; a bad one counts as unmarked
					marks[i] = store.Mark{ObjectID: o.ID, Type: o.Type, TLP: tlpLevel(refs.Markings), Version: o.Version}
				}
				if err := tx.Credits().Mark(ctx, agreementID, contributor, marks); err != nil {
					return err
				}
				if !pg.More || len(pg.Objects) == 0 {
					break
				}
				last := pg.Objects[len(pg.Objects)-1]
				q.After = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
			}
		}
		return tx.Credits().SetMarked(ctx, agreementID, contributor)
	})
}

// CountersignReport records p's signature of the joint report on
// agreementID whose hash the server computed as hash for the period sr
// names. The statement must be p's own (ErrForbidden otherwise: no party
// signs for the other), for this agreement, of this very hash (ErrConflict
// when the report changed or the hash was edited), signed recently with a
// key registered to p (agreement.ErrBadSignature, ErrNotParty,
// ErrUnknownKey). Outsiders get ErrNotFound. The signature becomes a
// report.signed ledger entry binding the hash and the statement. Under an
// agreement between two nodes the statement and facts (the canonical
// JSON hash covers) are relayed to the other party's node in the same
// transaction (OutboxReportSignature); facts is unused otherwise.
func (s *Service) CountersignReport(ctx context.Context, p party.Principal, agreementID string, sr agreement.SignedReport, hash string, facts []byte) (ReportSignature, error) {
	switch {
	case sr.PartyID != p.PartyID:
		return ReportSignature{}, fault.Errorf("%w: the statement is by %s; you can only sign for yourself", ErrForbidden, sr.PartyID)
	case sr.AgreementID != agreementID:
		return ReportSignature{}, fault.Errorf("%w: the statement is for %s, not %s", ErrInvalid, sr.AgreementID, agreementID)
	}
	if d := s.now().Sub(sr.SignedAt); d > MaxClockSkew || d < -MaxClockSkew {
		return ReportSignature{}, fault.Errorf("%w: signed_at %s is more than %s from the server's clock; check your clock and sign again", ErrInvalid, sr.SignedAt.Format(time.RFC3339), MaxClockSkew)
	}
	raw, err := json.Marshal(sr)
	if err != nil {
		return ReportSignature{}, err
	}
	var out ReportSignature
	err = s.st.Update(ctx, func(tx store.Handle) error {
		a, err := s.lockedStatement(ctx, tx, p, agreementID, true, func(a Agreement, keys agreement.KeyResolver) error {
			if !countersigned(a) {
				return fault.Errorf("%w: agreement %s was never countersigned, so there is nothing to report", ErrConflict, agreementID)
			}
			return agreement.VerifyReport(keys, sr)
		})
		if err != nil {
			return err
		}
		// Checked after the signature, so that a forged statement is
		// refused as forged whatever hash it names.
		if sr.ReportHash != hash {
			return fault.Errorf("%w: you signed report %s, but the report on this period is %s; fetch it again, check it and sign that", ErrConflict, sr.ReportHash, hash)
		}
		now := s.now().Truncate(time.Microsecond)
		sum := sha256.Sum256(raw)
		idx, err := s.record(ctx, tx, ledger.Entry{Kind: ledger.KindReportSigned, Actor: p.PartyID, Agreement: agreementID,
			Subject: party.NewID("report-signature"), Time: now, Parties: []string{a.Record.PartyA, a.Record.PartyB},
			Attrs:   map[string]string{"from": sr.From.UTC().Format(time.RFC3339Nano), "to": sr.To.UTC().Format(time.RFC3339Nano), "key_id": sr.KeyID},
			Digests: map[string]string{"report": hash, "statement": "sha256:" + hex.EncodeToString(sum[:])}})
		if err != nil {
			return err
		}
		if err := tx.Agreements().AddReportSignature(ctx, store.ReportSignature{AgreementID: agreementID, LedgerIndex: idx, PartyID: p.PartyID,
			KeyID: sr.KeyID, ReportHash: hash, From: sr.From.UTC(), To: sr.To.UTC(), SignedAt: now, Statement: raw}); err != nil {
			return err
		}
		out = ReportSignature{Party: p.PartyID, KeyID: sr.KeyID, From: sr.From.UTC(), To: sr.To.UTC(), SignedAt: now, LedgerIndex: idx, Matches: true,
			Statement: raw, ReportHash: hash}
		return s.relayReport(ctx, tx, a, p.PartyID, raw, facts)
	})
	return out, err
}

// StatementDigest is the digest a report.signed entry binds as its
// "statement": SHA-256 of the signed statement's JSON, as the API carries it.
func StatementDigest(sr agreement.SignedReport) (string, error) {
	raw, err := json.Marshal(sr)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// StoredReportSignatures lists every report signature recorded under
// agreementID with its signed statement (those recorded since statements
// are kept), in ledger order, for its two parties; anyone else gets
// ErrNotFound. Each can be checked again: the statement's Ed25519
// signature against the signer's key (agreement.VerifyReport), and its
// SHA-256 (StatementDigest) against the commitment of the report.signed
// entry at LedgerIndex. Matches is false: no report was asked about.
func (s *Service) StoredReportSignatures(ctx context.Context, p party.Principal, agreementID string) ([]ReportSignature, error) {
	if _, err := s.Agreement(ctx, p, agreementID); err != nil {
		return nil, err
	}
	stored, err := s.st.Agreements().ReportSignatures(ctx, agreementID)
	if err != nil {
		return nil, err
	}
	out := make([]ReportSignature, 0, len(stored))
	for _, rs := range stored {
		sg := ReportSignature{Party: rs.PartyID, KeyID: rs.KeyID, From: rs.From, To: rs.To, SignedAt: rs.SignedAt,
			LedgerIndex: rs.LedgerIndex, Statement: rs.Statement, ReportHash: rs.ReportHash}
		// The period as signed, to the nanosecond (the store keeps
		// microseconds).
		var sr agreement.SignedReport
		if json.Unmarshal(rs.Statement, &sr) == nil {
			sg.From, sg.To = sr.From.UTC(), sr.To.UTC()
		}
		out = append(out, sg)
	}
	return out, nil
}

func countersigned(a Agreement) bool {
	for _, sg := range a.Signatures {
		if sg.Action == agreement.ActionCountersign {
			return true
		}
	}
	return false
}

// ReportSignatures lists the report signatures recorded under agreementID
// for exactly the period [from, to], oldest first, each marked whether it
// signs hash. It reads the whole ledger (linear in its size), like
// BalanceHistory.
func (s *Service) ReportSignatures(ctx context.Context, p party.Principal, agreementID string, from, to time.Time, hash string) ([]ReportSignature, error) {
	if _, err := s.Agreement(ctx, p, agreementID); err != nil {
		return nil, err
	}
	stored, err := s.st.Agreements().ReportSignatures(ctx, agreementID)
	if err != nil {
		return nil, err
	}
	statements := make(map[int64]store.ReportSignature, len(stored))
	for _, rs := range stored {
		statements[rs.LedgerIndex] = rs
	}
	l := s.st.Ledger()
	size, err := l.Size(ctx)
	if err != nil {
		return nil, fault.Errorf("ledger size: %w", err)
	}
	needle := []byte(`"kind":"` + string(ledger.KindReportSigned) + `"`)
	agr := []byte(`"agreement":` + strconv.Quote(agreementID))
	var logKey []byte
	var out []ReportSignature
	for start := int64(0); start < size; start += historyChunk {
		end := min(start+historyChunk, size)
		raws, err := l.ReadEntries(ctx, start, end)
		if err != nil {
			return nil, fault.Errorf("ledger entries [%d, %d): %w", start, end, err)
		}
		for i, raw := range raws {
			if !bytes.Contains(raw, needle) || !bytes.Contains(raw, agr) {
				continue
			}
			e, err := ledger.DecodeEntry(raw)
			if err != nil {
				return nil, fault.Errorf("ledger entry %d: %w", start+int64(i), err)
			}
			f, err1 := time.Parse(time.RFC3339Nano, e.Attrs["from"])
			t, err2 := time.Parse(time.RFC3339Nano, e.Attrs["to"])
			if e.Kind != ledger.KindReportSigned || e.Agreement != agreementID || err1 != nil || err2 != nil || !f.Equal(from) || !t.Equal(to) {
				continue
			}
			matches := e.Digests["report"] == hash // a version-1 entry: plain
			if e.V == ledger.EntryVersion {
				if logKey == nil {
					if logKey, err = l.CommitmentKey(ctx); err != nil {
						return nil, err
					}
				}
				c, err := ledger.Commit(ledger.EntryKey(logKey, e.Nonce), "report", hash)
				matches = err == nil && c == e.Digests["report"]
			}
			sg := ReportSignature{Party: e.Actor, KeyID: e.Attrs["key_id"], From: f, To: t, SignedAt: e.Time,
				LedgerIndex: start + int64(i), Matches: matches}
			if rs, ok := statements[sg.LedgerIndex]; ok {
				sg.Statement, sg.ReportHash = rs.Statement, rs.ReportHash
			}
			if via := e.Attrs["via"]; via != "" {
				sg.Via = via
				sg.Figures, _ = figuresOf(e)
			}
			out = append(out, sg)
		}
	}
	return out, nil
}
