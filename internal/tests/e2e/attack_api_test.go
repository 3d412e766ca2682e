package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
)

func apiPost(p *Party, path string, body any) req {
	b, _ := json.Marshal(body)
	return req{Method: "POST", Path: path, Auth: bearer(p), Body: b}
}

// TestAttackManagementAPI: an outsider probing an agreement's id through
// every /api/v1 route that takes one — reading it, its balance, its
// request statistics, signing or amending it — gets the 404 of a random
// id, and its own list names nothing of it.
func TestAttackManagementAPI(t *testing.T) {
	w := newAttackWorld(t)
	missing := missingAgreement()
	// Signatures charlie could make: its own, for the real id and for a
	// missing one, on otherwise identical documents.
	docFor := func(id string) *agreement.Document {
		return Document(t, w.charlie, w.alpha, func(m map[string]any) { m["id"] = id })
	}
	realDoc, fakeDoc := docFor(w.ag), docFor(missing)
	sign := func(d *agreement.Document, a agreement.Action) map[string]any {
		return map[string]any{"signature": Sign(t, w.charlie, d, a)}
	}
	amend := func(d *agreement.Document) map[string]any {
		m := Document(t, w.charlie, w.alpha, func(m map[string]any) { m["id"], m["version"] = d.ID, 2 })
		return map[string]any{"document": json.RawMessage(m.Canonical()), "signature": Sign(t, w.charlie, m, agreement.ActionAmend)}
	}
	ag := "/api/v1/agreements/"
	probes := []probe{
		{name: "get", attack: get(w.charlie, ag+w.ag), twin: get(w.charlie, ag+missing), status: 404},
		{name: "get-trailing-slash", attack: get(w.charlie, ag+w.ag+"/"), twin: get(w.charlie, ag+missing+"/"), status: 404},
		{name: "balance", attack: get(w.charlie, ag+w.ag+"/balance"), twin: get(w.charlie, ag+missing+"/balance"), status: 404},
		{name: "request-stats", attack: get(w.charlie, ag+w.ag+"/requests"), twin: get(w.charlie, ag+missing+"/requests"), status: 404},
		{name: "uppercase", attack: get(w.charlie, ag+strings.ToUpper(w.ag)), twin: get(w.charlie, ag+strings.ToUpper(missing)), status: 404},
		{name: "handovers-list-filter", attack: get(w.charlie, "/api/v1/handovers?agreement="+w.ag), twin: get(w.charlie, "/api/v1/handovers?agreement="+missing)},
		{name: "requests-list-filter", attack: get(w.charlie, "/api/v1/requests?agreement="+w.ag), twin: get(w.charlie, "/api/v1/requests?agreement="+missing)},
	}
	for _, a := range []agreement.Action{agreement.ActionSuspend, agreement.ActionTerminate, agreement.ActionCountersign} {
		probes = append(probes, probe{name: "sign-" + string(a), attack: apiPost(w.charlie, ag+w.ag+"/signatures", sign(realDoc, a)),
			twin: apiPost(w.charlie, ag+missing+"/signatures", sign(fakeDoc, a)), status: 404})
	}
	probes = append(probes, probe{name: "amend", attack: apiPost(w.charlie, ag+w.ag+"/versions", amend(realDoc)),
		twin: apiPost(w.charlie, ag+missing+"/versions", amend(fakeDoc)), status: 404})
	w.run(t, w.hiddenFromCharlie(), probes)

	// Charlie's own views of the API name nothing of the agreement.
	for _, path := range []string{"/api/v1/agreements", "/api/v1/me", "/api/v1/handovers", "/api/v1/requests", "/api/v1/events?follow=false"} {
		r := w.send(t, get(w.charlie, path))
		noLeak(t, path, r, append(w.hiddenFromCharlie(), w.ag, w.alphaColl, w.bravoColl))
		if r.Status != 200 {
			t.Errorf("%s: %s", path, r)
		}
	}
	// Bravo's views of the agreement carry nothing it may not read.
	for _, path := range []string{ag + w.ag, ag + w.ag + "/balance", "/api/v1/agreements", "/api/v1/events?follow=false"} {
		r := w.send(t, get(w.bravo, path))
		noLeak(t, path, r, w.hiddenFromBravo())
		if r.Status != 200 {
			t.Errorf("%s: %s", path, r)
		}
	}
}

// TestAttackLedger: the ledger answers only parties (401 without a valid
// token, byte-identical whatever the invalid token), and no entry, tile or
// proof carries a byte of intelligence: ids, names and pattern values of
// objects never enter it, only digests and counts.
func TestAttackLedger(t *testing.T) {
	w := newAttackWorld(t)
	paths := []string{"/ledger/checkpoint", "/ledger/entries/0", "/ledger/entries/3", "/ledger/tile/entries/000.p/1",
		"/ledger/tile/0/000.p/1", "/ledger/proof/inclusion?index=0&size=2", "/ledger/proof/consistency?from=1&to=2", "/ledger/key"}
	var probes []probe
	for _, p := range paths {
		probes = append(probes,
			probe{name: "no-token" + p, attack: req{Path: p}, twin: req{Path: p, Auth: "Bearer " + missingStatus()}, status: 401},
			probe{name: "basic-garbage" + p, attack: req{Path: p, Auth: basic("alpha", "x")}, twin: req{Path: p}, status: 401},
		)
	}
	w.run(t, w.hiddenFromCharlie(), probes)
	// A POST of a forged cosignature without a token is refused the same way.
	r := w.send(t, req{Method: "POST", Path: "/ledger/cosign", Body: []byte("— witness AAAA\n")})
	if r.Status != 401 {
		t.Errorf("cosign without a token: %s", r)
	}

	entries := w.ledgerEntries(t, w.charlie)
	if len(entries) < 5 {
		t.Fatalf("only %d ledger entries", len(entries))
	}
	intel := w.hiddenFromCharlie()
	for i, r := range entries {
		noLeak(t, fmt.Sprintf("entry %d", i), r, intel)
	}
	// The same bytes through the tiles API, and the checkpoint.
	n := len(entries)
	for _, p := range []string{fmt.Sprintf("/ledger/tile/entries/000.p/%d", min(n, 255)), "/ledger/checkpoint"} {
		r := w.send(t, get(w.bravo, p))
		if r.Status != 200 {
			t.Errorf("%s: %s", p, r)
		}
		noLeak(t, p, r, intel)
	}
}

// handoverWorld adds a released and an open handover and a request between
// alpha and bravo, and an agreement between alpha and charlie.
type handoverWorld struct {
	*attackWorld
	released, open, request string
	charlieAg               string
	tagHandover, tagRequest string
}

func newHandoverWorld(t *testing.T) *handoverWorld {
	t.Helper()
	h := &handoverWorld{attackWorld: newAttackWorld(t)}
	w := h.attackWorld
	h.tagHandover, h.tagRequest = "h"+strings.ReplaceAll(missingStatus()[:13], "-", ""), "q"+strings.ReplaceAll(missingStatus()[:13], "-", "")
	h.charlieAg = Activate(t, w.alpha, w.charlie, Document(t, w.alpha, w.charlie, nil)).ID
	bundle := func(tag string, n int) []byte {
		s := newIndicator(tag, n, firstVersion)
		return []byte(fmt.Sprintf(`{"type":"bundle","id":"bundle--%s","objects":[%s]}`, missingStatus(), s.Raw))
	}
	open := func(delivers string) string {
		ho, err := w.alpha.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: w.ag, Delivers: delivers, Expects: "the other dossier " + h.tagHandover})
		if err != nil {
			t.Fatalf("propose handover: %v", err)
		}
		if _, err := w.bravo.C.AcceptHandover(ctx, ho.ID); err != nil {
			t.Fatalf("accept handover: %v", err)
		}
		if _, err := w.alpha.C.Deposit(ctx, ho.ID, bundle(h.tagHandover, 0), client.DepositOptions{}); err != nil {
			t.Fatalf("alpha deposits: %v", err)
		}
		return ho.ID
	}
	h.released = open("dossier one " + h.tagHandover)
	if res, err := w.bravo.C.Deposit(ctx, h.released, bundle(h.tagHandover, 1), client.DepositOptions{}); err != nil || !res.Released {
		t.Fatalf("bravo deposits: %+v, %v", res, err)
	}
	h.open = open("dossier two " + h.tagHandover)
	q, err := w.alpha.C.FileRequest(ctx, client.NewRequest{Agreement: w.ag, Subject: "subject " + h.tagRequest, Reason: "reason " + h.tagRequest})
	if err != nil {
		t.Fatalf("file request: %v", err)
	}
	h.request = q.ID
	return h
}

// TestAttackHandoversAndRequests: an outsider — even one in another
// agreement with one of the sides — reaches no handover or request of
// the alpha–bravo agreement by any route, and each answer is the 404 of a
// random id; a side never gets the other's deposit before release; what a
// handover released to one side is in a collection only that side reads.
func TestAttackHandoversAndRequests(t *testing.T) {
	h := newHandoverWorld(t)
	w := h.attackWorld
	hidden := append(w.hiddenFromCharlie(), h.tagHandover, h.tagRequest)
	miss := missingStatus()
	plant := newIndicator("planted", 0, firstVersion)
	hv, rq := "/api/v1/handovers/", "/api/v1/requests/"
	deposit := func(p *Party, id, query string) req {
		return req{Method: "PUT", Path: hv + id + "/deposit" + query, Auth: bearer(p), Body: []byte(`{"type":"bundle","id":"bundle--` + miss + `","objects":[` + string(plant.Raw) + `]}`)}
	}
	var probes []probe
	for _, id := range []string{h.released, h.open} {
		kind := map[bool]string{true: "released", false: "open"}[id == h.released]
		probes = append(probes,
			probe{name: kind + "/get", attack: get(w.charlie, hv+id), twin: get(w.charlie, hv+miss), status: 404},
			probe{name: kind + "/fetch", attack: get(w.charlie, hv+id+"/deposit"), twin: get(w.charlie, hv+miss+"/deposit"), status: 404},
			probe{name: kind + "/fetch-from-alpha", attack: get(w.charlie, hv+id+"/deposit?from="+w.alpha.ID), twin: get(w.charlie, hv+miss+"/deposit?from="+w.alpha.ID), status: 404},
			probe{name: kind + "/accept", attack: apiPost(w.charlie, hv+id+"/accept", nil), twin: apiPost(w.charlie, hv+miss+"/accept", nil), status: 404},
			probe{name: kind + "/decline", attack: apiPost(w.charlie, hv+id+"/decline", nil), twin: apiPost(w.charlie, hv+miss+"/decline", nil), status: 404},
			probe{name: kind + "/dispute", attack: apiPost(w.charlie, hv+id+"/dispute", map[string]string{"text": "x"}), twin: apiPost(w.charlie, hv+miss+"/dispute", map[string]string{"text": "x"}), status: 404},
			probe{name: kind + "/deposit", attack: deposit(w.charlie, id, ""), twin: deposit(w.charlie, miss, ""), status: 404},
			// Through charlie's own agreement with alpha.
			probe{name: kind + "/deposit-other-agreement", attack: deposit(w.charlie, id, "?agreement="+h.charlieAg), twin: deposit(w.charlie, miss, "?agreement="+h.charlieAg), status: 404},
			probe{name: kind + "/withdraw", attack: req{Method: "DELETE", Path: hv + id + "/deposit", Auth: bearer(w.charlie)}, twin: req{Method: "DELETE", Path: hv + miss + "/deposit", Auth: bearer(w.charlie)}, status: 404},
		)
	}
	probes = append(probes,
		probe{name: "request/get", attack: get(w.charlie, rq+h.request), twin: get(w.charlie, rq+miss), status: 404},
		probe{name: "request/ack", attack: apiPost(w.charlie, rq+h.request+"/ack", nil), twin: apiPost(w.charlie, rq+miss+"/ack", nil), status: 404},
		probe{name: "request/refuse", attack: apiPost(w.charlie, rq+h.request+"/refuse", map[string]string{"ground": "other", "text": "x"}), twin: apiPost(w.charlie, rq+miss+"/refuse", map[string]string{"ground": "other", "text": "x"}), status: 404},
		probe{name: "request/fulfil", attack: apiPost(w.charlie, rq+h.request+"/fulfil", map[string]string{"handover": h.open}), twin: apiPost(w.charlie, rq+miss+"/fulfil", map[string]string{"handover": h.open}), status: 404},
		probe{name: "request/stats", attack: get(w.charlie, "/api/v1/agreements/"+w.ag+"/requests"), twin: get(w.charlie, "/api/v1/agreements/"+missingAgreement()+"/requests"), status: 404},
		// Opening a case or filing a request under an agreement one is not in.
		probe{name: "propose-in-others-agreement", attack: apiPost(w.charlie, "/api/v1/handovers", map[string]string{"agreement": w.ag, "delivers": "a", "expects": "b"}),
			twin: apiPost(w.charlie, "/api/v1/handovers", map[string]string{"agreement": missingAgreement(), "delivers": "a", "expects": "b"}), status: 404},
		probe{name: "file-in-others-agreement", attack: apiPost(w.charlie, "/api/v1/requests", map[string]string{"agreement": w.ag, "subject": "a", "reason": "b"}),
			twin: apiPost(w.charlie, "/api/v1/requests", map[string]string{"agreement": missingAgreement(), "subject": "a", "reason": "b"}), status: 404},
	)
	w.run(t, hidden, probes)

	// Bravo, a side of the case, cannot file its deposit under alpha's
	// agreement with charlie: refused, naming only ids bravo gave or knows.
	r := w.send(t, deposit(w.bravo, h.open, "?agreement="+h.charlieAg))
	noLeak(t, "deposit under another agreement", r, hidden)
	if r.Status != 400 {
		t.Errorf("deposit under another agreement: %s", r)
	}
	if v, err := w.bravo.C.Handover(ctx, h.open); err != nil || len(v.Deposits) != 1 || v.State == "released" {
		t.Errorf("the open case after a deposit under another agreement: %+v, %v", v, err)
	}

	// The open case: bravo, a side, does not get alpha's deposit before
	// release, by either spelling.
	for _, q := range []string{"", "?from=" + w.alpha.ID, "?from=" + url.QueryEscape(w.alpha.ID+" ")} {
		r := w.send(t, get(w.bravo, hv+h.open+"/deposit"+q))
		noLeak(t, "bravo fetches early"+q, r, []string{h.tagHandover + "-0", "name-" + h.tagHandover})
		if r.Status == 200 {
			t.Errorf("bravo fetched alpha's deposit before release%s: %s", q, r)
		}
	}
	// Charlie's lists and events name none of it.
	for _, path := range []string{"/api/v1/handovers", "/api/v1/requests", "/api/v1/events?follow=false", "/api/v1/handovers?agreement=" + h.charlieAg} {
		r := w.send(t, get(w.charlie, path))
		noLeak(t, path, r, append(hidden, h.released, h.open, h.request))
	}
	// What the released case handed to bravo sits in a collection of the
	// agreement's root that only bravo reads.
	cs, err := w.bravo.C.Collections(ctx, w.ag)
	if err != nil {
		t.Fatal(err)
	}
	handed := ""
	for _, c := range cs {
		if c.ID != w.alphaColl && c.ID != w.bravoColl {
			handed = c.ID
		}
	}
	if handed == "" {
		t.Fatalf("bravo has no handover collection: %+v", cs)
	}
	w.run(t, hidden, append(probesFor("alpha-reads-bravos-handover", w.alpha, w.ag, handed, missingObject()),
		probesFor("charlie-reads-bravos-handover", w.charlie, w.ag, handed, missingObject())...))
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn opens a dashboard session for p and returns its Cookie header.
func (w *attackWorld) signIn(t *testing.T, p *Party) (cookie, csrf string) {
	t.Helper()
	r := w.send(t, req{Path: "/ui/signin"})
	m := csrfRE.FindSubmatch(r.Body)
	if r.Status != 200 || m == nil {
		t.Fatalf("sign-in form: %s", r)
	}
	var signinCookie string
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		signinCookie = c.Name + "=" + c.Value
	}
	form := url.Values{"token": {p.Token}, "csrf": {string(m[1])}}.Encode()
	r = w.send(t, req{Method: "POST", Path: "/ui/signin", Body: []byte(form),
		Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Cookie": signinCookie}})
	if r.Status != 303 {
		t.Fatalf("sign-in: %s", r)
	}
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Value != "" {
			cookie = c.Name + "=" + c.Value
		}
	}
	r = w.send(t, req{Path: "/ui/", Header: map[string]string{"Cookie": cookie}})
	m = csrfRE.FindSubmatch(r.Body)
	if r.Status != 200 || m == nil {
		t.Fatalf("overview after sign-in: %s", r)
	}
	return cookie, string(m[1])
}

// TestAttackDashboard: the dashboard shows a party its own agreements and
// nothing else; another agreement's page, or an action on another
// agreement's handover, is the dashboard's 404 for a missing one.
func TestAttackDashboard(t *testing.T) {
	h := newHandoverWorld(t)
	w := h.attackWorld
	cCookie, cCSRF := w.signIn(t, w.charlie)
	bCookie, _ := w.signIn(t, w.bravo)
	as := func(cookie, path string) req { return req{Path: path, Header: map[string]string{"Cookie": cookie}} }
	act := func(cookie, csrf, path string) req {
		return req{Method: "POST", Path: path, Body: []byte(url.Values{"csrf": {csrf}}.Encode()),
			Header: map[string]string{"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}}
	}
	miss := missingStatus()
	hidden := append(w.hiddenFromCharlie(), h.tagHandover, h.tagRequest)
	w.run(t, hidden, []probe{
		{name: "agreement-page", attack: as(cCookie, "/ui/agreements/"+w.ag), twin: as(cCookie, "/ui/agreements/"+missingAgreement()), status: 404},
		{name: "accept-others-handover", attack: act(cCookie, cCSRF, "/ui/handovers/"+h.open+"/accept"), twin: act(cCookie, cCSRF, "/ui/handovers/"+miss+"/accept")},
		{name: "decline-others-handover", attack: act(cCookie, cCSRF, "/ui/handovers/"+h.open+"/decline"), twin: act(cCookie, cCSRF, "/ui/handovers/"+miss+"/decline")},
		{name: "no-session", attack: req{Path: "/ui/agreements/" + w.ag}, twin: req{Path: "/ui/agreements/" + missingAgreement()}},
		{name: "bearer-instead-of-session", attack: get(w.bravo, "/ui/agreements/"+w.ag), twin: get(w.bravo, "/ui/agreements/"+missingAgreement())},
	})
	for _, path := range []string{"/ui/", "/ui/agreements/" + w.ag} {
		r := w.send(t, as(bCookie, path))
		if r.Status != 200 {
			t.Errorf("bravo's %s: %s", path, r)
		}
		noLeak(t, "bravo's "+path, r, w.hiddenFromBravo())
		r = w.send(t, as(cCookie, path))
		noLeak(t, "charlie's "+path, r, append(hidden, h.open, h.released))
	}
}
