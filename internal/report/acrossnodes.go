package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/store"
)

// Joint reports across nodes (issue 14; docs/federation.md).
//
// Under an agreement between two nodes, each node holds its own ledger,
// and the two record the same exchange at different indexes and instants:
// the one-server facts (ledger spans, findings citing entries, a series
// over time) can never come out byte-identical on both. What both nodes
// can know alike is the flow in each direction: how many of a party's
// contributions (in its node's publish order) reached the other party.
// Each node knows one half of each flow for certain — what it released of
// its own party's (feed.released, its own count) and what it received of
// the other's (feed.received, what it pulled from the other node) — so a
// report across nodes states, per party, the contributions that reached
// the other side in the period and by its end, counted on this node from
// those two halves. When each node served everything it released, the
// releasing node's count and the receiving node's count agree and both
// nodes build the same facts, byte for byte. When one node served less
// than it released (or claims otherwise), the counts differ, so do the
// hashes, and each node shows, against the other node's signed figures,
// which direction differs and by how much (Report.Across).

// FormatAcrossNodes names the facts of a report under an agreement
// between two nodes: Sides' Released and ReleasedTotal only (by type and
// TLP, series, requests, handovers, contests, matching and the ledger
// span are left empty, being counted differently on each node).
const FormatAcrossNodes = "parley-report/nodes/v1"

// Across says, on one node, how it counted a report across nodes and how
// its figures compare with those the other node signed.
type Across struct {
	// Party is this node's party; Peer the other node's party.
	Party string `json:"party"`
	Peer  string `json:"peer"`
	// Flows says how each side's figures were counted here, in Sides'
	// order.
	Flows []FlowBasis `json:"flows"`
	// Differences compares, for each signature the other party's node
	// relayed of another report on this period, its figures with this
	// node's: which direction, which counts. Empty when they agree.
	Differences []string `json:"differences"`
}

// FlowBasis is how one side's figures were counted on this node.
type FlowBasis struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Basis string `json:"basis"` // "released" (by this node, its own party's) or "received" (by this node, from the other node)
	Text  string `json:"text"`
}

// AcrossFacts returns the facts of a report across nodes on agreementID
// between parties (party A, party B) over [from, to) with fig: everything
// such a report states follows from these, so that any node that counted
// the same figures builds the same bytes.
func AcrossFacts(agreementID string, parties []string, from, to time.Time, fig exchange.Figures) *Facts {
	f := &Facts{Format: FormatAcrossNodes, Agreement: agreementID, Parties: []string{parties[0], parties[1]},
		From: from.UTC().Format(time.RFC3339Nano), To: to.UTC().Format(time.RFC3339Nano),
		Series: []Point{}, Requests: []RequestFlow{}, Contests: []ContestFlow{}, Matching: Matching{Elements: []int64{}},
		Ledger: Span{First: -1, Last: -1}, Agreed: []Finding{}, Concerns: []Finding{}}
	for i, x := range parties {
		f.Sides = append(f.Sides, Side{Party: x, Released: fig.Released[i], ReleasedTotal: fig.ReleasedTotal[i],
			ByType: map[string]int64{}, ByTLP: map[string]int64{}})
	}
	for i, x := range parties {
		if n := fig.Released[i]; n > 0 {
			f.Agreed = append(f.Agreed, Finding{Kind: "released", Entries: []int64{},
				Text: fmt.Sprintf("%d of %s's contribution(s) reached %s (%d in all by the period's end)", n, x, parties[1-i], fig.ReleasedTotal[i])})
		}
	}
	g0, g1 := fig.Released[0], fig.Released[1]
	if g0+g1 > 0 && (g0 >= 4*max(g1, 1) || g1 >= 4*max(g0, 1)) {
		big, small := 0, 1
		if g1 > g0 {
			big, small = 1, 0
		}
		f.Concerns = append(f.Concerns, Finding{Kind: "one_sided", Entries: []int64{},
			Text: fmt.Sprintf("one-sided flow: %s gave %d object(s), %s gave %d", parties[big], fig.Released[big], parties[small], fig.Released[small])})
	}
	return f
}

// figuresOf returns the figures a report's facts state.
func figuresOf(f *Facts) exchange.Figures {
	var fig exchange.Figures
	for i := range min(2, len(f.Sides)) {
		fig.Released[i], fig.ReleasedTotal[i] = f.Sides[i].Released, f.Sides[i].ReleasedTotal
	}
	return fig
}

// acrossFacts counts, on this node, the facts of a report across nodes on
// a over [from, to), with how each side was counted.
func (s *Service) acrossFacts(ctx context.Context, a exchange.Agreement, local, remote string, from, to time.Time) (*Facts, *Across, error) {
	id := a.Record.ID
	parties := []string{a.Record.PartyA, a.Record.PartyB}
	es, err := s.entries(ctx, id, to)
	if err != nil {
		return nil, nil, err
	}
	var (
		released, releasedAtFrom int64 // of local's, released to remote by this node
		received, receivedAtFrom int64 // of remote's, received here from its node
		covered                  int64 // the peer's publish order received so far
	)
	for _, e := range es {
		in := !e.Time.Before(from)
		switch e.Kind {
		case ledger.KindFeedReleased:
			if e.Attrs["recipient"] != remote || e.Attrs["contributor"] != local {
				continue
			}
			upto, err := strconv.ParseInt(e.Attrs["to"], 10, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("ledger entry %d: a release without a count", e.index)
			}
			released = max(released, upto)
			if !in {
				releasedAtFrom = released
			}
		case ledger.KindFeedReceived:
			if e.Attrs["contributor"] != remote {
				continue
			}
			lo, err1 := strconv.ParseInt(e.Attrs["from"], 10, 64)
			hi, err2 := strconv.ParseInt(e.Attrs["to"], 10, 64)
			n, err3 := strconv.ParseInt(e.Attrs["objects"], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil || lo < 1 || hi < lo || n < 0 {
				return nil, nil, fmt.Errorf("ledger entry %d: a received page without its range or count", e.index)
			}
			// A page pulled again (the node stopped between its ingest
			// and its cursor) counts only past what was counted.
			if hi <= covered {
				continue
			}
			if lo <= covered {
				n = min(n, hi-covered)
			}
			covered = hi
			received += n
			if !in {
				receivedAtFrom = received
			}
		}
	}
	var fig exchange.Figures
	for i, x := range parties {
		if x == local {
			fig.Released[i], fig.ReleasedTotal[i] = released-releasedAtFrom, released
		} else {
			fig.Released[i], fig.ReleasedTotal[i] = received-receivedAtFrom, received
		}
	}
	ac := &Across{Party: local, Peer: remote, Differences: []string{}}
	for _, x := range parties {
		if x == local {
			ac.Flows = append(ac.Flows, FlowBasis{From: local, To: remote, Basis: "released",
				Text: "released by this node: its own count of its party's contributions it released to the other party (what the other node may pull)"})
		} else {
			ac.Flows = append(ac.Flows, FlowBasis{From: remote, To: local, Basis: "received",
				Text: "received by this node: the other party's contributions this node pulled from the other node"})
		}
	}
	return AcrossFacts(id, parties, from, to, fig), ac, nil
}

// differences compares this node's figures with those of each signature
// the other node relayed of another report on the period.
func (r *Report) differences() {
	ac := r.Across
	if ac == nil {
		return
	}
	mine := figuresOf(&r.Facts)
	seen := map[exchange.Figures]bool{}
	for _, sg := range r.Signatures {
		if sg.Via == "" || sg.Figures == nil || sg.Matches || seen[*sg.Figures] {
			continue
		}
		seen[*sg.Figures] = true
		for i, x := range r.Facts.Parties {
			theirs := sg.Figures
			if theirs.Released[i] == mine.Released[i] && theirs.ReleasedTotal[i] == mine.ReleasedTotal[i] {
				continue
			}
			other := r.Facts.Parties[1-i]
			var rel, rec [2]int64 // in the period, by its end
			relNode, recNode := "this node", "the other node ("+sg.Via+")"
			if x == ac.Party {
				rel = [2]int64{mine.Released[i], mine.ReleasedTotal[i]}
				rec = [2]int64{theirs.Released[i], theirs.ReleasedTotal[i]}
			} else {
				rel = [2]int64{theirs.Released[i], theirs.ReleasedTotal[i]}
				rec = [2]int64{mine.Released[i], mine.ReleasedTotal[i]}
				relNode, recNode = recNode, relNode
			}
			text := fmt.Sprintf("%s → %s: %s, %s's node, states it released %d in the period (%d by its end); %s, %s's node, states it received %d (%d)",
				r.name(x), r.name(other), relNode, r.name(x), rel[0], rel[1], recNode, r.name(other), rec[0], rec[1])
			switch d := rel[1] - rec[1]; {
			case d > 0:
				text += fmt.Sprintf(": %d released but not received — %s's node served less than it released (withheld, or not yet pulled: a release just before the period's end reaches the other node just after it)", d, r.name(x))
			case d < 0:
				text += fmt.Sprintf(": %d received beyond what was released — %s's node counts its releases lower than what it served", -d, r.name(x))
			default:
				text += ": the totals agree; the period's start falls differently on the two nodes"
			}
			ac.Differences = append(ac.Differences, text)
		}
	}
}

// ReceiveSignature takes a report signature the node of the signer
// relayed (exchange.ReportMessage): the facts must be a report across
// nodes, as AcrossFacts builds it, on the statement's agreement and
// period, hashing to the hash the statement signs (exchange.ErrInvalid
// otherwise, naming what differs); exchange then checks the agreement,
// the nodes and the signature and records it (ReceiveReportSignature).
func (s *Service) ReceiveSignature(ctx context.Context, peer store.Peer, m exchange.ReportMessage) (exchange.ReportReceipt, error) {
	var sr agreement.SignedReport
	if err := strictDecode(m.Statement, &sr); err != nil {
		return exchange.ReportReceipt{}, fault.Errorf("%w: the statement is not a signed report: %v", exchange.ErrInvalid, err)
	}
	var f Facts
	if err := strictDecode(m.Facts, &f); err != nil {
		return exchange.ReportReceipt{}, fault.Errorf("%w: the facts are not a report: %v", exchange.ErrInvalid, err)
	}
	from, to := sr.From.UTC(), sr.To.UTC()
	switch {
	case sr.AgreementID != m.Agreement || f.Agreement != m.Agreement:
		return exchange.ReportReceipt{}, fault.Errorf("%w: the statement is for %s and the facts for %s, not %s", exchange.ErrInvalid, sr.AgreementID, f.Agreement, m.Agreement)
	case f.Format != FormatAcrossNodes:
		return exchange.ReportReceipt{}, fault.Errorf("%w: the facts are of format %q, not %s", exchange.ErrInvalid, f.Format, FormatAcrossNodes)
	case from.IsZero() || !from.Before(to) || to.Sub(from) > MaxPeriod:
		return exchange.ReportReceipt{}, fault.Errorf("%w: the statement's period is empty or longer than ten years", exchange.ErrInvalid)
	case f.From != from.Format(time.RFC3339Nano) || f.To != to.Format(time.RFC3339Nano):
		return exchange.ReportReceipt{}, fault.Errorf("%w: the facts cover %s to %s, the statement %s to %s", exchange.ErrInvalid, f.From, f.To,
			from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	case len(f.Parties) != 2 || len(f.Sides) != 2:
		return exchange.ReportReceipt{}, fault.Errorf("%w: the facts name %d parties and %d sides, not 2", exchange.ErrInvalid, len(f.Parties), len(f.Sides))
	}
	fig := figuresOf(&f)
	for i := range 2 {
		if fig.Released[i] < 0 || fig.Released[i] > fig.ReleasedTotal[i] {
			return exchange.ReportReceipt{}, fault.Errorf("%w: the facts state %d released in the period of %d in all", exchange.ErrInvalid, fig.Released[i], fig.ReleasedTotal[i])
		}
	}
	// The facts must be exactly what AcrossFacts builds from their own
	// figures: nothing added, nothing left out, so that the figures
	// recorded here stand for the facts signed.
	want, err := AcrossFacts(m.Agreement, f.Parties, from, to, fig).Canonical()
	if err != nil {
		return exchange.ReportReceipt{}, err
	}
	got, err := f.Canonical()
	if err != nil || !bytes.Equal(got, want) {
		return exchange.ReportReceipt{}, fault.Errorf("%w: the facts are not a report across nodes as parley builds it from their figures", exchange.ErrInvalid)
	}
	if hash, err := f.Hash(); err != nil || hash != sr.ReportHash {
		return exchange.ReportReceipt{}, fault.Errorf("%w: the statement signs %s, but the facts relayed with it hash to %s", exchange.ErrInvalid, sr.ReportHash, hash)
	}
	return s.ex.ReceiveReportSignature(ctx, peer, sr, f.Parties, fig)
}

// strictDecode decodes one JSON value into v, refusing unknown fields.
func strictDecode(b []byte, v any) error {
	if len(b) == 0 {
		return fmt.Errorf("empty")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// name is a party's display name in r.
func (r *Report) name(id string) string {
	if n := r.Names[id]; n != "" {
		return n
	}
	return id
}
