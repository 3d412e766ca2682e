package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/request"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium with a fresh profile. It skips only
// when Chromium is missing outside CI; in CI a missing browser fails.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("chromium is not installed at " + chromiumPath + " (apt-get install chromium); CI runs this test")
		}
		t.Fatalf("CI is set but %s is missing: .ci/run must install chromium: %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first run starts the browser and must not carry a timeout: the
	// timeout would end the browser with it. Steps get theirs in do.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// stepTimeout bounds each browser step.
const stepTimeout = 30 * time.Second

// run runs one browser action with a timeout.
func run[T any](bctx context.Context, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(bctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// do runs browser steps in order with a timeout.
func do(bctx context.Context, steps ...chromedp.Action[chromedp.Void]) error {
	_, err := run(bctx, chromedp.Steps(steps...))
	return err
}

// artifacts is where screenshots go: $PARLEY_ARTIFACTS, else a temp dir.
func artifacts(t *testing.T) string {
	dir := os.Getenv("PARLEY_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, bctx context.Context, dir, name string) {
	t.Helper()
	png, err := run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, "browser-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// text returns the text of the element sel selects.
func text(t *testing.T, bctx context.Context, sel string) string {
	t.Helper()
	v, err := run(bctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return v
}

func location(t *testing.T, bctx context.Context) string {
	t.Helper()
	v, err := run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// lastValue returns the data-value of the last point of a chart series.
func lastValue(t *testing.T, bctx context.Context, series string) string {
	t.Helper()
	v, err := run(bctx, chromedp.AttributeValue(chromedp.CSS(`#balance-chart g[data-series="`+series+`"] circle.point:last-of-type`), "data-value"))
	if err != nil || !v.Exists {
		t.Fatalf("last point of %s: %+v, %v", series, v, err)
	}
	return v.Value
}

// TestDashboardInBrowser drives the dashboard in real headless Chromium:
// sign in with a token, open an agreement, see the balance chart drawn from
// real feed traffic, accept a handover, see an open request, have a forged
// CSRF token refused, sign out, and be sent back to sign-in when the
// session expires.
func TestDashboardInBrowser(t *testing.T) {
	bctx := newBrowser(t)
	dir := artifacts(t)
	s := Start(t)
	a, b := s.NewParty(t, "cert-north"), s.NewParty(t, "police-south")
	ag := Activate(t, a, b, Document(t, a, b, nil))
	aOwn, _ := Collections(t, a, ag.ID)
	bOwn, _ := Collections(t, b, ag.ID)
	for i := range 3 {
		if _, err := a.C.AddObjects(ctx, ag.ID, aOwn, Indicators(i*10, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.C.AddObjects(ctx, ag.ID, bOwn, Indicators(1000, 5)); err != nil {
		t.Fatal(err)
	}
	// A proposes a handover to B and asks B for something.
	pa, err := s.Srv.Parties.Authenticate(ctx, a.Token)
	if err != nil {
		t.Fatal(err)
	}
	hv, err := s.Srv.Escrow.Propose(ctx, pa, escrow.ProposeInput{AgreementID: ag.ID,
		Delivers: "Dossier on the operator of the Vice crew's leak site", Expects: "Dossier on its affiliate recruiter"})
	if err != nil {
		t.Fatalf("proposing a handover: %v", err)
	}
	if _, err := s.Srv.Requests.File(ctx, pa, request.FileInput{AgreementID: ag.ID, Subject: "Wallets used by the Vice crew",
		Reason: "ransom payments traced in case 2026-117"}); err != nil {
		t.Fatalf("filing a request: %v", err)
	}
	if _, _, err := s.Srv.Checkpointer.SignNow(ctx); err != nil {
		t.Fatal(err)
	}

	// Signed out, / leads to the sign-in form.
	if err := do(bctx, chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	if loc := location(t, bctx); !strings.HasSuffix(loc, "/ui/signin") {
		t.Fatalf("signed out, / led to %s", loc)
	}
	screenshot(t, bctx, dir, "1-signin")
	signIn := func(token string) {
		t.Helper()
		if err := do(bctx,
			chromedp.SendKeys(chromedp.ID("token"), token),
			chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("agreements")),
		); err != nil {
			t.Fatalf("signing in: %v", err)
		}
	}

	// A wrong token is refused with a message saying what to do.
	if err := do(bctx,
		chromedp.SendKeys(chromedp.ID("token"), "parley_not-a-real-token"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	); err != nil {
		t.Fatalf("signing in with a wrong token: %v", err)
	}
	if msg := text(t, bctx, "p.notice"); !strings.Contains(msg, "not valid") {
		t.Fatalf("wrong token: page says %q", msg)
	}

	signIn(b.Token)
	if overview := text(t, bctx, "main"); !strings.Contains(overview, "cert-north") || !strings.Contains(overview, "active") {
		t.Fatalf("overview does not list the agreement with cert-north:\n%s", overview)
	}
	if verified := text(t, bctx, "#checkpoint-verified"); !strings.HasPrefix(verified, "passed") {
		t.Fatalf("checkpoint verification reads %q", verified)
	}
	if reqs := text(t, bctx, "#requests"); !strings.Contains(reqs, "Wallets used by the Vice crew") || !strings.Contains(reqs, "cert-north asked you") {
		t.Fatalf("open requests read:\n%s", reqs)
	}
	screenshot(t, bctx, dir, "2-overview")

	// Accept the handover: a POST with the session's CSRF token.
	if err := do(bctx,
		chromedp.Click(chromedp.CSS(`tr.handover button.accept`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	); err != nil {
		t.Fatalf("accepting the handover: %v", err)
	}
	if msg := text(t, bctx, "p.notice"); !strings.Contains(msg, "Handover accepted") {
		t.Fatalf("after accepting: %q", msg)
	}
	if st := text(t, bctx, "tr.handover .handover-state"); st != "accepted" {
		t.Fatalf("handover row shows %q after accepting", st)
	}
	pb, err := s.Srv.Parties.Authenticate(ctx, b.Token)
	if err != nil {
		t.Fatal(err)
	}
	if hs, err := s.Srv.Escrow.List(ctx, pb, ag.ID); err != nil || len(hs) != 1 || hs[0].ID != hv.Handover.ID || hs[0].State != "accepted" {
		t.Fatalf("server-side after accepting in the browser: %+v, %v", hs, err)
	}
	screenshot(t, bctx, dir, "2b-handover-accepted")

	// Open the agreement and find the chart's data points.
	if err := do(bctx, chromedp.Click(chromedp.CSS("a.agreement-link")), chromedp.WaitVisible(chromedp.ID("balance-chart"))); err != nil {
		t.Fatalf("opening the agreement: %v", err)
	}
	points, err := run(bctx, chromedp.Nodes(chromedp.CSSAll("#balance-chart circle.point")))
	if err != nil {
		t.Fatal(err)
	}
	// B's view: B gave 5, A gave 30, and B may read 10 + 2×5 = 20 of A's.
	if len(points) < 3*4 || len(points)%3 != 0 {
		t.Fatalf("%d chart points, want at least 4 in each of 3 series", len(points))
	}
	mine, theirs, released := lastValue(t, bctx, "mine"), lastValue(t, bctx, "theirs"), lastValue(t, bctx, "released")
	if mine != "5" || theirs != "30" || released != "20" {
		t.Fatalf("chart ends at mine=%s theirs=%s released=%s, want 5, 30, 20", mine, theirs, released)
	}
	screenshot(t, bctx, dir, "3-agreement")

	// A forged CSRF token is refused and leaves the session alone.
	if err := do(bctx,
		chromedp.SetAttributeValue(chromedp.CSS(`header input[name="csrf"]`), "value", "forged-"+strconv.Itoa(len(points))),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	); err != nil {
		t.Fatalf("posting a forged CSRF token: %v", err)
	}
	if msg := text(t, bctx, "p.notice"); !strings.Contains(msg, "CSRF check failed") {
		t.Fatalf("forged CSRF token: page says %q", msg)
	}
	screenshot(t, bctx, dir, "4-csrf-refused")
	if err := do(bctx, chromedp.Navigate(s.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("agreements"))); err != nil {
		t.Fatalf("the refused sign-out ended the session: %v", err)
	}

	// Sign out for real.
	if err := do(bctx,
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.Navigate(s.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
	); err != nil {
		t.Fatalf("signing out: %v", err)
	}
	if loc := location(t, bctx); !strings.HasSuffix(loc, "/ui/signin") {
		t.Fatalf("after signing out /ui/ shows %s", loc)
	}

	// An expired session leads back to sign-in, saying why.
	signIn(a.Token)
	later := time.Now().Add(2 * time.Hour)
	s.Srv.Web.SetClock(func() time.Time { return later })
	if err := do(bctx, chromedp.Navigate(s.URL+"/ui/agreements/"+ag.ID), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if loc, notice := location(t, bctx), text(t, bctx, "p.notice"); !strings.Contains(loc, "/ui/signin?expired=1") || !strings.Contains(notice, "expired") {
		t.Fatalf("expired session: at %s saying %q", loc, notice)
	}
	screenshot(t, bctx, dir, "5-expired")
}
