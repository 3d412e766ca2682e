package web

import (
	"context"
	"encoding/json"
	stdhtml "html"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/report"
)

// TestReportPage: each party of an agreement sees the same joint report
// (same hash) as a page with SVG charts and the two parts side by side, and
// as JSON; a third party and a bad period get errors that say so; the
// page passes the same strict CSP as every other.
func TestReportPage(t *testing.T) {
	f := newFixture(t)
	from := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	to := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	path := "/ui/agreements/" + f.agreementID + "/report?from=" + from + "&to=" + to
	var hashes []string
	for _, tok := range []string{f.tokA, f.tokB} {
		b := f.browser(t)
		b.signIn(tok)
		resp, html := b.do("GET", path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("report page: %d\n%s", resp.StatusCode, html)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("CSP %q", csp)
		}
		for _, want := range []string{`id="agree"`, `id="concerns"`, "<svg", "<polyline", "cert-north", "police-south", `href="/ui/report.css"`,
			"parley report sign --agreement " + f.agreementID} {
			if !strings.Contains(html, want) {
				t.Errorf("the report page lacks %q", want)
			}
		}
		i := strings.Index(html, `id="report-hash">`)
		if i < 0 {
			t.Fatal("no report hash on the page")
		}
		hashes = append(hashes, html[i+17:i+17+71])
		resp, body := b.do("GET", "/ui/agreements/"+f.agreementID+"/report.json?from="+from+"&to="+to, nil)
		var rep report.Report
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil || rep.Hash != hashes[len(hashes)-1] {
			t.Fatalf("report.json: %d, hash %q vs page %q", resp.StatusCode, rep.Hash, hashes[len(hashes)-1])
		}
		if rep.Facts.Sides[0].Contributed != 30 || rep.Facts.Sides[1].Contributed != 5 {
			t.Errorf("contributed %d and %d, the fixture gave 30 and 5", rep.Facts.Sides[0].Contributed, rep.Facts.Sides[1].Contributed)
		}
	}
	if hashes[0] != hashes[1] || !strings.HasPrefix(hashes[0], "sha256:") {
		t.Fatalf("the parties see different reports: %v", hashes)
	}
	// Once signed, the page shows the signed statement itself, byte for
	// byte as stored, for anyone to check again.
	pf, _ := time.Parse(time.RFC3339, from)
	pt, _ := time.Parse(time.RFC3339, to)
	sr, err := agreement.SignReport(f.keyA, agreement.ReportStatement{AgreementID: f.agreementID, PartyID: f.a.PartyID, ReportHash: hashes[0],
		From: pf, To: pt, SignedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := report.New(f.ex, f.st.Ledger(), nil).Countersign(context.Background(), f.a, f.agreementID, sr)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(sr)
	if string(sig.Statement) != string(raw) {
		t.Fatalf("the recorded statement %s is not the one signed, %s", sig.Statement, raw)
	}
	for _, tok := range []string{f.tokA, f.tokB} {
		b := f.browser(t)
		b.signIn(tok)
		_, page := b.do("GET", path, nil)
		if !strings.Contains(page, "Signed statement of ledger #"+strconv.FormatInt(sig.LedgerIndex, 10)) || !strings.Contains(stdhtml.UnescapeString(page), string(raw)) {
			t.Errorf("the signed report's page lacks the statement %s", raw)
		}
	}
	c := f.browser(t)
	c.signIn(f.tokC)
	if resp, _ := c.do("GET", path, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a third party gets %d for the report, want 404", resp.StatusCode)
	}
	b := f.browser(t)
	b.signIn(f.tokA)
	if resp, html := b.do("GET", "/ui/agreements/"+f.agreementID+"/report?from=2026-12-01&to=2026-11-01", nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(html, "not before") {
		t.Errorf("a reversed period: %d", resp.StatusCode)
	}
	// Defaults: the last 30 days.
	if resp, html := b.do("GET", "/ui/agreements/"+f.agreementID+"/report", nil); resp.StatusCode != http.StatusOK || !strings.Contains(html, `name="from"`) {
		t.Errorf("the report with the default period: %d", resp.StatusCode)
	}
	if resp, css := b.do("GET", "/ui/report.css", nil); resp.StatusCode != http.StatusOK || !strings.Contains(css, ".joint-report") {
		t.Errorf("report.css: %d", resp.StatusCode)
	}
}
