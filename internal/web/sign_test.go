package web

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/party"
)

// proposalTime is one instant for every version a test proposes, so that
// an amendment differs from its predecessor only where the test says.
var proposalTime = time.Now().UTC()

// proposal is a version of an agreement between the fixture's A and B.
func (f *fixture) proposal(t *testing.T, id string, version int, grace int) *agreement.Document {
	t.Helper()
	now := proposalTime
	m := map[string]any{
		"schema_version": 1, "id": id, "version": version,
		"parties": []map[string]any{
			{"party_id": f.a.PartyID, "name": f.a.Name, "key_id": f.keyA.KeyID()},
			{"party_id": f.b.PartyID, "name": f.b.Name, "key_id": f.keyB.KeyID()},
		},
		"scope":              map[string]any{"types": []string{"indicator"}, "max_tlp": "amber", "unmarked": "allow"},
		"reciprocity":        map[string]any{"ratio": "1:1", "grace": grace, "contest_window": "24h"},
		"escrow_deadline":    "72h",
		"request_deadlines":  map[string]any{"acknowledge": "24h", "fulfil": "168h"},
		"not_before":         now.Add(-time.Minute).Format(time.RFC3339),
		"not_after":          now.Add(365 * 24 * time.Hour).Format(time.RFC3339),
		"termination_notice": "0s",
	}
	if version > 1 {
		m["supersedes"] = version - 1
	}
	raw, _ := json.Marshal(m)
	doc, err := agreement.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func signed(t *testing.T, k *agreement.PrivateKeys, doc *agreement.Document, action agreement.Action, partyID string) agreement.Signature {
	t.Helper()
	sig, err := agreement.Sign(k, agreement.StatementFor(doc, action, partyID, k.KeyID(), time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReviewAndSignInPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	doc := f.proposal(t, agreement.NewID(), 1, 5)
	if _, _, err := f.ex.Propose(ctx, f.a, doc.Canonical(), signed(t, f.keyA, doc, agreement.ActionPropose, f.a.PartyID)); err != nil {
		t.Fatal(err)
	}
	apath := "/ui/agreements/" + doc.ID
	a, b := f.browser(t), f.browser(t)
	csrfA, csrfB := a.signIn(f.tokA), b.signIn(f.tokB)
	h := doc.Hash()
	hash := hex.EncodeToString(h[:])
	_, page := b.do("GET", apath, nil)
	for _, want := range []string{`id="review"`, "awaits your countersignature", "parley agreement sign " + doc.ID + " --version 1 --hash " + hash, `id="sign-form"`} {
		if !strings.Contains(page, want) {
			t.Errorf("B's review lacks %q", want)
		}
	}
	if _, page := a.do("GET", apath, nil); !strings.Contains(page, "awaits the other side") || strings.Contains(page, `id="sign-form"`) {
		t.Error("the proposer is asked to countersign its own proposal")
	}
	post := func(who *browser, csrf string, sig string) (*http.Response, string) {
		return who.do("POST", apath+"/signatures", url.Values{"csrf": {csrf}, "signature": {sig}})
	}
	forOther := signed(t, f.keyA, doc, agreement.ActionCountersign, f.a.PartyID)
	wrongKey := signed(t, f.keyA, doc, agreement.ActionCountersign, f.b.PartyID)
	wrongKey.KeyID = f.keyB.KeyID()
	good := signed(t, f.keyB, doc, agreement.ActionCountersign, f.b.PartyID)
	tampered := good
	tampered.DocumentHash = strings.Repeat("0", 64)
	for _, tc := range []struct {
		name   string
		who    *browser
		csrf   string
		sig    string
		status int
		says   string
	}{
		{"no CSRF token", b, "", asJSON(t, good), http.StatusForbidden, "CSRF check failed"},
		{"not JSON", b, csrfB, "sig=abc", http.StatusBadRequest, "Paste the signed statement"},
		{"B submitting A's countersignature", b, csrfB, asJSON(t, forOther), http.StatusBadRequest, "only submit your own"},
		{"A countersigning for B's side", a, csrfA, asJSON(t, good), http.StatusBadRequest, "only submit your own"},
		{"B's name, A's key", b, csrfB, asJSON(t, wrongKey), http.StatusBadRequest, "Refused"},
		{"a hash B did not review", b, csrfB, asJSON(t, tampered), http.StatusConflict, "review version 1"},
	} {
		resp, body := post(tc.who, tc.csrf, tc.sig)
		expect(t, tc.name, resp, body, tc.status, tc.says)
	}
	if _, page := b.do("GET", apath, nil); !strings.Contains(page, `id="phase">proposed<`) {
		t.Fatal("a refused signature changed the agreement")
	}
	resp, _ := post(b, csrfB, asJSON(t, good))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != apath+"?done=signed" {
		t.Fatalf("countersignature: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, body := post(b, csrfB, asJSON(t, good))
	expect(t, "the same signature replayed", resp, body, http.StatusConflict, "Not possible now")
	if _, page := b.do("GET", apath, nil); !strings.Contains(page, `id="phase">active<`) || strings.Contains(page, `id="review"`) {
		t.Fatal("after countersigning the agreement is not active, or still asks for review")
	}

	// An amendment shows what changes.
	v2 := f.proposal(t, doc.ID, 2, 50)
	if _, _, err := f.ex.Amend(ctx, f.a, doc.ID, v2.Canonical(), signed(t, f.keyA, v2, agreement.ActionAmend, f.a.PartyID)); err != nil {
		t.Fatal(err)
	}
	_, page = b.do("GET", apath, nil)
	if !strings.Contains(page, "What changes from version 1") ||
		!strings.Contains(page, `<tr class="change"><td><code>reciprocity.grace</code></td><td>5</td><td><strong>50</strong></td></tr>`) {
		t.Fatalf("the amendment's review does not show grace 5 → 50:\n%s", page)
	}
	if strings.Count(page, `<tr class="change">`) != 1 {
		t.Errorf("the review lists terms that did not change:\n%s", page)
	}
}

func TestContestInPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	doc := f.proposal(t, agreement.NewID(), 1, 5)
	if _, _, err := f.ex.Propose(ctx, f.a, doc.Canonical(), signed(t, f.keyA, doc, agreement.ActionPropose, f.a.PartyID)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ex.Sign(ctx, f.b, doc.ID, signed(t, f.keyB, doc, agreement.ActionCountersign, f.b.PartyID)); err != nil {
		t.Fatal(err)
	}
	f.agreementID = doc.ID
	f.ingest(t, f.a, 0, 3)
	apath := "/ui/agreements/" + doc.ID
	a, b := f.browser(t), f.browser(t)
	csrfA, csrfB := a.signIn(f.tokA), b.signIn(f.tokB)
	_, page := b.do("GET", apath, nil)
	if !strings.Contains(page, `id="contest-form"`) || !strings.Contains(page, "parley contest file "+doc.ID) {
		t.Fatal("B is offered no way to contest a credit")
	}
	object := "indicator--00000000-0000-4000-8000-000000000001"
	contest := func(k *agreement.PrivateKeys, p party.Principal) string {
		sc, err := agreement.SignContest(k, agreement.ContestStatement{Action: agreement.ContestFile, AgreementID: doc.ID, PartyID: p.PartyID,
			KeyID: k.KeyID(), SignedAt: time.Now(), ObjectID: object, Reason: "a sinkholed address"})
		if err != nil {
			t.Fatal(err)
		}
		return asJSON(t, sc)
	}
	resp, body := a.do("POST", apath+"/contests", url.Values{"csrf": {csrfA}, "statement": {contest(f.keyB, f.b)}})
	expect(t, "A filing B's contest", resp, body, http.StatusBadRequest, "only submit your own")
	resp, body = a.do("POST", apath+"/contests", url.Values{"csrf": {csrfA}, "statement": {contest(f.keyA, f.a)}})
	expect(t, "A contesting its own credit", resp, body, http.StatusNotFound, "no such page")
	resp, body = b.do("POST", apath+"/contests", url.Values{"statement": {contest(f.keyB, f.b)}})
	expect(t, "no CSRF token", resp, body, http.StatusForbidden, "CSRF check failed")
	resp, _ = b.do("POST", apath+"/contests", url.Values{"csrf": {csrfB}, "statement": {contest(f.keyB, f.b)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != apath+"?done=contested" {
		t.Fatalf("contest: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	_, page = a.do("GET", apath, nil)
	if !strings.Contains(page, `value="`+object+`"`) || !strings.Contains(page, "a sinkholed address") || !strings.Contains(page, "standing") {
		t.Fatal("A does not see the contest of its credit")
	}
}

func TestDiffDocuments(t *testing.T) {
	f := newFixture(t)
	id := agreement.NewID()
	if got := diffDocuments(f.proposal(t, id, 1, 5), f.proposal(t, id, 2, 5)); len(got) != 0 {
		t.Fatalf("equal terms differ: %+v", got)
	}
	got := diffDocuments(f.proposal(t, id, 1, 5), f.proposal(t, id, 2, 7))
	if len(got) != 1 || got[0] != (change{"reciprocity.grace", "5", "7"}) {
		t.Fatalf("diff = %+v", got)
	}
}
