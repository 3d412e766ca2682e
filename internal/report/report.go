// Package report owns the joint report on an agreement over a period: what
// each side gave and received (by STIX type and TLP, over time), how
// give-to-get moved, the requests, handovers, contests and private
// matching sessions, and the ledger entries that prove each figure,
// divided into where the parties agree and areas of concern.
//
// # Facts
//
// A report's [Facts] are computed from the agreement's ledger entries
// alone (replayed in log order, read through ledger.Reader) and, for the
// breakdown by type and marking, from the objects each side released to
// the other (counted by exchange.ReleasedTally). Nothing in them depends on which
// party asks, or on when: two parties asking about the same closed period
// get byte-identical canonical JSON (RFC 8785), and so the same [Hash],
// which each can sign with its own key (agreement.SignReport; the server
// never holds private keys). A signature is recorded as a report.signed
// ledger entry by package exchange, which checks it against the signer's
// registered key.
//
// Under an agreement between two nodes the facts are those of
// acrossnodes.go instead (FormatAcrossNodes): each node holds its own
// ledger, so only the flow each way, counted on each node from its own
// half, can come out alike on both.
//
// # Rules
//
// Only the two parties to an agreement see its report (package exchange
// decides; anyone else gets exchange.ErrNotFound). Report signatures are
// never counted among the facts, so signing a report never changes it.
// This package must never write to the store except through exchange, and
// never put an object's content into a report: only counts.
package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/fault"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/canonjson"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Format names the structure of Facts; a change to it is a new format.
const Format = "parley-report/v1"

// Buckets is how many points the time series has: the period divided
// evenly, each point the cumulative figures at its end.
const Buckets = 48

// MaxPeriod bounds a report's period.
const MaxPeriod = 10 * 366 * 24 * time.Hour

// maxEntries bounds the entry indexes a finding lists; EntriesTotal gives
// the full count.
const maxEntries = 50

// ErrInvalid marks an unusable period.
var ErrInvalid = fault.Generic(fault.Invalid, "report: invalid request")

// Facts is what a report states, and what the parties sign.
type Facts struct {
	Format    string   `json:"format"`
	Agreement string   `json:"agreement"`
	Parties   []string `json:"parties"` // party A, party B, as the agreement records them
	From      string   `json:"from"`    // RFC 3339, UTC; the period is [from, to)
	To        string   `json:"to"`
	Sides     []Side   `json:"sides"` // one per party, in Parties' order
	// Series is the give-to-get over the period: Buckets points.
	Series    []Point       `json:"series"`
	Requests  []RequestFlow `json:"requests"` // one per direction: A asks B, B asks A
	Handovers Handovers     `json:"handovers"`
	Contests  []ContestFlow `json:"contests"` // one per contesting party
	Matching  Matching      `json:"matching"`
	Ledger    Span          `json:"ledger"`
	Agreed    []Finding     `json:"agreed"`
	Concerns  []Finding     `json:"concerns"`
}

// Side is what one party gave in the period.
type Side struct {
	Party string `json:"party"`
	// Contributed counts its objects that earned credit in the period
	// (new to the agreement by content), over Batches feed batches.
	Contributed int64 `json:"contributed"`
	Batches     int64 `json:"batches"`
	// Released counts its objects released to the other side in the
	// period; ReleasedTotal all released to it by the period's end.
	Released      int64 `json:"released"`
	ReleasedTotal int64 `json:"released_total"`
	// ByType and ByTLP break Released down (the objects' latest versions).
	ByType map[string]int64 `json:"by_type"`
	ByTLP  map[string]int64 `json:"by_tlp"`
}

// Point is the cumulative figures at one instant.
type Point struct {
	Time string `json:"time"`
	// Contributed and Released are per party, in Parties' order: what it
	// contributed (credited), and what was released to it.
	Contributed []int64 `json:"contributed"`
	Released    []int64 `json:"released"`
}

// RequestFlow is the requests one party filed with the other.
type RequestFlow struct {
	Requester     string         `json:"requester"`
	Responder     string         `json:"responder"`
	Filed         int            `json:"filed"`
	Acknowledged  int            `json:"acknowledged"`
	AckLate       int            `json:"acknowledged_late"`
	Fulfilled     int            `json:"fulfilled"`
	FulfilledLate int            `json:"fulfilled_late"`
	Refused       int            `json:"refused"`
	Grounds       map[string]int `json:"grounds"`     // refusals by ground
	Overdue       int            `json:"overdue"`     // deadlines missed (request.overdue entries)
	OpenAtEnd     int            `json:"open_at_end"` // filed by then and not answered
}

// Handovers counts handover steps in the period.
type Handovers struct {
	Proposed          int `json:"proposed"`
	Accepted          int `json:"accepted"`
	Declined          int `json:"declined"`
	DepositsWithdrawn int `json:"deposits_withdrawn"`
	Released          int `json:"released"`
	Expired           int `json:"expired"`
	Disputed          int `json:"disputed"`
}

// ContestFlow is the contests one party filed against the other's credits.
type ContestFlow struct {
	Contester string `json:"contester"`
	Filed     int    `json:"filed"`
	Withdrawn int    `json:"withdrawn"`
	// StandingAtEnd counts contests filed by the period's end and not withdrawn.
	StandingAtEnd int `json:"standing_at_end"`
}

// Matching counts private matching sessions. The size of an overlap is
// computed on each party's own machine and never reaches the server: the
// report has only what the ledger holds.
type Matching struct {
	Sessions int `json:"sessions"`
	// Elements counts the identifiers each party submitted in round 1,
	// in Parties' order.
	Elements  []int64 `json:"elements"`
	Completed int     `json:"completed"` // sessions whose round 2 was released to both
}

// Span is the part of the ledger the report rests on.
type Span struct {
	Entries int64 `json:"entries"` // the agreement's entries in the period
	First   int64 `json:"first"`   // their lowest index; -1 if none
	Last    int64 `json:"last"`    // their highest index; -1 if none
}

// Finding is one statement of the report with the ledger entries that
// prove it.
type Finding struct {
	Kind         string  `json:"kind"`
	Text         string  `json:"text"`
	Entries      []int64 `json:"entries"` // at most 50; EntriesTotal counts all
	EntriesTotal int     `json:"entries_total"`
}

// Canonical returns the RFC 8785 encoding of f: what Hash covers.
func (f *Facts) Canonical() ([]byte, error) { return canonjson.Marshal(f) }

// Hash returns "sha256:<hex>" of f's canonical encoding.
func (f *Facts) Hash() (string, error) {
	b, err := f.Canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Report is the facts with what is said about them: their hash, the
// checkpoint that covers them and the signatures recorded for this period.
type Report struct {
	Facts Facts  `json:"facts"`
	Hash  string `json:"hash"`
	// Checkpoint is the latest signed checkpoint; Covered says whether it
	// covers every entry the facts rest on (inclusion proofs against it
	// prove them).
	Checkpoint Checkpoint                 `json:"checkpoint"`
	Signatures []exchange.ReportSignature `json:"signatures"`
	// Names are the parties' registered names, for display; not signed.
	Names map[string]string `json:"names"`
	// Across is set for a report under an agreement between two nodes:
	// how this node counted each side, and how its figures compare with
	// those the other node signed (acrossnodes.go). Not signed.
	Across *Across `json:"across,omitempty"`
}

// Checkpoint is a signed tree head.
type Checkpoint struct {
	Size    int64  `json:"size"`
	Note    string `json:"note,omitempty"`
	Covered bool   `json:"covered"`
}

// SignedBy reports whether party's signature of this very report is recorded.
func (r *Report) SignedBy(party string) bool {
	return slices.ContainsFunc(r.Signatures, func(s exchange.ReportSignature) bool { return s.Party == party && s.Matches })
}

// Service builds reports and records their signatures.
type Service struct {
	ex      *exchange.Service
	ledger  ledger.Reader
	parties *party.Service // optional: names for display
}

// New returns a Service. parties may be nil (parties are then shown by id).
func New(ex *exchange.Service, l ledger.Reader, parties *party.Service) *Service {
	return &Service{ex: ex, ledger: l, parties: parties}
}

// ParsePeriod reads the from and to of a request (RFC 3339 or a date,
// 2006-01-02). Errors wrap ErrInvalid and say what was wrong.
func ParsePeriod(from, to string) (time.Time, time.Time, error) {
	f, err := parseTime(from)
	if err != nil {
		return time.Time{}, time.Time{}, fault.Errorf("%w: from: %v", ErrInvalid, err)
	}
	t, err := parseTime(to)
	if err != nil {
		return time.Time{}, time.Time{}, fault.Errorf("%w: to: %v", ErrInvalid, err)
	}
	if !f.Before(t) {
		return time.Time{}, time.Time{}, fault.Errorf("%w: from %s is not before to %s", ErrInvalid, from, to)
	}
	if t.Sub(f) > MaxPeriod {
		return time.Time{}, time.Time{}, fault.Errorf("%w: a period of at most ten years", ErrInvalid)
	}
	return f, t, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("required (RFC 3339 time or YYYY-MM-DD date)")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a YYYY-MM-DD date", s)
}

// Build returns p's report on agreementID over [from, to). Errors:
// exchange.ErrNotFound for anyone not a party to it.
func (s *Service) Build(ctx context.Context, p party.Principal, agreementID string, from, to time.Time) (*Report, error) {
	from, to = from.UTC(), to.UTC()
	if !from.Before(to) {
		return nil, fault.Errorf("%w: from is not before to", ErrInvalid)
	}
	a, err := s.ex.Agreement(ctx, p, agreementID)
	if err != nil {
		return nil, err
	}
	f, across, err := s.factsFor(ctx, p, a, from, to)
	if err != nil {
		return nil, err
	}
	r := &Report{Facts: *f, Names: map[string]string{}, Across: across}
	if r.Hash, err = f.Hash(); err != nil {
		return nil, err
	}
	size, note, err := s.ledger.LatestCheckpoint(ctx)
	switch {
	case err == nil:
		r.Checkpoint = Checkpoint{Size: size, Note: string(note), Covered: f.Ledger.Last < size}
	case errors.Is(err, ledger.ErrNotFound) || errors.Is(err, store.ErrNotFound):
	default:
		return nil, err
	}
	if r.Signatures, err = s.ex.ReportSignatures(ctx, p, agreementID, from, to, r.Hash); err != nil {
		return nil, err
	}
	if r.Signatures == nil {
		r.Signatures = []exchange.ReportSignature{}
	}
	for _, id := range f.Parties {
		r.Names[id] = id
		if s.parties != nil {
			if pt, err := s.parties.Lookup(ctx, id); err == nil {
				r.Names[id] = pt.Name
			}
		}
	}
	r.differences()
	return r, nil
}

// factsFor returns the facts of a's report over [from, to): across nodes
// (acrossnodes.go) when a is between two nodes, with how they were
// counted; as on one server otherwise.
func (s *Service) factsFor(ctx context.Context, p party.Principal, a exchange.Agreement, from, to time.Time) (*Facts, *Across, error) {
	if local, remote, ok := s.ex.NodeSides(a); ok {
		return s.acrossFacts(ctx, a, local, remote, from, to)
	}
	f, err := s.facts(ctx, p, a, from, to)
	return f, nil, err
}

// Countersign records p's signature of the report on the period sr names.
// The server builds that report again and refuses a statement of any other
// hash (exchange.ErrConflict).
func (s *Service) Countersign(ctx context.Context, p party.Principal, agreementID string, sr agreement.SignedReport) (exchange.ReportSignature, error) {
	if sr.From.IsZero() || sr.To.IsZero() || !sr.From.Before(sr.To) || sr.To.Sub(sr.From) > MaxPeriod {
		return exchange.ReportSignature{}, fault.Errorf("%w: the statement's period is empty or longer than ten years", ErrInvalid)
	}
	a, err := s.ex.Agreement(ctx, p, agreementID)
	if err != nil {
		return exchange.ReportSignature{}, err
	}
	f, _, err := s.factsFor(ctx, p, a, sr.From.UTC(), sr.To.UTC())
	if err != nil {
		return exchange.ReportSignature{}, err
	}
	canon, err := f.Canonical()
	if err != nil {
		return exchange.ReportSignature{}, err
	}
	hash, err := f.Hash()
	if err != nil {
		return exchange.ReportSignature{}, err
	}
	return s.ex.CountersignReport(ctx, p, agreementID, sr, hash, canon)
}

// chunk bounds how many ledger entries one read asks for.
const chunk = 1024

// entry is one decoded ledger entry of the agreement.
type entry struct {
	index int64
	ledger.Entry
}

// entries returns the agreement's ledger entries recorded before to, in
// log order, without report signatures.
func (s *Service) entries(ctx context.Context, agreementID string, to time.Time) ([]entry, error) {
	size, err := s.ledger.Size(ctx)
	if err != nil {
		return nil, fault.Errorf("ledger size: %w", err)
	}
	needle := []byte(`"agreement":` + strconv.Quote(agreementID))
	var out []entry
	for start := int64(0); start < size; start += chunk {
		end := min(start+chunk, size)
		raws, err := s.ledger.ReadEntries(ctx, start, end)
		if err != nil {
			return nil, fault.Errorf("ledger entries [%d, %d): %w", start, end, err)
		}
		for i, raw := range raws {
			if !bytes.Contains(raw, needle) {
				continue
			}
			e, err := ledger.DecodeEntry(raw)
			if err != nil {
				return nil, fault.Errorf("ledger entry %d: %w", start+int64(i), err)
			}
			if e.Agreement != agreementID || e.Kind == ledger.KindReportSigned || !e.Time.Before(to) {
				continue
			}
			out = append(out, entry{start + int64(i), e})
		}
	}
	return out, nil
}

// tally accumulates a finding's entries.
type tally struct {
	n       int
	entries []int64
}

func (t *tally) add(i int64) {
	t.n++
	if len(t.entries) < maxEntries {
		t.entries = append(t.entries, i)
	}
}

func (t *tally) finding(kind, text string) Finding {
	es := t.entries
	if es == nil {
		es = []int64{}
	}
	return Finding{Kind: kind, Text: text, Entries: es, EntriesTotal: t.n}
}

func (s *Service) facts(ctx context.Context, p party.Principal, a exchange.Agreement, from, to time.Time) (*Facts, error) {
	id := a.Record.ID
	A, B := a.Record.PartyA, a.Record.PartyB
	parties := []string{A, B}
	side := func(x string) int {
		if x == B {
			return 1
		}
		return 0
	}
	es, err := s.entries(ctx, id, to)
	if err != nil {
		return nil, err
	}
	f := &Facts{Format: Format, Agreement: id, Parties: parties,
		From: from.Format(time.RFC3339Nano), To: to.Format(time.RFC3339Nano),
		Ledger: Span{First: -1, Last: -1}, Agreed: []Finding{}, Concerns: []Finding{}}
	var (
		contributed, released       [2]int64 // cumulative: by contributor; to recipient
		releasedAtFrom              [2]int64
		batches, credited           [2]int64
		batchT, releaseT            [2]tally
		signT, suspendT, terminateT tally
		handT                       = map[string]*tally{}
		overdueT, ackLateT, fulLate [2]tally // by responder
		fulfilledT, refusedT        [2]tally // by responder
		disputeT                    [2]tally // by disputing party
		contestT                    [2]tally // by contester
		matchT                      tally
		flows                       [2]RequestFlow // by requester
		contests                    [2]ContestFlow
		requests                    = map[string]*struct{ requester, state string }{}
		standing                    = map[string]int{} // contest id → contester side, while standing
		matchHandovers              = map[string]bool{}
	)
	for i := range 2 {
		flows[i] = RequestFlow{Requester: parties[i], Responder: parties[1-i], Grounds: map[string]int{}}
		contests[i] = ContestFlow{Contester: parties[i]}
	}
	f.Matching.Elements = []int64{0, 0}
	for _, k := range []string{"proposed", "accepted", "declined", "deposit_withdrawn", "released", "expired", "disputed"} {
		handT[k] = &tally{}
	}
	// The series: Buckets points, each the cumulative figures at its end.
	step := to.Sub(from) / Buckets
	bucketEnd := func(b int) time.Time {
		if b == Buckets-1 {
			return to
		}
		return from.Add(step * time.Duration(b+1))
	}
	f.Series = make([]Point, 0, Buckets)
	flush := func(until time.Time) {
		for len(f.Series) < Buckets && !bucketEnd(len(f.Series)).After(until) {
			f.Series = append(f.Series, Point{Time: bucketEnd(len(f.Series)).Format(time.RFC3339Nano),
				Contributed: []int64{contributed[0], contributed[1]}, Released: []int64{released[0], released[1]}})
		}
	}
	for _, e := range es {
		in := !e.Time.Before(from)
		if in {
			flush(e.Time)
			f.Ledger.Entries++
			if f.Ledger.First < 0 {
				f.Ledger.First = e.index
			}
			f.Ledger.Last = e.index
		}
		switch e.Kind {
		case ledger.KindAgreementProposed, ledger.KindAgreementSigned, ledger.KindAgreementAmended:
			if in {
				signT.add(e.index)
			}
		case ledger.KindAgreementSuspended:
			if in {
				suspendT.add(e.index)
			}
		case ledger.KindAgreementTerminated:
			if in {
				terminateT.add(e.index)
			}
		case ledger.KindFeedBatch:
			n, _ := strconv.ParseInt(e.Attrs["credited"], 10, 64)
			if e.Actor != A && e.Actor != B {
				continue
			}
			contributed[side(e.Actor)] += n
			if in {
				batches[side(e.Actor)]++
				credited[side(e.Actor)] += n
				if n > 0 {
					batchT[side(e.Actor)].add(e.index)
				}
			}
		case ledger.KindFeedReleased:
			rc := e.Attrs["recipient"]
			upto, err := strconv.ParseInt(e.Attrs["to"], 10, 64)
			if err != nil || (rc != A && rc != B) {
				return nil, fmt.Errorf("ledger entry %d: a release without recipient or count", e.index)
			}
			released[side(rc)] = upto
			if in {
				releaseT[side(rc)].add(e.index)
			} else {
				releasedAtFrom[side(rc)] = upto
			}
		case ledger.KindFeedContested, ledger.KindFeedContestWithdrawn:
			if e.Actor != A && e.Actor != B {
				continue
			}
			c := side(e.Actor)
			if e.Kind == ledger.KindFeedContested {
				standing[e.Subject] = c
				if in {
					contests[c].Filed++
					contestT[c].add(e.index)
				}
			} else {
				delete(standing, e.Subject)
				if in {
					contests[c].Withdrawn++
				}
			}
		case ledger.KindHandoverProposed:
			if e.Attrs["match"] != "" {
				matchHandovers[e.Subject] = true
			}
			if !in {
				continue
			}
			if e.Attrs["step"] == "accepted" {
				f.Handovers.Accepted++
				handT["accepted"].add(e.index)
			}
			if e.Attrs["step"] == "" || e.Attrs["match"] != "" {
				f.Handovers.Proposed++
				handT["proposed"].add(e.index)
			}
		case ledger.KindHandoverWithdrawn:
			if !in {
				continue
			}
			if e.Attrs["step"] == "declined" {
				f.Handovers.Declined++
				handT["declined"].add(e.index)
			} else {
				f.Handovers.DepositsWithdrawn++
				handT["deposit_withdrawn"].add(e.index)
			}
		case ledger.KindHandoverReleased:
			if in {
				f.Handovers.Released++
				handT["released"].add(e.index)
				if matchHandovers[e.Subject] {
					f.Matching.Completed++
				}
			}
		case ledger.KindHandoverExpired:
			if in {
				f.Handovers.Expired++
				handT["expired"].add(e.index)
			}
		case ledger.KindHandoverDisputed:
			if in && (e.Actor == A || e.Actor == B) {
				f.Handovers.Disputed++
				disputeT[side(e.Actor)].add(e.index)
			}
		case ledger.KindMatchStarted:
			if in {
				f.Matching.Sessions++
				matchT.add(e.index)
			}
		case ledger.KindMatchRound1:
			if in && (e.Actor == A || e.Actor == B) {
				n, _ := strconv.ParseInt(e.Attrs["count"], 10, 64)
				f.Matching.Elements[side(e.Actor)] += n
			}
		case ledger.KindRequestFiled:
			if len(e.Parties) != 2 || (e.Parties[0] != A && e.Parties[0] != B) {
				continue
			}
			requests[e.Subject] = &struct{ requester, state string }{e.Parties[0], "filed"}
			if in {
				flows[side(e.Parties[0])].Filed++
			}
		case ledger.KindRequestUndelivered:
			// Closed on the requester's node: the responder's node never
			// took it, so it is not open at the end.
			if q := requests[e.Subject]; q != nil {
				q.state = "undelivered"
			}
		case ledger.KindRequestAcknowledged, ledger.KindRequestFulfilled, ledger.KindRequestRefused, ledger.KindRequestOverdue:
			q := requests[e.Subject]
			if q == nil {
				continue
			}
			r := side(q.requester) // the flow; the responder is the other side
			switch e.Kind {
			case ledger.KindRequestAcknowledged:
				q.state = "acknowledged"
				if in {
					flows[r].Acknowledged++
					if e.Attrs["in_time"] == "false" {
						flows[r].AckLate++
						ackLateT[1-r].add(e.index)
					}
				}
			case ledger.KindRequestFulfilled:
				q.state = "fulfilled"
				if in {
					flows[r].Fulfilled++
					fulfilledT[1-r].add(e.index)
					if e.Attrs["in_time"] == "false" {
						flows[r].FulfilledLate++
						fulLate[1-r].add(e.index)
					}
				}
			case ledger.KindRequestRefused:
				q.state = "refused"
				if in {
					flows[r].Refused++
					flows[r].Grounds[e.Attrs["ground"]]++
					refusedT[1-r].add(e.index)
				}
			case ledger.KindRequestOverdue:
				if in {
					flows[r].Overdue++
					overdueT[1-r].add(e.index)
				}
			}
		}
	}
	flush(to)
	for _, q := range requests {
		if q.state == "filed" || q.state == "acknowledged" {
			flows[side(q.requester)].OpenAtEnd++
		}
	}
	for _, c := range standing {
		contests[c].StandingAtEnd++
	}
	f.Requests = flows[:]
	f.Contests = contests[:]
	// The breakdown by type and marking of what each side released to the
	// other in the period: what was released by its end less what was by
	// its start.
	for i, x := range parties {
		sd := Side{Party: x, Contributed: credited[i], Batches: batches[i], Released: released[1-i] - releasedAtFrom[1-i],
			ReleasedTotal: released[1-i], ByType: map[string]int64{}, ByTLP: map[string]int64{}}
		if err := s.breakdown(ctx, p, id, x, released[1-i], releasedAtFrom[1-i], &sd); err != nil {
			return nil, err
		}
		f.Sides = append(f.Sides, sd)
	}
	f.findings(parties, batchT, releaseT, &signT, &suspendT, &terminateT, handT, overdueT, ackLateT, fulLate, fulfilledT, refusedT, disputeT, contestT, &matchT)
	return f, nil
}

// breakdown counts by type and TLP the objects of contributor released
// with ordinals in (lo, hi], from the tallies package exchange keeps
// (exchange.ReleasedTally): O(ordinals/1024 × types × levels) rows read,
// never the objects. The figures are those of the objects' latest
// versions, exactly as a count over exchange.ReleasedObjects gives them.
func (s *Service) breakdown(ctx context.Context, p party.Principal, agreementID, contributor string, hi, lo int64, sd *Side) error {
	if hi <= lo {
		return nil
	}
	count := func(upTo int64, sign int64) error {
		ts, err := s.ex.ReleasedTally(ctx, p, agreementID, contributor, upTo)
		if err != nil {
			return err
		}
		for _, t := range ts {
			sd.ByType[t.Type] += sign * t.N
			sd.ByTLP[tlpLabel(t.TLP)] += sign * t.N
		}
		return nil
	}
	if err := count(hi, 1); err != nil {
		return err
	}
	if err := count(lo, -1); err != nil {
		return err
	}
	for k, v := range sd.ByType {
		if v == 0 {
			delete(sd.ByType, k)
		}
	}
	for k, v := range sd.ByTLP {
		if v == 0 {
			delete(sd.ByTLP, k)
		}
	}
	return nil
}

// tlpLabel is the label of a TLP level (stix.TLPLevel; -1: none).
func tlpLabel(level int) string {
	if level < 0 || level >= len(tlpLabels) {
		return Unmarked
	}
	return tlpLabels[level]
}

// TLP labels, least restrictive first, and the label of objects with none.
var tlpLabels = []string{"TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"}

// Unmarked labels an object with no TLP marking.
const Unmarked = "unmarked"

// TLPLabels lists the labels ByTLP uses, least restrictive first.
func TLPLabels() []string { return append(slices.Clone(tlpLabels), Unmarked) }

func (f *Facts) findings(parties []string, batchT, releaseT [2]tally, signT, suspendT, terminateT *tally, handT map[string]*tally,
	overdueT, ackLateT, fulLate, fulfilledT, refusedT, disputeT, contestT [2]tally, matchT *tally) {
	agree := func(t *tally, kind, text string) {
		if t.n > 0 {
			f.Agreed = append(f.Agreed, t.finding(kind, text))
		}
	}
	concern := func(t *tally, kind, text string) {
		if t.n > 0 {
			f.Concerns = append(f.Concerns, t.finding(kind, text))
		}
	}
	agree(signT, "agreement.signed", fmt.Sprintf("%d signed agreement statement(s) (proposal, amendment, countersignature, resumption) in the period", signT.n))
	for i, x := range parties {
		agree(&batchT[i], "contributed", fmt.Sprintf("%s contributed %d object(s) new to the agreement, in %d batch(es) that earned credit", x, f.Sides[i].Contributed, batchT[i].n))
	}
	for i, x := range parties {
		agree(&releaseT[i], "released", fmt.Sprintf("%d of %s's object(s) were released to %s (%d in all by the period's end)", f.Sides[1-i].Released, parties[1-i], x, f.Sides[1-i].ReleasedTotal))
	}
	agree(handT["released"], "handover.released", fmt.Sprintf("%d handover(s) released to both sides at once", handT["released"].n))
	agree(handT["proposed"], "handover.proposed", fmt.Sprintf("%d handover(s) proposed", handT["proposed"].n))
	for i, x := range parties {
		agree(&fulfilledT[i], "request.fulfilled", fmt.Sprintf("%s answered %d request(s) of %s through a released handover", x, fulfilledT[i].n, parties[1-i]))
		if refusedT[i].n > 0 {
			agree(&refusedT[i], "request.refused", fmt.Sprintf("%s refused %d request(s) of %s, on the grounds %s", x, refusedT[i].n, parties[1-i], grounds(f.Requests[1-i].Grounds)))
		}
	}
	agree(matchT, "match.started", fmt.Sprintf("%d private matching session(s); %d completed. The overlaps' sizes stay on the parties' own machines", matchT.n, f.Matching.Completed))

	for i, x := range parties {
		concern(&overdueT[i], "request.overdue", fmt.Sprintf("%s missed %d deadline(s) on requests of %s (%d still open at the period's end)", x, overdueT[i].n, parties[1-i], f.Requests[1-i].OpenAtEnd))
		concern(&ackLateT[i], "request.acknowledged_late", fmt.Sprintf("%s acknowledged %d request(s) of %s late", x, ackLateT[i].n, parties[1-i]))
		concern(&fulLate[i], "request.fulfilled_late", fmt.Sprintf("%s answered %d request(s) of %s late", x, fulLate[i].n, parties[1-i]))
		concern(&disputeT[i], "handover.disputed", fmt.Sprintf("%s disputed what %d released handover(s) delivered", x, disputeT[i].n))
		concern(&contestT[i], "feed.contested", fmt.Sprintf("%s contested the credit of %d of %s's object(s) (%d contest(s) standing at the period's end)", x, contestT[i].n, parties[1-i], f.Contests[i].StandingAtEnd))
	}
	concern(handT["expired"], "handover.expired", fmt.Sprintf("%d handover(s) expired without release: a side did not deposit in time", handT["expired"].n))
	concern(suspendT, "agreement.suspended", fmt.Sprintf("the agreement was suspended %d time(s)", suspendT.n))
	concern(terminateT, "agreement.terminated", "the agreement was terminated")
	// One-sided flow: one side released much more than it received.
	g0, g1 := f.Sides[0].Released, f.Sides[1].Released
	if g0+g1 > 0 && (g0 >= 4*max(g1, 1) || g1 >= 4*max(g0, 1)) {
		big, small := 0, 1
		if g1 > g0 {
			big, small = 1, 0
		}
		t := releaseT[small] // the releases of what the side that gave more gave
		f.Concerns = append(f.Concerns, t.finding("one_sided", fmt.Sprintf("one-sided flow: %s gave %d object(s), %s gave %d",
			parties[big], f.Sides[big].Released, parties[small], f.Sides[small].Released)))
	}
}

func grounds(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s (%d)", k, m[k])
	}
	return out
}
