package e2e

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/demo"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/report"
)

// fetchReport is p's joint report on agreementID over [from, to), with its
// hash checked against the facts as received.
func fetchReport(t testing.TB, c *client.Client, agreementID string, from, to time.Time) report.Report {
	t.Helper()
	raw, err := c.Report(ctx, agreementID, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	var r report.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	if h, err := r.Facts.Hash(); err != nil || h != r.Hash {
		t.Fatalf("the report claims hash %s; its facts hash to %s (%v)", r.Hash, h, err)
	}
	return r
}

// signJointReport has p sign the joint report on agreementID over [from, to).
func signJointReport(t testing.TB, p *Party, agreementID string, from, to time.Time) *client.ReportSignature {
	t.Helper()
	r := fetchReport(t, p.C, agreementID, from, to)
	sr, err := agreement.SignReport(p.Keys, agreement.ReportStatement{AgreementID: agreementID, PartyID: p.ID, ReportHash: r.Hash,
		From: from, To: to, SignedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	sig, _, err := p.C.SignReport(ctx, sr)
	if err != nil {
		t.Fatalf("%s signs the report: %v", p.Name, err)
	}
	return sig
}

// TestJointReportMatchesReplay: the joint report of the demo's scripted
// exchange states the figures an independent replay of the ledger finds —
// read through the public ledger API and folded by audit.Replay (verify's
// own state machine) and by plain counting here — and the breakdown by
// type of what each side gave is what the other side reads through TAXII.
// Both parties are shown byte-identical facts.
func TestJointReportMatchesReplay(t *testing.T) {
	s := Start(t)
	from := time.Now().UTC().Add(-time.Minute)
	var out strings.Builder
	res, err := demo.Run(ctx, demo.PartyService{S: s.Srv.Parties}, s.URL, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	to := time.Now().UTC()
	time.Sleep(2 * time.Millisecond) // the period is closed: later entries fall after it
	size := ledgerSize(t, s)
	waitCheckpoint(t, s, res.A.Token, size) // so that the report's entries are covered
	ra := fetchReport(t, res.A.C, res.Agreement, from, to)
	rb := fetchReport(t, res.B.C, res.Agreement, from, to)
	fa, _ := ra.Facts.Canonical()
	fb, _ := rb.Facts.Canonical()
	if string(fa) != string(fb) {
		t.Fatalf("the parties are shown different facts:\n%s\n%s", fa, fb)
	}
	f := ra.Facts
	A, B := res.A.ID, res.B.ID
	if !slices.Equal(f.Parties, []string{A, B}) {
		t.Fatalf("parties %v, want %v", f.Parties, []string{A, B})
	}

	// The independent replay: every entry of the log, through the ledger's
	// public HTTP API.
	raws, err := audit.NewRemote(s.URL, res.A.Token, nil).Entries(ctx, 0, size)
	if err != nil || int64(len(raws)) != size {
		t.Fatalf("reading the ledger: %d of %d entries, %v", len(raws), size, err)
	}
	rp := audit.NewReplay()
	type count struct {
		n   int
		sum int64
	}
	kinds := map[string]*count{} // "kind actor" → entries in the period
	var released = map[string]int64{}
	first, last := int64(-1), int64(-1)
	grounds := map[string]int{}
	for i, raw := range raws {
		e, err := ledger.DecodeEntry(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := rp.Apply(int64(i), raw, e); err != nil {
			t.Fatalf("replay: %v", err)
		}
		if e.Agreement != res.Agreement || e.Kind == ledger.KindReportSigned || e.Time.Before(from) || !e.Time.Before(to) {
			continue
		}
		if first < 0 {
			first = int64(i)
		}
		last = int64(i)
		k := string(e.Kind) + " " + e.Actor
		if kinds[k] == nil {
			kinds[k] = &count{}
		}
		kinds[k].n++
		if n, err := strconv.ParseInt(e.Attrs["credited"], 10, 64); err == nil {
			kinds[k].sum += n
		}
		if e.Kind == ledger.KindFeedReleased {
			n, _ := strconv.ParseInt(e.Attrs["to"], 10, 64)
			released[e.Attrs["recipient"]] = n
		}
		if e.Kind == ledger.KindRequestRefused {
			grounds[e.Attrs["ground"]]++
		}
	}
	n := func(kind ledger.Kind, actor string) *count {
		if c := kinds[string(kind)+" "+actor]; c != nil {
			return c
		}
		return &count{}
	}
	ag := rp.Agreements[res.Agreement]
	if ag == nil {
		t.Fatal("the replay does not know the agreement")
	}
	if f.Ledger.First != first || f.Ledger.Last != last {
		t.Errorf("ledger span [%d, %d], the replay finds [%d, %d]", f.Ledger.First, f.Ledger.Last, first, last)
	}
	if !ra.Checkpoint.Covered || ra.Checkpoint.Size <= last {
		t.Errorf("checkpoint %+v does not cover entry %d", ra.Checkpoint, last)
	}
	for i, p := range []string{A, B} {
		sd, other := f.Sides[i], []string{B, A}[i]
		if sd.Party != p || sd.Contributed != ag.Contributed[p] || sd.Contributed != n(ledger.KindFeedBatch, p).sum || sd.Contributed == 0 {
			t.Errorf("%s contributed %d; replay: %d, entries: %d", p, sd.Contributed, ag.Contributed[p], n(ledger.KindFeedBatch, p).sum)
		}
		if sd.ReleasedTotal != ag.Released[other] || sd.Released != released[other] || sd.Released == 0 {
			t.Errorf("%s released %d (%d in all); replay: %d, entries: %d", p, sd.Released, sd.ReleasedTotal, ag.Released[other], released[other])
		}
		// What the other side reads through TAXII is what was released to it.
		m := []*demo.Member{res.B, res.A}[i]
		cs, err := m.C.Collections(ctx, res.Agreement)
		if err != nil {
			t.Fatal(err)
		}
		theirs := ""
		for _, c := range cs {
			if strings.HasPrefix(c.Title, "Released to you: ") { // the other side's feed, not handovers
				theirs = c.ID
			}
		}
		types := map[string]int64{}
		var total int64
		for o, err := range m.C.AllObjects(ctx, res.Agreement, theirs, client.Filter{Limit: 500}) {
			if err != nil {
				t.Fatal(err)
			}
			var head struct{ Type string }
			json.Unmarshal(o, &head)
			types[head.Type]++
			total++
		}
		var tlpTotal int64
		for _, v := range sd.ByTLP {
			tlpTotal += v
		}
		if total != sd.Released || tlpTotal != total || len(types) != len(sd.ByType) {
			t.Errorf("%s reads %d objects of %s through TAXII (%v); the report says %d released (%v; by TLP %v)", m.Name, total, p, types, sd.Released, sd.ByType, sd.ByTLP)
		}
		for k, v := range types {
			if sd.ByType[k] != v {
				t.Errorf("%s's %s released: report %d, TAXII %d", p, k, sd.ByType[k], v)
			}
		}
	}
	// Handovers, requests, matching: counted entries, and the replay's outcomes.
	relH, openReq := 0, 0
	for _, h := range rp.Handovers {
		if h.Agreement == res.Agreement && h.Outcome == ledger.KindHandoverReleased {
			relH++
		}
	}
	fulfilled, refused := 0, 0
	for _, q := range rp.Requests {
		if q.Agreement != res.Agreement {
			continue
		}
		switch q.State {
		case "fulfilled":
			fulfilled++
		case "refused":
			refused++
		default:
			openReq++
		}
	}
	if f.Handovers.Released != relH || relH == 0 || f.Handovers.Released != n(ledger.KindHandoverReleased, "").n {
		t.Errorf("handovers released: report %d, replay %d, entries %d", f.Handovers.Released, relH, n(ledger.KindHandoverReleased, "").n)
	}
	gotFul, gotRef, gotFiled, gotOpen := 0, 0, 0, 0
	gotGrounds := map[string]int{}
	for _, fl := range f.Requests {
		gotFul += fl.Fulfilled
		gotRef += fl.Refused
		gotFiled += fl.Filed
		gotOpen += fl.OpenAtEnd
		for g, k := range fl.Grounds {
			gotGrounds[g] += k
		}
	}
	if gotFul != fulfilled || gotRef != refused || gotOpen != openReq || gotFiled != n(ledger.KindRequestFiled, A).n+n(ledger.KindRequestFiled, B).n || gotFiled == 0 {
		t.Errorf("requests: report filed %d fulfilled %d refused %d open %d; replay fulfilled %d refused %d open %d; entries filed %d",
			gotFiled, gotFul, gotRef, gotOpen, fulfilled, refused, openReq, n(ledger.KindRequestFiled, A).n+n(ledger.KindRequestFiled, B).n)
	}
	for g, k := range grounds {
		if gotGrounds[g] != k {
			t.Errorf("refusals on ground %s: report %d, entries %d", g, gotGrounds[g], k)
		}
	}
	if ms := n(ledger.KindMatchStarted, A).n + n(ledger.KindMatchStarted, B).n; f.Matching.Sessions != ms || ms == 0 {
		t.Errorf("matching sessions: report %d, entries %d", f.Matching.Sessions, ms)
	}
	// Every finding names entries of the agreement inside the period.
	for _, fd := range append(slices.Clone(f.Agreed), f.Concerns...) {
		if len(fd.Entries) == 0 || fd.EntriesTotal < len(fd.Entries) {
			t.Errorf("finding %q names entries %v of %d", fd.Text, fd.Entries, fd.EntriesTotal)
		}
		for _, i := range fd.Entries {
			if i < first || i > last {
				t.Errorf("finding %q names entry %d outside [%d, %d]", fd.Text, i, first, last)
			}
		}
	}
	if len(f.Agreed) < 4 {
		t.Errorf("only %d agreed findings: %+v", len(f.Agreed), f.Agreed)
	}
}
