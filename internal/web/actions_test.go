package web

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
)

// withServices gives the fixture's dashboard the real handover and request
// services, so the pages' steps meet the same checks as the API's.
func (f *fixture) withServices() {
	f.dash.o.Handovers = escrow.New(f.st, f.ex)
	f.dash.o.Requests = request.New(f.st, f.ex)
}

// bundle is a plain deposit in the fixture agreement's scope.
func bundle(n int) string {
	return fmt.Sprintf(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-%012d","objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-9000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"handed over %d","pattern":"[ipv4-addr:value = '192.0.2.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}]}`, n, n, n, n%250)
}

var locationID = regexp.MustCompile(`/ui/(?:handovers|requests)/((?:handover|request)--[0-9a-f-]+)\?done=`)

// idFrom returns the id a redirect after an action names.
func idFrom(t *testing.T, resp *http.Response) string {
	t.Helper()
	m := locationID.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("%s → %q, want a redirect to the new case", resp.Status, resp.Header.Get("Location"))
	}
	return m[1]
}

// expect checks an action's answer.
func expect(t *testing.T, what string, resp *http.Response, body string, status int, says string) {
	t.Helper()
	if resp.StatusCode != status || !strings.Contains(body, says) {
		t.Fatalf("%s: %s %q, want %d saying %q\n%s", what, resp.Status, resp.Header.Get("Location"), status, says, body)
	}
}

// upload posts a multipart deposit form.
func (b *browser) upload(path string, fields map[string]string, file string) (*http.Response, string) {
	b.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if file != "" {
		fw, _ := mw.CreateFormFile("bundle", "bundle.json")
		fw.Write([]byte(file))
	}
	mw.Close()
	req, _ := http.NewRequest("POST", b.url+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp, out.String()
}

func TestHandoverStepsInPages(t *testing.T) {
	f := newFixture(t)
	f.withServices()
	a, b, c := f.browser(t), f.browser(t), f.browser(t)
	csrfA, csrfB, csrfC := a.signIn(f.tokA), b.signIn(f.tokB), c.signIn(f.tokC)

	// A proposes from the handovers page.
	_, page := a.do("GET", "/ui/handovers", nil)
	if !strings.Contains(page, `id="propose-form"`) || !strings.Contains(page, f.agreementID) {
		t.Fatal("the handovers page offers no proposal form for the agreement")
	}
	propose := url.Values{"csrf": {csrfA}, "agreement": {f.agreementID}, "delivers": {"dossier X"}, "expects": {"dossier Y"}}
	resp, body := a.do("POST", "/ui/handovers", url.Values{"agreement": {f.agreementID}, "delivers": {"x"}, "expects": {"y"}})
	expect(t, "proposal without a CSRF token", resp, body, http.StatusForbidden, "CSRF check failed")
	resp, body = c.do("POST", "/ui/handovers", url.Values{"csrf": {csrfC}, "agreement": {f.agreementID}, "delivers": {"x"}, "expects": {"y"}})
	expect(t, "an outsider proposing under the agreement", resp, body, http.StatusNotFound, "no such page")
	resp, body = a.do("POST", "/ui/handovers", url.Values{"csrf": {csrfA}, "agreement": {f.agreementID}, "delivers": {""}, "expects": {"y"}})
	expect(t, "a proposal delivering nothing", resp, body, http.StatusBadRequest, "what you deliver is empty")
	resp, _ = a.do("POST", "/ui/handovers", propose)
	id := idFrom(t, resp)
	hpath := "/ui/handovers/" + id

	// B finds it waiting, in full, with the id copyable.
	_, page = b.do("GET", "/ui/handovers?role=waiting", nil)
	if !strings.Contains(page, `value="`+id+`"`) || !strings.Contains(page, "readonly") {
		t.Fatal("B's waiting list lacks the full id in a readonly field")
	}
	_, page = b.do("GET", "/ui/handovers?state=released", nil)
	if strings.Contains(page, id) {
		t.Fatal("the state filter lets a proposed case through as released")
	}
	// Outsiders and the wrong side are refused.
	for _, tc := range []struct {
		who    *browser
		csrf   string
		status int
		says   string
	}{
		{c, csrfC, http.StatusNotFound, "no such page"},
		{a, csrfA, http.StatusForbidden, "Not permitted"},
		{b, "", http.StatusForbidden, "CSRF check failed"},
		{b, csrfA, http.StatusForbidden, "CSRF check failed"}, // another session's token
	} {
		resp, body := tc.who.do("POST", hpath+"/accept", url.Values{"csrf": {tc.csrf}})
		expect(t, "accept", resp, body, tc.status, tc.says)
	}
	if resp, _ := c.do("GET", hpath, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an outsider sees the case: %s", resp.Status)
	}
	resp, body = b.do("POST", hpath+"/accept", url.Values{"csrf": {csrfB}, "return": {"//evil.example/x"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/?done=accepted" {
		t.Fatalf("accept: %s → %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, body = b.do("POST", hpath+"/accept", url.Values{"csrf": {csrfB}})
	expect(t, "accepting twice", resp, body, http.StatusConflict, "Not possible now")

	// A deposits by file; the other side's deposit stays out of reach.
	resp, body = a.upload(hpath+"/deposit", map[string]string{"csrf": csrfA}, `{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000009","objects":[{"type":"malware","spec_version":"2.1","id":"malware--00000000-0000-4000-8000-000000000001","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"m","is_family":false}]}`)
	expect(t, "an out-of-scope deposit", resp, body, http.StatusBadRequest, "outside the agreement")
	resp, body = a.upload(hpath+"/deposit", map[string]string{"csrf": "forged"}, bundle(1))
	expect(t, "a deposit with a forged token", resp, body, http.StatusForbidden, "CSRF check failed")
	resp, body = c.upload(hpath+"/deposit", map[string]string{"csrf": csrfC}, bundle(1))
	expect(t, "an outsider's deposit", resp, body, http.StatusNotFound, "no such page")
	resp, _ = a.upload(hpath+"/deposit", map[string]string{"csrf": csrfA}, bundle(1))
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "done=deposited") {
		t.Fatalf("A's deposit: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, body = b.do("GET", hpath+"/deposit?from="+url.QueryEscape(f.a.PartyID), nil)
	expect(t, "B fetching A's deposit before release", resp, body, http.StatusConflict, "only once it is released")
	// B deposits by pasting; both are released.
	resp, _ = b.do("POST", hpath+"/deposit", url.Values{"csrf": {csrfB}, "bundle_text": {bundle(2)}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "done=released") {
		t.Fatalf("B's deposit: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	_, page = a.do("GET", hpath, nil)
	if !strings.Contains(page, `id="handover-state">released<`) || !strings.Contains(page, "Download") {
		t.Fatal("A's page does not show the release and the downloads")
	}
	resp, body = a.do("GET", hpath+"/deposit", nil)
	if resp.StatusCode != http.StatusOK || body != bundle(2) || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("A fetching B's deposit: %s %q", resp.Status, resp.Header.Get("Content-Disposition"))
	}
	if resp, _ := c.do("GET", hpath+"/deposit", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an outsider fetched a deposit: %s", resp.Status)
	}
}

// A request closed undelivered (between nodes: the responder's node
// refused its filing for good) shows the peer's code and text as that,
// not as a refusal ground; it is listed under its own state, not as open,
// and offers no step.
func TestUndeliveredRequestPage(t *testing.T) {
	f := newFixture(t)
	f.withServices()
	a, b := f.browser(t), f.browser(t)
	csrfA := a.signIn(f.tokA)
	b.signIn(f.tokB)
	resp, _ := a.do("POST", "/ui/requests", url.Values{"csrf": {csrfA}, "agreement": {f.agreementID}, "subject": {"Wallets"},
		"reason": {"case 2026-118"}, "urgency": {"high"}})
	id := idFrom(t, resp)
	r, err := f.st.Requests().Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.Ground, r.GroundText = store.RequestUndelivered, "not_in_force", "the agreement is suspended here"
	if err := f.st.Requests().Update(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	_, page := a.do("GET", "/ui/requests/"+id, nil)
	if !strings.Contains(page, "Not delivered") || !strings.Contains(page, `<code id="ground">not_in_force</code>`) ||
		!strings.Contains(page, "the agreement is suspended here") || strings.Contains(page, "Refused on the ground") {
		t.Fatal("the requester's page does not show the request undelivered with the peer's code and text")
	}
	if _, page := b.do("GET", "/ui/requests/"+id, nil); strings.Contains(page, `id="refuse-form"`) || strings.Contains(page, `id="acknowledge"`) {
		t.Error("an undelivered request offers a step")
	}
	if _, page := a.do("GET", "/ui/requests?state=undelivered", nil); !strings.Contains(page, id) {
		t.Error("the undelivered filter does not list it")
	}
	if _, page := a.do("GET", "/ui/requests?state=open", nil); strings.Contains(page, id) {
		t.Error("an undelivered request is listed as open")
	}
	// The requester's event says so, with the peer's code.
	f.dash.o.Events = f.st.Events()
	if _, err := f.st.Events().Append(context.Background(), store.Event{PartyID: r.Requester, Kind: request.EventUndelivered, Subject: id,
		Data: []byte(`{"code":"not_in_force","peer":"bravo"}`), At: r.FiledAt}); err != nil {
		t.Fatal(err)
	}
	if _, page := a.do("GET", "/ui/events", nil); !strings.Contains(page, "closed undelivered") || !strings.Contains(page, "code: not_in_force") {
		t.Error("the requester's events page does not say the request is closed undelivered, with the code")
	}
}

func TestRequestStepsInPages(t *testing.T) {
	f := newFixture(t)
	f.withServices()
	a, b, c := f.browser(t), f.browser(t), f.browser(t)
	csrfA, csrfB, csrfC := a.signIn(f.tokA), b.signIn(f.tokB), c.signIn(f.tokC)
	file := func(subject string) string {
		t.Helper()
		resp, _ := a.do("POST", "/ui/requests", url.Values{"csrf": {csrfA}, "agreement": {f.agreementID}, "subject": {subject},
			"reason": {"case 2026-117"}, "refs": {"alias:vice\nwallet:bc1q"}, "urgency": {"high"}})
		return idFrom(t, resp)
	}
	id := file("Wallets used by the Vice crew")
	rpath := "/ui/requests/" + id
	_, page := b.do("GET", rpath, nil)
	for _, want := range []string{"Wallets used by the Vice crew", "cert-north asked you", "wallet:bc1q", `id="refuse-form"`, `value="` + id + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("B's request page lacks %q", want)
		}
	}
	for _, g := range request.Grounds {
		if !strings.Contains(page, `<option value="`+g+`"`) {
			t.Errorf("the refusal form lacks the ground %s", g)
		}
	}
	if _, page := a.do("GET", rpath, nil); strings.Contains(page, `id="refuse-form"`) {
		t.Error("the requester is offered to refuse its own request")
	}
	for _, tc := range []struct {
		name   string
		who    *browser
		path   string
		form   url.Values
		status int
		says   string
	}{
		{"an outsider acknowledging", c, "/acknowledge", url.Values{"csrf": {csrfC}}, http.StatusNotFound, "no such page"},
		{"the requester acknowledging", a, "/acknowledge", url.Values{"csrf": {csrfA}}, http.StatusForbidden, "Not permitted"},
		{"no CSRF token", b, "/acknowledge", url.Values{}, http.StatusForbidden, "CSRF check failed"},
		{"the requester refusing", a, "/refuse", url.Values{"csrf": {csrfA}, "ground": {"no_data_held"}}, http.StatusForbidden, "Not permitted"},
		{"no ground", b, "/refuse", url.Values{"csrf": {csrfB}}, http.StatusBadRequest, "needs a ground"},
		{"unknown ground", b, "/refuse", url.Values{"csrf": {csrfB}, "ground": {"because"}}, http.StatusBadRequest, "unknown ground"},
		{"other without text", b, "/refuse", url.Values{"csrf": {csrfB}, "ground": {"other"}}, http.StatusBadRequest, "needs a text"},
		{"fulfil by nothing", b, "/fulfil", url.Values{"csrf": {csrfB}, "handover": {"handover--nope"}}, http.StatusBadRequest, "not a handover under agreement"},
	} {
		resp, body := tc.who.do("POST", rpath+tc.path, tc.form)
		expect(t, tc.name, resp, body, tc.status, tc.says)
	}
	resp, _ := b.do("POST", rpath+"/acknowledge", url.Values{"csrf": {csrfB}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != rpath+"?done=acknowledged" {
		t.Fatalf("acknowledge: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, _ = b.do("POST", rpath+"/refuse", url.Values{"csrf": {csrfB}, "ground": {"ongoing_investigation"}, "text": {"case open"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("refuse: %s", resp.Status)
	}
	_, page = a.do("GET", rpath+"?done=refused", nil)
	if !strings.Contains(page, `<code id="ground">ongoing_investigation</code>`) || !strings.Contains(page, "case open") {
		t.Fatal("the requester does not see the refusal's ground and text")
	}
	resp, body := b.do("POST", rpath+"/refuse", url.Values{"csrf": {csrfB}, "ground": {"no_data_held"}})
	expect(t, "refusing twice", resp, body, http.StatusConflict, "already refused")

	// Fulfilment: B proposes a handover answering a second request and names it.
	id2 := file("Infrastructure of the Vice crew")
	resp, _ = b.do("POST", "/ui/handovers", url.Values{"csrf": {csrfB}, "agreement": {f.agreementID}, "delivers": {"the servers"},
		"expects": {"nothing more"}, "request": {id2}})
	hid := idFrom(t, resp)
	_, page = b.do("GET", "/ui/requests/"+id2, nil)
	if !strings.Contains(page, `<option value="`+hid+`"`) {
		t.Fatal("the fulfil form does not offer the handover answering the request")
	}
	resp, _ = b.do("POST", "/ui/requests/"+id2+"/fulfil", url.Values{"csrf": {csrfB}, "handover": {hid}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "done=pending") {
		t.Fatalf("fulfil: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	if _, page = a.do("GET", "/ui/requests/"+id2, nil); !strings.Contains(page, "answer pending") || !strings.Contains(page, hid) {
		t.Fatal("the requester does not see the pending answer")
	}

	// Full history with filters and pages.
	for i := range pageSize + 3 {
		file(fmt.Sprintf("Subject %02d", i))
	}
	_, page = b.do("GET", "/ui/requests?direction=received", nil)
	if got := strings.Count(page, `class="request-link"`); got != pageSize {
		t.Fatalf("first page lists %d requests, want %d", got, pageSize)
	}
	if !strings.Contains(page, "page 1 of 2") || !strings.Contains(page, `href="/ui/requests?direction=received&amp;page=2"`) {
		t.Fatal("no link to the second page keeping the filter")
	}
	_, page = b.do("GET", "/ui/requests?direction=received&page=2", nil)
	if got := strings.Count(page, `class="request-link"`); got != 5 {
		t.Fatalf("second page lists %d requests, want 5", got)
	}
	_, page = b.do("GET", "/ui/requests?state=refused", nil)
	if got := strings.Count(page, `class="request-link"`); got != 1 || !strings.Contains(page, "Wallets used by the Vice crew") {
		t.Fatalf("the refused filter lists %d requests", got)
	}
	if _, page = b.do("GET", "/ui/requests?direction=made", nil); strings.Contains(page, `class="request-link"`) {
		t.Fatal("B made no request, yet the filter lists some")
	}
	if _, page = c.do("GET", "/ui/requests", nil); strings.Contains(page, `class="request-link"`) {
		t.Fatal("an outsider's request list shows the parties' requests")
	}
}

// A CSRF token dies with its session: after signing out and in again, a
// form from the old session is refused.
func TestReplayedCSRFToken(t *testing.T) {
	f := newFixture(t)
	f.withServices()
	b := f.browser(t)
	old := b.signIn(f.tokA)
	if resp, _ := b.do("POST", "/ui/signout", url.Values{"csrf": {old}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %s", resp.Status)
	}
	b.signIn(f.tokA)
	resp, body := b.do("POST", "/ui/requests", url.Values{"csrf": {old}, "agreement": {f.agreementID}, "subject": {"s"}, "reason": {"r"}})
	expect(t, "an old session's token", resp, body, http.StatusForbidden, "CSRF check failed")
}

func TestSafeReturn(t *testing.T) {
	for in, want := range map[string]string{
		"/ui/handovers/x": "/ui/handovers/x", "": "/ui/", "https://evil.example/ui/": "/ui/", "//evil.example/ui/": "/ui/",
		"/ui//evil.example": "/ui/", "/ui/\\evil": "/ui/", "/other": "/ui/", "/ui/a?b=c": "/ui/a",
	} {
		if got := safeReturn(in); got != want {
			t.Errorf("safeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}
