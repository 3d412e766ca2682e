package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/demo"
	"github.com/parley-cti/parley/internal/escrow"
)

// axeScript finds axe-core's axe.min.js: $PARLEY_AXE_JS, else where .ci/run
// installs it (npm install axe-core@4 into a cache directory, never into
// the repository). It returns "" and why when there is none.
func axeScript() (string, string) {
	var candidates []string
	if p := os.Getenv("PARLEY_AXE_JS"); p != "" {
		candidates = append(candidates, p)
	}
	if dir, err := os.UserCacheDir(); err == nil {
		candidates = append(candidates, filepath.Join(dir, "parley-axe", "node_modules", "axe-core", "axe.min.js"))
	}
	for _, p := range candidates {
		if b, err := os.ReadFile(p); err == nil {
			return string(b), ""
		}
	}
	return "", fmt.Sprintf("axe-core is not installed (looked in %s); run: npm install --prefix ~/.cache/parley-axe axe-core@4 (as .ci/run does), or set PARLEY_AXE_JS", strings.Join(candidates, ", "))
}

// axeViolation is the part of an axe-core result the test reports.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any `json:"target"`
	} `json:"nodes"`
}

// runAxe injects axe-core into the page (only here, in the test: the
// dashboard never serves it) and fails on any serious or critical
// violation. Without axe-core it skips, saying why, unless CI is set,
// where it fails.
func runAxe(t *testing.T, bctx context.Context, axe, missing, page string) {
	t.Helper()
	t.Run("accessibility/"+page, func(t *testing.T) {
		if axe == "" {
			if os.Getenv("CI") != "" {
				t.Fatalf("CI is set but %s", missing)
			}
			t.Skip(missing)
		}
		loaded, err := run(bctx, chromedp.Evaluate[bool](axe+"\n;typeof axe === 'object'"))
		if err != nil || !loaded {
			t.Fatalf("injecting axe-core: %v (loaded %v)", err, loaded)
		}
		raw, err := run(bctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`,
			chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("running axe-core: %v", err)
		}
		var vs []axeViolation
		if err := json.Unmarshal([]byte(raw), &vs); err != nil {
			t.Fatalf("axe-core's result: %v", err)
		}
		for _, v := range vs {
			if v.Impact == "serious" || v.Impact == "critical" {
				var where []string
				for _, n := range v.Nodes {
					where = append(where, fmt.Sprint(n.Target...))
				}
				t.Errorf("%s: %s violation %s (%s) at %s", page, v.Impact, v.ID, v.Help, strings.Join(where, "; "))
			} else {
				t.Logf("%s: %s violation %s (%s)", page, v.Impact, v.ID, v.Help)
			}
		}
	})
}

// TestWorkbenchInBrowser signs in as each party of the demo in headless
// Chromium, walks every page of the workbench, and takes every step from
// the browser: countersign an agreement after reviewing it (pasting the
// statement `parley agreement sign --print` would make), propose, accept,
// deposit and fetch a handover, file, acknowledge and refuse requests with
// a coded ground, contest a credit, and watch the notification count and
// the events page follow the event stream. Each page is saved as a
// screenshot to $PARLEY_ARTIFACTS and checked with axe-core.
func TestWorkbenchInBrowser(t *testing.T) {
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
	a := &Party{ID: res.A.ID, Name: res.A.Name, Token: res.A.Token, Keys: res.A.Keys, C: res.A.C}
	b := &Party{ID: res.B.ID, Name: res.B.Name, Token: res.B.Token, Keys: res.B.Keys, C: res.B.C}
	// A proposes a second agreement, one whose credits can be contested;
	// B reviews and signs it in the browser.
	doc := Document(t, a, b, func(m map[string]any) {
		m["reciprocity"].(map[string]any)["contest_window"] = "24h"
	})
	if _, err := a.C.Propose(ctx, doc, Sign(t, a, doc, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}

	shot := 0
	visit := func(name, path, waitFor string) {
		t.Helper()
		if err := do(bctx, chromedp.Navigate(s.URL+path), chromedp.WaitVisible(chromedp.CSS(waitFor))); err != nil {
			t.Fatalf("opening %s: %v", path, err)
		}
		shot++
		screenshot(t, bctx, dir, fmt.Sprintf("workbench-%02d-%s", shot, name))
		runAxe(t, bctx, axe, missing, name)
	}
	signIn := func(p *Party) {
		t.Helper()
		if err := do(bctx,
			chromedp.Navigate(s.URL+"/ui/signin"),
			chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), p.Token),
			chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("agreements")),
		); err != nil {
			t.Fatalf("signing in as %s: %v", p.Name, err)
		}
	}
	signOut := func() {
		t.Helper()
		if err := do(bctx, chromedp.Navigate(s.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("signout")),
			chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
			t.Fatalf("signing out: %v", err)
		}
	}
	notice := func(want string) {
		t.Helper()
		if err := do(bctx, chromedp.WaitVisible(chromedp.CSS("p.notice"))); err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		// The form's answer replaces a page that may carry the previous
		// step's notice: wait for the new one rather than read the old.
		// The old page's notice may also vanish between finding and
		// reading it ("No node with given id found"): read again.
		for deadline := time.Now().Add(stepTimeout); ; time.Sleep(50 * time.Millisecond) {
			got, err := run(bctx, chromedp.Text(chromedp.CSS("p.notice")))
			if err == nil && strings.Contains(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the page says %q (%v), want %q", got, err, want)
			}
		}
	}
	submit := func(form string, fields map[string]string, button string) {
		t.Helper()
		var steps []chromedp.Action[chromedp.Void]
		for sel, v := range fields {
			steps = append(steps, chromedp.SetValue(chromedp.CSS(sel), v))
		}
		steps = append(steps, chromedp.Click(chromedp.CSS(button)))
		if err := do(bctx, steps...); err != nil {
			t.Fatalf("submitting %s: %v", form, err)
		}
	}

	// ---- B: review and countersign, propose a handover, file a request.
	signIn(b)
	visit("b-overview", "/ui/", "#agreements")
	visit("b-review", "/ui/agreements/"+doc.ID, "#review")
	h := doc.Hash()
	cmd := text(t, bctx, "#sign-command")
	if want := fmt.Sprintf("parley agreement sign %s --version 1 --hash %x", doc.ID, h[:]); cmd != want {
		t.Fatalf("the sign command reads %q, want %q", cmd, want)
	}
	// What `parley agreement sign … --print` prints on B's machine.
	sig, err := json.Marshal(Sign(t, b, doc, agreement.ActionCountersign))
	if err != nil {
		t.Fatal(err)
	}
	submit("the signature", map[string]string{"#signature": string(sig)}, "#sign-submit")
	notice("Signature accepted")
	if ph := text(t, bctx, "#phase"); ph != "active" {
		t.Fatalf("after countersigning in the browser the phase is %q", ph)
	}
	visit("b-handovers", "/ui/handovers", "#propose-form")
	submit("the proposal", map[string]string{"#p-agreement": res.Agreement, "#p-delivers": "Dossier on the Lantern crew's money mule",
		"#p-expects": "Dossier on its affiliate recruiter"}, "#propose-submit")
	notice("Handover proposed")
	hid, err := run(bctx, chromedp.AttributeValue(chromedp.CSS(`dl.facts input.id`), "value"))
	if err != nil || !strings.HasPrefix(hid.Value, "handover--") {
		t.Fatalf("the new handover's id: %+v, %v", hid, err)
	}
	visit("b-handover-proposed", "/ui/handovers/"+hid.Value, "#handover-state")
	visit("b-requests", "/ui/requests", "#file-form")
	submit("the request", map[string]string{"#r-agreement": res.Agreement, "#r-subject": "Wallets of the Lantern crew",
		"#r-reason": "ransom payments traced in case 2026-117", "#r-refs": "wallet:bc1qlantern"}, "#file-submit")
	notice("Request filed")
	rid, err := run(bctx, chromedp.AttributeValue(chromedp.CSS(`dl.facts input.id`), "value"))
	if err != nil || !strings.HasPrefix(rid.Value, "request--") {
		t.Fatalf("the new request's id: %+v, %v", rid, err)
	}
	// B contributes to the new agreement, so A has credits to contest.
	bOwn, _ := Collections(t, b, doc.ID)
	if _, err := b.C.AddObjects(ctx, doc.ID, bOwn, Indicators(5000, 3)); err != nil {
		t.Fatal(err)
	}
	signOut()

	// ---- A: the events, accept and deposit, answer the request, contest.
	signIn(a)
	if n := text(t, bctx, "#notify-count"); n == "0" || n == "" {
		t.Fatalf("A's notification count reads %q after B's handover and request", n)
	}
	visit("a-events", "/ui/events", "#waiting")
	if w := text(t, bctx, "#waiting"); !strings.Contains(w, "Accept or decline the handover") || !strings.Contains(w, "Wallets of the Lantern crew") {
		t.Fatalf("A's waiting list:\n%s", w)
	}
	// Live: an event arriving while the page is open appears without a reload.
	if err := do(bctx, chromedp.WaitVisible(chromedp.CSS(`body[data-live="open"]`))); err != nil {
		t.Fatalf("the events page did not open its stream: %v", err)
	}
	pb, err := s.Srv.Parties.Authenticate(ctx, b.Token)
	if err != nil {
		t.Fatal(err)
	}
	live, err := s.Srv.Escrow.Propose(ctx, pb, escrow.ProposeInput{AgreementID: res.Agreement, Delivers: "a live one", Expects: "z"})
	if err != nil {
		t.Fatal(err)
	}
	if err := do(bctx, chromedp.WaitVisible(chromedp.CSS(`tr.event.live a[href="/ui/handovers/`+live.Handover.ID+`"]`))); err != nil {
		t.Fatalf("the new event did not appear live: %v", err)
	}
	shot++
	screenshot(t, bctx, dir, fmt.Sprintf("workbench-%02d-a-events-live", shot))

	visit("a-handover", "/ui/handovers/"+hid.Value, "#decide")
	if err := do(bctx, chromedp.Click(chromedp.CSS("#decide button.accept"))); err != nil {
		t.Fatal(err)
	}
	notice("Handover accepted")
	visit("a-handover-accepted", "/ui/handovers/"+hid.Value, "#deposit-form")
	submit("A's deposit", map[string]string{"#d-text": markedBundle(1)}, "#deposit-submit")
	notice("Deposit stored")

	visit("a-request", "/ui/requests/"+rid.Value, "#answer")
	if err := do(bctx, chromedp.Click(chromedp.ID("acknowledge"))); err != nil {
		t.Fatal(err)
	}
	notice("Request acknowledged")
	submit("the refusal", map[string]string{"#q-ground": "ongoing_investigation", "#q-text": "the wallets are part of an open case"}, "#refuse")
	notice("Request refused")
	if g := text(t, bctx, "#ground"); g != "ongoing_investigation" {
		t.Fatalf("the refusal's ground reads %q", g)
	}
	visit("a-requests-refused", "/ui/requests?state=refused", "#request-list")

	visit("a-agreement", "/ui/agreements/"+doc.ID, "#contest-form")
	sc, err := agreement.SignContest(a.Keys, agreement.ContestStatement{Action: agreement.ContestFile, AgreementID: doc.ID, PartyID: a.ID,
		KeyID: a.Keys.KeyID(), SignedAt: time.Now(), ObjectID: "indicator--00000000-0000-4000-8000-000000005000", Reason: "a sinkholed address"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(sc)
	submit("the contest", map[string]string{"#contest-statement": string(raw)}, "#contest-submit")
	notice("Contest filed")
	if c := text(t, bctx, "#contests"); !strings.Contains(c, "a sinkholed address") || !strings.Contains(c, "standing") {
		t.Fatalf("the contest is not listed:\n%s", c)
	}
	visit("a-overview", "/ui/", "#agreements")
	signOut()

	// ---- B: deposit, which releases both, and fetch A's bundle.
	signIn(b)
	visit("b-handover-accepted", "/ui/handovers/"+hid.Value, "#deposit-form")
	submit("B's deposit", map[string]string{"#d-text": markedBundle(2)}, "#deposit-submit")
	notice("the handover is released")
	if st := text(t, bctx, "#handover-state"); st != "released" {
		t.Fatalf("after both deposits the state reads %q", st)
	}
	fetched, err := run(bctx, chromedp.Evaluate[string](`fetch(document.querySelector("tr.deposit:not(.mine) a.fetch").href).then(r => r.text())`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetching A's deposit: %v", err)
	}
	if fetched != markedBundle(1) {
		t.Fatalf("B fetched %q, not A's bundle", fetched)
	}
	visit("b-handovers-released", "/ui/handovers?state=released", "#handover-list")
	visit("b-events", "/ui/events", "#event-list")
	visit("b-agreement", "/ui/agreements/"+res.Agreement, "#balance-chart")
	visit("b-requests", "/ui/requests", "#request-list")
	visit("b-ledger", "/ui/ledger", "#ledger-list")
	if l := text(t, bctx, "#ledger-list"); !strings.Contains(l, "handover.released") || !strings.Contains(l, "agreement.signed") {
		t.Fatalf("B's ledger page lacks the release or the signature:\n%s", l)
	}
}

// markedBundle is a deposit inside the demo agreement's scope, which
// refuses unmarked objects: one indicator under TLP:GREEN.
func markedBundle(n int) string {
	return fmt.Sprintf(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-%012d","objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-a000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"handed over %d","pattern":"[ipv4-addr:value = '192.0.2.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","object_marking_refs":["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]}]}`, n, n, n, n)
}
