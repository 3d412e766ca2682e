package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestIntelligenceInBrowser drives the intelligence pages (issue 17) in
// headless Chromium as each party of an agreement: the listing of what
// it received and gave, a full-text search and a label filter through the
// form, an object page with its relationship graph drawn as SVG, a step
// across the graph to a neighbour, and the counterpart's unreleased
// object missing from the received side. Screenshots go to
// PARLEY_ARTIFACTS.
func TestIntelligenceInBrowser(t *testing.T) {
	bctx := newBrowser(t)
	dir := artifacts(t)
	axe, missing := axeScript()
	s := Start(t)
	a, b := s.NewParty(t, "cert-north"), s.NewParty(t, "police-south")
	ag := Activate(t, a, b, Document(t, a, b, func(m map[string]any) {
		m["scope"] = map[string]any{"types": []string{"indicator", "malware", "relationship"}, "max_tlp": "amber", "unmarked": "allow"}
		m["reciprocity"] = map[string]any{"ratio": "1:1", "grace": 4}
	}))
	aOwn, _ := Collections(t, a, ag.ID)
	bOwn, _ := Collections(t, b, ag.ID)
	const amber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
	obj := func(typ, id, fields string) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"type":%q,"spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z"%s}`, typ, id, fields))
	}
	vice := "malware--0b5c1a0e-0000-4000-8000-000000000001"
	c2 := "indicator--0b5c1a0e-0000-4000-8000-000000000002"
	rel := "relationship--0b5c1a0e-0000-4000-8000-000000000003"
	leak := "indicator--0b5c1a0e-0000-4000-8000-000000000004"
	secret := "indicator--0b5c1a0e-0000-4000-8000-000000000009"
	ind := func(id, name, pattern string) json.RawMessage {
		return obj("indicator", id, fmt.Sprintf(`,"name":%q,"pattern":%q,"pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","labels":["ransomware"]`, name, pattern))
	}
	// A gives four objects (B reads them by grace) and then a fifth that
	// stays unreleased until B gives.
	if _, err := a.C.AddObjects(ctx, ag.ID, aOwn, []json.RawMessage{
		obj("malware", vice, `,"name":"Vice ransomware","is_family":true,"description":"Ransomware of the Vice crew, sold as a service","labels":["ransomware"],"object_marking_refs":["`+amber+`"]`),
		ind(c2, "Vice C2 server", "[ipv4-addr:value = '203.0.113.66']"),
		obj("relationship", rel, `,"relationship_type":"indicates","source_ref":"`+c2+`","target_ref":"`+vice+`"`),
		ind(leak, "Vice leak site", "[domain-name:value = 'vice-leaks.example']"),
		ind(secret, "Tip", "[domain-name:value = 'not-yet.example']"),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.C.AddObjects(ctx, ag.ID, bOwn, Indicators(2000, 3)); err != nil {
		t.Fatal(err)
	}
	// B gave 3 and reads 4 + 3 = 7: all of A's five are released. A gives
	// three more; the last, its eighth, is beyond what B may read.
	more := "indicator--0b5c1a0e-0000-4000-8000-000000000010"
	var extra []json.RawMessage
	for i := range 2 {
		extra = append(extra, ind(fmt.Sprintf("indicator--0b5c1a0e-0000-4000-8000-%012d", 100+i), fmt.Sprintf("Filler %d", i), fmt.Sprintf("[domain-name:value = 'filler%d.example']", i)))
	}
	extra = append(extra, ind(more, "Still hidden", "[domain-name:value = 'hidden.example']"))
	if _, err := a.C.AddObjects(ctx, ag.ID, aOwn, extra); err != nil {
		t.Fatal(err)
	}

	signIn := func(token string) {
		t.Helper()
		if err := do(bctx, chromedp.Navigate(s.URL+"/ui/signin"), chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("agreements"))); err != nil {
			t.Fatalf("signing in: %v", err)
		}
	}
	signIn(b.Token)
	if err := do(bctx, chromedp.Click(chromedp.CSS(`nav.main a[href="/ui/intel"]`)), chromedp.WaitVisible(chromedp.ID("intel-results"))); err != nil {
		t.Fatalf("opening Intelligence from the menu: %v", err)
	}
	list := text(t, bctx, "#intel-results")
	for _, want := range []string{"Vice ransomware", "Vice C2 server", "Vice leak site", "from cert-north", "TLP:AMBER"} {
		if !strings.Contains(list, want) {
			t.Errorf("B's listing lacks %q:\n%s", want, list)
		}
	}
	for _, hidden := range []string{"Still hidden"} {
		if strings.Contains(list, hidden) {
			t.Errorf("B's listing shows A's unreleased %q", hidden)
		}
	}
	screenshot(t, bctx, dir, "intel-1-received-and-given")
	runAxe(t, bctx, axe, missing, "intel-1-received-and-given")

	// A search through the form: words of a description and of a pattern.
	// (The value attribute is the server's: only the new page has it.)
	if err := do(bctx, chromedp.SendKeys(chromedp.ID("f-q"), "vice"), chromedp.Click(chromedp.ID("f-apply")),
		chromedp.WaitVisible(chromedp.CSS(`#f-q[value="vice"]`))); err != nil {
		t.Fatal(err)
	}
	rows, err := run(bctx, chromedp.Nodes(chromedp.CSSAll("tr.intel-row")))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Errorf("searching vice lists %d rows, want 3:\n%s", len(rows), text(t, bctx, "#intel-results"))
	}
	screenshot(t, bctx, dir, "intel-2-search")
	runAxe(t, bctx, axe, missing, "intel-2-search")
	if err := do(bctx, chromedp.Navigate(s.URL+"/ui/intel?q=hidden.example"), chromedp.WaitVisible(chromedp.ID("intel-empty"))); err != nil {
		t.Fatalf("a search for A's unreleased object did not come back empty: %v", err)
	}

	// The object page of the malware, with its graph; then across the
	// graph to the indicator.
	if err := do(bctx, chromedp.Navigate(s.URL+"/ui/intel?type=malware"), chromedp.WaitVisible(chromedp.CSS("a.object-link")),
		chromedp.Click(chromedp.CSS("a.object-link")), chromedp.WaitVisible(chromedp.ID("relationship-graph"))); err != nil {
		t.Fatalf("opening the object page: %v", err)
	}
	if h := text(t, bctx, "h1"); !strings.Contains(h, "Vice ransomware") {
		t.Fatalf("object page heading %q", h)
	}
	for _, want := range []string{"TLP:AMBER", "released it to you", "feed.released", "indicates"} {
		if page := text(t, bctx, "main"); !strings.Contains(page, want) {
			t.Errorf("object page lacks %q", want)
		}
	}
	nodes, err := run(bctx, chromedp.Nodes(chromedp.CSSAll("#relationship-graph g.node")))
	if err != nil || len(nodes) != 2 {
		t.Fatalf("graph has %d nodes (%v), want the malware and its indicator", len(nodes), err)
	}
	screenshot(t, bctx, dir, "intel-3-object-graph")
	runAxe(t, bctx, axe, missing, "intel-3-object-graph")
	if err := do(bctx, chromedp.Click(chromedp.CSS(`#relationship-graph a.node-link circle`)), chromedp.WaitVisible(chromedp.ID("provenance"))); err != nil {
		t.Fatalf("following the graph: %v", err)
	}
	if h := text(t, bctx, "h1"); !strings.Contains(h, "Vice C2 server") {
		t.Fatalf("the graph led to %q, want the C2 indicator", h)
	}
	screenshot(t, bctx, dir, "intel-4-neighbour")
	runAxe(t, bctx, axe, missing, "intel-4-neighbour")

	// A sees its own contributions as given, the hidden one included.
	if err := do(bctx, chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatal(err)
	}
	signIn(a.Token)
	if err := do(bctx, chromedp.Navigate(s.URL+"/ui/intel?dir=given&label=ransomware"), chromedp.WaitVisible(chromedp.ID("intel-results"))); err != nil {
		t.Fatal(err)
	}
	if list := text(t, bctx, "#intel-results"); !strings.Contains(list, "Still hidden") || !strings.Contains(list, "given to police-south") {
		t.Errorf("A's given listing:\n%s", list)
	}
	screenshot(t, bctx, dir, "intel-5-given")
	runAxe(t, bctx, axe, missing, "intel-5-given")
}
