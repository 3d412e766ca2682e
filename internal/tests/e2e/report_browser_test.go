package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley-cti/parley/internal/demo"
)

// TestJointReportInBrowser: after the demo's exchange and both parties'
// signatures of the joint report, a party opens it from its agreement's
// page in headless Chromium (no JavaScript: the CSP allows none) and sees
// the two parts side by side, the charts and both signatures; the page is
// saved as a screenshot to $PARLEY_ARTIFACTS.
func TestJointReportInBrowser(t *testing.T) {
	bctx := newBrowser(t)
	dir := artifacts(t)
	axe, missing := axeScript()
	s := Start(t)
	var out strings.Builder
	res, err := demo.Run(ctx, demo.PartyService{S: s.Srv.Parties}, s.URL, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if _, _, err := s.Srv.Checkpointer.SignNow(ctx); err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Truncate(24 * time.Hour)
	from, to := day.AddDate(0, 0, -1), day.AddDate(0, 0, 1)
	for _, m := range []*demo.Member{res.A, res.B} {
		signJointReport(t, &Party{ID: m.ID, Name: m.Name, Token: m.Token, Keys: m.Keys, C: m.C}, res.Agreement, from, to)
	}

	if err := do(bctx,
		chromedp.Navigate(s.URL+"/ui/signin"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), res.B.Token),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("agreements")),
		chromedp.Navigate(s.URL+"/ui/agreements/"+res.Agreement),
		chromedp.WaitVisible(chromedp.ID("report-link")),
		chromedp.Click(chromedp.ID("report-link")),
		chromedp.WaitVisible(chromedp.ID("joint-report")),
	); err != nil {
		t.Fatalf("opening the report from the agreement page: %v", err)
	}
	if loc := location(t, bctx); !strings.Contains(loc, "/ui/agreements/"+res.Agreement+"/report") {
		t.Fatalf("the report link led to %s", loc)
	}
	// The period form: the signed period, chosen with the date inputs.
	if err := do(bctx,
		chromedp.SetValue(chromedp.CSS(`#report-period input[name="from"]`), from.Format("2006-01-02")),
		chromedp.SetValue(chromedp.CSS(`#report-period input[name="to"]`), to.Format("2006-01-02")),
		chromedp.Click(chromedp.CSS(`#report-period button`)),
	); err != nil {
		t.Fatalf("choosing the period: %v", err)
	}
	want := "from=" + from.Format("2006-01-02") + "&to=" + to.Format("2006-01-02")
	for deadline := time.Now().Add(stepTimeout); !strings.Contains(location(t, bctx), want); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the period form led to %s, want %s", location(t, bctx), want)
		}
	}
	if err := do(bctx, chromedp.WaitVisible(chromedp.ID("report-signatures"))); err != nil {
		t.Fatal(err)
	}
	agree, concerns := text(t, bctx, "#agree"), text(t, bctx, "#concerns")
	if !strings.Contains(agree, "CERT-Nordland contributed") || !strings.Contains(agree, "Police-Suedmark contributed") || !strings.Contains(agree, "handover") {
		t.Errorf("where the parties agree:\n%s", agree)
	}
	if !strings.Contains(concerns, "Areas of concern") {
		t.Errorf("areas of concern:\n%s", concerns)
	}
	if sigs := text(t, bctx, "#report-signatures"); !strings.Contains(sigs, "CERT-Nordland: signed this report") || !strings.Contains(sigs, "Police-Suedmark: signed this report") {
		t.Errorf("signatures on the page: %q, want both parties'", sigs)
	}
	if n, err := run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#joint-report svg.chart").length`)); err != nil || n < 3 {
		t.Errorf("%d charts drawn (%v), want the series and two stacked bars", n, err)
	}
	screenshot(t, bctx, dir, "joint-report")
	runAxe(t, bctx, axe, missing, "joint-report")
}
