package node

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/report"
)

// buildOn is n's party's report on docID over [from, to) on n.
func buildOn(t *testing.T, n *fedNode, docID string, from, to time.Time) *report.Report {
	t.Helper()
	r, err := n.rep.Build(ctx, n.me, docID, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// statementOf is n's party's signed statement of the report hashing to hash.
func statementOf(t *testing.T, n *fedNode, docID, hash string, from, to time.Time) agreement.SignedReport {
	t.Helper()
	sr, err := agreement.SignReport(n.keys, agreement.ReportStatement{AgreementID: docID, PartyID: n.me.PartyID, ReportHash: hash,
		From: from, To: to, SignedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return sr
}

// signOn has n's party sign r on its own node, as `parley report sign` does.
func signOn(t *testing.T, n *fedNode, r *report.Report) agreement.SignedReport {
	t.Helper()
	from, to, err := report.ParsePeriod(r.Facts.From, r.Facts.To)
	if err != nil {
		t.Fatal(err)
	}
	sr := statementOf(t, n, r.Facts.Agreement, r.Hash, from, to)
	if _, err := n.rep.Countersign(ctx, n.me, r.Facts.Agreement, sr); err != nil {
		t.Fatal(err)
	}
	return sr
}

// reportMsg is the message a node relays of sr and facts.
func reportMsg(t *testing.T, docID string, sr agreement.SignedReport, f *report.Facts) exchange.ReportMessage {
	t.Helper()
	st, err := json.Marshal(sr)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := f.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return exchange.ReportMessage{Agreement: docID, Statement: st, Facts: fb}
}

func hashOf(t *testing.T, f *report.Facts) string {
	t.Helper()
	h, err := f.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// signedBy lists the parties whose signatures r lists, with whether each
// matches r and the node it came through.
func signedBy(r *report.Report) []string {
	var out []string
	for _, sg := range r.Signatures {
		s := sg.Party
		if sg.Matches {
			s += " matches"
		} else {
			s += " differs"
		}
		if sg.Via != "" {
			s += " via " + sg.Via
		}
		out = append(out, s)
	}
	return out
}

// Alice on A and bob on B exchange feeds; each node counts its own
// party's releases and what it received of the other's, so both build the
// same report, byte for byte. Each signs on their own node; each node
// relays the signature to the other, which checks it and shows it beside
// its own. When A then releases more than B received, the two reports
// differ, and each node says which direction and by how many. What a
// hostile or mistaken node relays is refused, coded, shown to bob as an
// alert, and changes nothing.
func TestJointReportAcrossNodes(t *testing.T) {
	a, b, bob := twoNodes(t)
	doc := agreed(t, a, b, bob, 100)
	push(t, a, doc.ID, 1, 0, 5)
	push(t, b, doc.ID, 2, 0, 3)
	converge(t, a, b)
	from := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	to := from.Add(3 * time.Hour)

	ra, rb := buildOn(t, a, doc.ID, from, to), buildOn(t, b, doc.ID, from, to)
	if ra.Hash != rb.Hash {
		t.Fatalf("the nodes build different reports:\nA %+v\nB %+v", ra.Facts.Sides, rb.Facts.Sides)
	}
	if ra.Facts.Format != report.FormatAcrossNodes || ra.Facts.Sides[0].Party != a.me.PartyID ||
		ra.Facts.Sides[0].Released != 5 || ra.Facts.Sides[0].ReleasedTotal != 5 || ra.Facts.Sides[1].Released != 3 {
		t.Fatalf("facts on A: %+v", ra.Facts)
	}
	if ra.Across == nil || ra.Across.Flows[0].Basis != "released" || ra.Across.Flows[1].Basis != "received" ||
		rb.Across == nil || rb.Across.Flows[0].Basis != "received" || rb.Across.Flows[1].Basis != "released" {
		t.Fatalf("bases: A %+v, B %+v", ra.Across, rb.Across)
	}
	if ks := kinds(t, b, "received--"+doc.ID+"--"+a.me.PartyID+"--5"); len(ks) != 1 || ks[0] != string(ledger.KindFeedReceived) {
		t.Fatalf("B's ledger about the page it pulled: %v", ks)
	}

	// alice signs on A; A relays it to B.
	sa := signOn(t, a, ra)
	if p := a.pending(t); len(p) != 1 || p[0].Kind != exchange.OutboxReportSignature || p[0].PartyID != a.me.PartyID {
		t.Fatalf("A's outbox after alice signed: %+v", p)
	}
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d", got)
	}
	rb = buildOn(t, b, doc.ID, from, to)
	if got := signedBy(rb); len(got) != 1 || got[0] != a.me.PartyID+" matches via alpha" || !rb.SignedBy(a.me.PartyID) {
		t.Fatalf("bob sees on B: %v", got)
	}
	if evs := events(t, b, b.me.PartyID, exchange.EventReportSigned); len(evs) != 1 || evs[0].Subject != doc.ID {
		t.Fatalf("bob's report events: %+v", evs)
	}
	// bob signs on B; B relays it to A. Both nodes then show both.
	signOn(t, b, rb)
	if got := b.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d", got)
	}
	for _, n := range []*fedNode{a, b} {
		r := buildOn(t, n, doc.ID, from, to)
		if !r.SignedBy(a.me.PartyID) || !r.SignedBy(b.me.PartyID) || len(r.Signatures) != 2 || len(r.Across.Differences) != 0 {
			t.Fatalf("on %s: %v, differences %v", n.me.Name, signedBy(r), r.Across.Differences)
		}
	}

	// The same message again is a duplicate, not a second signature.
	msg := reportMsg(t, doc.ID, sa, &ra.Facts)
	size, _ := b.st.Ledger().Size(ctx)
	st, code, out := call(t, a, b, PathReportSignature, msg)
	var rc exchange.ReportReceipt
	if st != http.StatusOK || code != "" || json.Unmarshal(out, &rc) != nil || !rc.Duplicate {
		t.Fatalf("resending answered %d %s %s", st, code, out)
	}
	if after, _ := b.st.Ledger().Size(ctx); after != size {
		t.Fatalf("a duplicate grew B's ledger from %d to %d", size, after)
	}

	// Attacks on B, as A (or a third pinned node) might make them.
	doc2 := a.document(t, bob) // proposed, never countersigned
	if _, _, err := a.ex.Propose(ctx, a.me, doc2.Canonical(), a.sign(t, doc2, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	c := newFedNode(t, "carol")
	c.pin(t, "bravo", b)
	b.pin(t, "charlie", c)
	fig := exchange.Figures{Released: [2]int64{5, 3}, ReleasedTotal: [2]int64{5, 3}}
	parties := []string{a.me.PartyID, b.me.PartyID}
	facts := report.AcrossFacts(doc.ID, parties, from, to, fig)
	fresh := func() exchange.ReportMessage { // a valid new signature of the same report
		return reportMsg(t, doc.ID, statementOf(t, a, doc.ID, hashOf(t, facts), from, to), facts)
	}
	const unknown = "agreement--00000000-0000-4000-8000-000000000009"
	unknownFacts := report.AcrossFacts(unknown, parties, from, to, fig)
	forged := statementOf(t, a, doc.ID, hashOf(t, facts), from, to)
	forged.Sig[0] ^= 1
	longer := statementOf(t, a, doc.ID, hashOf(t, facts), from, to.Add(time.Hour))
	more := report.AcrossFacts(doc.ID, parties, from, to, exchange.Figures{Released: [2]int64{9, 3}, ReleasedTotal: [2]int64{9, 3}})
	padded := report.AcrossFacts(doc.ID, parties, from, to, fig)
	padded.Requests = append(padded.Requests, report.RequestFlow{Requester: a.me.PartyID, Responder: b.me.PartyID, Filed: 1, Grounds: map[string]int{}})
	over := report.AcrossFacts(doc.ID, parties, from, to, exchange.Figures{Released: [2]int64{6, 3}, ReleasedTotal: [2]int64{5, 3}})
	doc2Facts := report.AcrossFacts(doc2.ID, parties, from, to, fig)
	bobs := reportMsg(t, doc.ID, statementOf(t, b, doc.ID, hashOf(t, facts), from, to), facts)
	wrongAgreement := fresh()
	wrongAgreement.Agreement = doc2.ID
	badStatement := fresh()
	badStatement.Statement = json.RawMessage(`{"agreement_id":1}`)
	for _, tc := range []struct {
		name   string
		from   *fedNode
		msg    any
		status int
		code   string
	}{
		{"not alice's node", c, fresh(), http.StatusForbidden, "not_peers_party"},
		{"bob's own signature relayed by alice's node", a, bobs, http.StatusForbidden, "not_peers_party"},
		{"unknown agreement", a, reportMsg(t, unknown, statementOf(t, a, unknown, hashOf(t, unknownFacts), from, to), unknownFacts), http.StatusNotFound, "not_party"},
		{"never countersigned", a, reportMsg(t, doc2.ID, statementOf(t, a, doc2.ID, hashOf(t, doc2Facts), from, to), doc2Facts), http.StatusConflict, "conflict"},
		{"signature does not verify", a, reportMsg(t, doc.ID, forged, facts), http.StatusUnprocessableEntity, "signature_invalid"},
		{"statement for another period than the facts", a, reportMsg(t, doc.ID, longer, facts), http.StatusUnprocessableEntity, "invalid"},
		{"statement for another agreement than the message", a, wrongAgreement, http.StatusUnprocessableEntity, "invalid"},
		{"facts that hash to another report", a, reportMsg(t, doc.ID, statementOf(t, a, doc.ID, hashOf(t, more), from, to), facts), http.StatusUnprocessableEntity, "invalid"},
		{"facts padded beyond a report across nodes", a, reportMsg(t, doc.ID, statementOf(t, a, doc.ID, hashOf(t, padded), from, to), padded), http.StatusUnprocessableEntity, "invalid"},
		{"more released in the period than in all", a, reportMsg(t, doc.ID, statementOf(t, a, doc.ID, hashOf(t, over), from, to), over), http.StatusUnprocessableEntity, "invalid"},
		{"malformed statement", a, badStatement, http.StatusUnprocessableEntity, "invalid"},
		{"malformed message", a, "not a message", http.StatusBadRequest, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alerts := len(events(t, b, b.me.PartyID, exchange.EventReportRefused))
			size, err := b.st.Ledger().Size(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sigs, err := b.st.Agreements().ReportSignatures(ctx, doc.ID)
			if err != nil {
				t.Fatal(err)
			}
			st, code, _ := call(t, tc.from, b, PathReportSignature, tc.msg)
			if st != tc.status || code != tc.code {
				t.Fatalf("refusal = %d %s; want %d %s", st, code, tc.status, tc.code)
			}
			if after, err := b.st.Ledger().Size(ctx); err != nil || after != size {
				t.Fatalf("B's ledger grew from %d to %d (%v)", size, after, err)
			}
			if now, err := b.st.Agreements().ReportSignatures(ctx, doc.ID); err != nil || len(now) != len(sigs) {
				t.Fatalf("B's report signatures went from %d to %d (%v)", len(sigs), len(now), err)
			}
			if m, ok := tc.msg.(exchange.ReportMessage); ok && (m.Agreement == doc.ID || m.Agreement == doc2.ID) {
				if got := len(events(t, b, b.me.PartyID, exchange.EventReportRefused)); got != alerts+1 {
					t.Fatalf("bob got %d refusal alerts, had %d", got, alerts)
				}
			}
		})
	}

	// A releases two more of alice's to bob, which B has not pulled: the
	// reports differ, and each node says where.
	push(t, a, doc.ID, 1, 5, 7)
	ra, rb = buildOn(t, a, doc.ID, from, to), buildOn(t, b, doc.ID, from, to)
	if ra.Hash == rb.Hash || ra.Facts.Sides[0].Released != 7 || rb.Facts.Sides[0].Released != 5 {
		t.Fatalf("after A released more: A %+v, B %+v", ra.Facts.Sides, rb.Facts.Sides)
	}
	signOn(t, a, ra)
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d", got)
	}
	rb = buildOn(t, b, doc.ID, from, to)
	if got := signedBy(rb); len(got) != 3 || got[2] != a.me.PartyID+" differs via alpha" || !rb.SignedBy(b.me.PartyID) {
		t.Fatalf("bob sees on B: %v", got)
	}
	if d := rb.Across.Differences; len(d) != 1 || !strings.Contains(d[0], "alice@alpha → bob") || !strings.Contains(d[0], "released 7 in the period (7 by its end)") ||
		!strings.Contains(d[0], "this node, bob's node, states it received 5 (5)") || !strings.Contains(d[0], "2 released but not received") {
		t.Fatalf("B explains: %q", d)
	}
	ra = buildOn(t, a, doc.ID, from, to)
	if d := ra.Across.Differences; len(d) != 1 || !strings.Contains(d[0], "this node, alice's node, states it released 7") ||
		!strings.Contains(d[0], "the other node (bravo), bob@bravo's node, states it received 5") {
		t.Fatalf("A explains: %q", d)
	}
	// Once B pulls them, the two agree again.
	converge(t, a, b)
	if ra, rb = buildOn(t, a, doc.ID, from, to), buildOn(t, b, doc.ID, from, to); ra.Hash != rb.Hash {
		t.Fatalf("after B pulled: A %+v, B %+v", ra.Facts.Sides, rb.Facts.Sides)
	}
}
