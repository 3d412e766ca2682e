package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/demo"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/tests/e2e"
)

// reportWorld is the demo's exchange on a real server, with a CLI profile
// (config file, key file) per party.
type reportWorld struct {
	s        *e2e.Server
	res      *demo.Result
	from, to string
	dir      string
}

func newReportWorld(t *testing.T) *reportWorld {
	t.Helper()
	s := e2e.Start(t)
	from := time.Now().UTC().Add(-time.Minute)
	var out strings.Builder
	res, err := demo.Run(context.Background(), demo.PartyService{S: s.Srv.Parties}, s.URL, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	// A closed period: nothing the server appends later falls in it.
	to := time.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	w := &reportWorld{s: s, res: res, from: from.Format(time.RFC3339Nano), to: to.Format(time.RFC3339Nano), dir: t.TempDir()}
	for _, m := range []*demo.Member{res.A, res.B} {
		if err := agreement.WritePrivateKeysFile(filepath.Join(w.dir, m.Name+".keys"), m.Keys); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// cli runs parley as member m (its own config directory and key file) and
// returns the exit code, stdout and stderr.
func (w *reportWorld) cli(t *testing.T, m *demo.Member, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("PARLEY_CONFIG", filepath.Join(w.dir, m.Name, "profiles.json"))
	args = append(args, "--server", w.s.URL, "--token", m.Token, "--keys", filepath.Join(w.dir, m.Name+".keys"))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func (w *reportWorld) period() []string {
	return []string{"--agreement", w.res.Agreement, "--from", w.from, "--to", w.to}
}

// TestReportCountersignCLI: both parties fetch the joint report of the
// demo through the CLI, get the same facts and hash, and sign it with
// their own keys; the signatures are ledger entries `parley verify`
// replays and proves. A party signing for the other, a tampered hash, a
// forged signature and a third party are refused, and none leaves an entry.
func TestReportCountersignCLI(t *testing.T) {
	w := newReportWorld(t)
	a, b := w.res.A, w.res.B
	var reps [2]report.Report
	for i, m := range []*demo.Member{a, b} {
		code, out, errs := w.cli(t, m, append([]string{"report", "--format", "json"}, w.period()...)...)
		if code != 0 {
			t.Fatalf("%s: report: exit %d: %s", m.Name, code, errs)
		}
		if err := json.Unmarshal([]byte(out), &reps[i]); err != nil {
			t.Fatalf("%s: report JSON: %v\n%s", m.Name, err, out)
		}
	}
	if reps[0].Hash != reps[1].Hash {
		t.Fatalf("the parties are shown different reports: %s and %s", reps[0].Hash, reps[1].Hash)
	}
	if h, _ := reps[0].Facts.Hash(); h != reps[0].Hash {
		t.Fatalf("hash %s of facts %s claimed", h, reps[0].Hash)
	}
	if len(reps[0].Signatures) != 0 {
		t.Fatalf("signatures before anyone signed: %+v", reps[0].Signatures)
	}

	// Hostile statements first, through the API as a client would send them.
	ctx := context.Background()
	from, to, _ := report.ParsePeriod(w.from, w.to)
	good := agreement.ReportStatement{AgreementID: w.res.Agreement, PartyID: a.ID, ReportHash: reps[0].Hash, From: from, To: to, SignedAt: time.Now()}
	sign := func(k *agreement.PrivateKeys, st agreement.ReportStatement) agreement.SignedReport {
		t.Helper()
		sr, err := agreement.SignReport(k, st)
		if err != nil {
			t.Fatal(err)
		}
		return sr
	}
	third := w.s.NewParty(t, "Third-Party")
	tampered := good
	tampered.ReportHash = "sha256:" + strings.Repeat("0", 64)
	asB := good
	asB.PartyID = b.ID
	forged := sign(a.Keys, good)
	forged.Sig = append([]byte(nil), forged.Sig...)
	forged.Sig[5] ^= 0x40
	thirds := good
	thirds.PartyID = third.ID
	for _, tc := range []struct {
		name   string
		c      *client.Client
		sr     agreement.SignedReport
		status int
	}{
		{"alpha signs in bravo's name with its own key", a.C, sign(a.Keys, asB), 403},
		{"a tampered report hash", a.C, sign(a.Keys, tampered), 409},
		{"a forged signature", a.C, forged, 400},
		{"a third party signs", third.C, sign(third.Keys, thirds), 404},
		{"a third party submits alpha's signature", third.C, sign(a.Keys, good), 404},
	} {
		_, _, err := tc.c.SignReport(ctx, tc.sr)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.StatusCode != tc.status {
			t.Errorf("%s: %v, want status %d", tc.name, err, tc.status)
		}
	}
	// Bravo signs a statement in alpha's name naming its own key: the key is
	// not alpha's.
	bKeyAsA := good
	bKeyAsA.KeyID = ""
	srB, err := agreement.SignReport(b.Keys, bKeyAsA)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.C.SignReport(ctx, srB); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("bravo's key under alpha's name, sent by alpha: %v, want 403", err)
	}
	// Bravo's key under bravo's name, submitted with alpha's token.
	if _, _, err := a.C.SignReport(ctx, sign(b.Keys, asB)); err == nil {
		t.Error("alpha submitted bravo's signature as its own")
	}

	for _, m := range []*demo.Member{a, b} {
		code, out, errs := w.cli(t, m, append([]string{"report", "sign", "--json"}, w.period()...)...)
		if code != 0 {
			t.Fatalf("%s: report sign: exit %d: %s", m.Name, code, errs)
		}
		var sig client.ReportSignature
		if err := json.Unmarshal([]byte(out), &sig); err != nil || sig.Party != m.ID || !sig.Matches || sig.LedgerIndex <= 0 {
			t.Fatalf("%s: report sign said %s (%v)", m.Name, out, err)
		}
	}
	raw, err := a.C.Report(ctx, w.res.Agreement, w.from, w.to)
	if err != nil {
		t.Fatal(err)
	}
	var after report.Report
	if err := json.Unmarshal(raw, &after); err != nil {
		t.Fatal(err)
	}
	if after.Hash != reps[0].Hash {
		t.Fatalf("signing changed the report: %s, then %s", reps[0].Hash, after.Hash)
	}
	if len(after.Signatures) != 2 || !after.SignedBy(a.ID) || !after.SignedBy(b.ID) {
		t.Fatalf("signatures after both signed (and five refusals): %+v", after.Signatures)
	}
	// The signed statements are kept: each party fetches both and checks
	// them on its own machine against the signers' registered keys.
	for _, m := range []*demo.Member{a, b} {
		code, out, errs := w.cli(t, m, "report", "signatures", "--agreement", w.res.Agreement, "--json")
		if code != 0 {
			t.Fatalf("%s: report signatures: exit %d: %s\n%s", m.Name, code, errs, out)
		}
		var listed []checkedSignature
		if err := json.Unmarshal([]byte(out), &listed); err != nil {
			t.Fatal(err)
		}
		if len(listed) != 2 || listed[0].Party != a.ID || listed[1].Party != b.ID || listed[0].LedgerIndex != after.Signatures[0].LedgerIndex ||
			listed[1].LedgerIndex != after.Signatures[1].LedgerIndex {
			t.Fatalf("%s: report signatures = %s", m.Name, out)
		}
		for _, x := range listed {
			var sr agreement.SignedReport
			if x.Check != "ok" || json.Unmarshal(x.Statement, &sr) != nil || sr.ReportHash != reps[0].Hash || x.ReportHash != reps[0].Hash {
				t.Fatalf("%s: signature of %s: check %q, statement %s", m.Name, x.Party, x.Check, x.Statement)
			}
			// The statement is the one the ledger entry commits to.
			if d, err := exchangeStatementDigest(sr); err != nil || len(x.Statement) == 0 || d != sha256Hex(x.Statement) {
				t.Fatalf("%s: the statement's digest %s is not that of its bytes (%v)", m.Name, d, err)
			}
		}
		// A statement altered after the fact fails the check.
		bad := listed[1].ReportSignature
		var sr agreement.SignedReport
		_ = json.Unmarshal(bad.Statement, &sr)
		sr.Sig[3] ^= 1
		bad.Statement, _ = json.Marshal(sr)
		if got := checkReportSignature(clientKeys{ctx: ctx, c: m.C, party: bad.Party}, w.res.Agreement, bad); !strings.HasPrefix(got, "FAILED") {
			t.Fatalf("%s: an altered signature checked %q", m.Name, got)
		}
		bad = listed[0].ReportSignature
		bad.ReportHash = "sha256:" + strings.Repeat("1", 64)
		if got := checkReportSignature(clientKeys{ctx: ctx, c: m.C, party: bad.Party}, w.res.Agreement, bad); !strings.HasPrefix(got, "FAILED") {
			t.Fatalf("%s: a statement of another hash than listed checked %q", m.Name, got)
		}
	}
	// Each party's own client proves its signature's entry and replays the
	// whole log, report signatures included.
	for _, m := range []*demo.Member{a, b} {
		code, out, errs := w.cli(t, m, "verify")
		if code != 0 {
			t.Fatalf("%s: verify after signing: exit %d\n%s\n%s", m.Name, code, out, errs)
		}
	}
}

// TestReportFormats: the CLI writes the report as HTML (charts as SVG, the
// two parts side by side) and, when Chromium is installed, as PDF.
func TestReportFormats(t *testing.T) {
	w := newReportWorld(t)
	code, out, errs := w.cli(t, w.res.A, append([]string{"report", "--format", "html"}, w.period()...)...)
	if code != 0 {
		t.Fatalf("html: exit %d: %s", code, errs)
	}
	for _, want := range []string{"Where the parties agree", "Areas of concern", "<svg", "CERT-Nordland", "Police-Suedmark", "indicator"} {
		if !strings.Contains(out, want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
	if strings.Contains(out, "<script") {
		t.Error("the HTML report has a script")
	}
	pdf := filepath.Join(t.TempDir(), "report.pdf")
	if _, err := os.Stat(chromiumPath); err != nil {
		code, _, errs := w.cli(t, w.res.A, append([]string{"report", "--format", "pdf", "--out", pdf}, w.period()...)...)
		if code == 0 || !strings.Contains(errs, "Chromium") {
			t.Errorf("pdf without chromium: exit %d, %q; want a failure naming Chromium", code, errs)
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but there is no Chromium at %s: the PDF is untested", chromiumPath)
		}
		t.Skipf("no Chromium at %s (and CI unset): the PDF is not printed", chromiumPath)
	}
	code, out, errs = w.cli(t, w.res.A, append([]string{"report", "--format", "pdf", "--out", pdf}, w.period()...)...)
	if code != 0 {
		t.Fatalf("pdf: exit %d: %s %s", code, out, errs)
	}
	b, err := os.ReadFile(pdf)
	if err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) || len(b) < 2000 {
		t.Fatalf("the PDF: %d bytes, %v, starts %q", len(b), err, b[:min(len(b), 8)])
	}
	if dir := os.Getenv("PARLEY_ARTIFACTS"); dir != "" {
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, "joint-report.pdf"), b, 0o644); err != nil {
			t.Error(err)
		}
	}
}

func exchangeStatementDigest(sr agreement.SignedReport) (string, error) {
	return exchange.StatementDigest(sr)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
