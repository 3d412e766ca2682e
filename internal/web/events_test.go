package web

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/escrow"
)

var scriptTag = regexp.MustCompile(`<script[^>]*>`)

// inlineScript reports whether a page carries any script other than the
// dashboard's own file: the CSP would block one, and pages must not need it.
func inlineScript(page string) bool {
	for _, tag := range scriptTag.FindAllString(page, -1) {
		if tag != `<script src="/ui/static/live.js" defer>` {
			return true
		}
	}
	return strings.Count(page, "<script") != strings.Count(page, `<script src="/ui/static/live.js" defer></script>`)
}

func TestEventsPageAndCount(t *testing.T) {
	f := newFixture(t)
	f.withServices()
	f.dash.o.Events = f.st.Events()
	a, b := f.browser(t), f.browser(t)
	csrfA := a.signIn(f.tokA)
	b.signIn(f.tokB)
	// The fixture's feeds released objects to B: those are events too,
	// counted until B opens its events page.
	_, page := b.do("GET", "/ui/", nil)
	if strings.Contains(page, `id="notify-count" class="count" hidden>0<`) {
		t.Fatalf("B's count does not show the fixture's feed releases:\n%s", page)
	}
	if _, page = b.do("GET", "/ui/events", nil); !strings.Contains(page, "new objects were released to you") {
		t.Fatalf("B's events page does not list the feed release:\n%s", page)
	}
	_, page = b.do("GET", "/ui/", nil)
	if !strings.Contains(page, `id="notify-count" class="count" hidden>0<`) {
		t.Fatalf("B's count after seeing every event is not a hidden 0:\n%s", page)
	}
	if inlineScript(page) || !strings.Contains(page, `<script src="/ui/static/live.js" defer></script>`) {
		t.Fatal("the page's only script must be the dashboard's own file")
	}
	if resp, js := b.do("GET", "/ui/static/live.js", nil); resp.StatusCode != http.StatusOK || !strings.Contains(js, "EventSource") || strings.Contains(js, "eval(") {
		t.Fatalf("live.js: %s", resp.Status)
	}
	// A proposes two handovers and files a request: B is told.
	var ids []string
	for _, what := range []string{"dossier X", "dossier Z"} {
		resp, _ := a.do("POST", "/ui/handovers", url.Values{"csrf": {csrfA}, "agreement": {f.agreementID}, "delivers": {what}, "expects": {"y"}})
		ids = append(ids, idFrom(t, resp))
	}
	resp, _ := a.do("POST", "/ui/requests", url.Values{"csrf": {csrfA}, "agreement": {f.agreementID}, "subject": {"wallets"}, "reason": {"r"}})
	rid := idFrom(t, resp)
	_, page = b.do("GET", "/ui/handovers", nil)
	if !strings.Contains(page, `id="notify-count" class="count">3<`) {
		t.Fatal("B's count does not read 3 after three events")
	}
	_, page = b.do("GET", "/ui/events", nil)
	for _, want := range []string{"a handover was proposed to you", "a request was filed with you", `href="/ui/handovers/` + ids[1] + `"`,
		`href="/ui/requests/` + rid + `"`, `class="waiting-handover"`, "Acknowledge cert-north's request: wallets", `<strong class="new-label">new</strong>`} {
		if !strings.Contains(page, want) {
			t.Errorf("B's events page lacks %q\n%s", want, page)
		}
	}
	// Seen now: the count drops to zero; A's count is its own.
	if _, page = b.do("GET", "/ui/", nil); !strings.Contains(page, `id="notify-count" class="count" hidden>0<`) {
		t.Fatal("after the events page the count is not 0")
	}
	if _, page = a.do("GET", "/ui/events", nil); strings.Contains(page, "a handover was proposed to you") {
		t.Fatal("A sees B's events")
	}
}

// The stream sends the session's party's new events, and ends for a
// session that is gone.
func TestEventStream(t *testing.T) {
	f := newFixture(t)
	f.withServices()
	f.dash.o.Events = f.st.Events()
	b := f.browser(t)
	csrfB := b.signIn(f.tokB)
	b.do("GET", "/ui/events", nil) // the fixture's feed releases, seen
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/ui/events/stream", nil)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	next := func(prefix string) string {
		t.Helper()
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), prefix) {
				return lines.Text()
			}
		}
		t.Fatalf("stream ended before %q: %v", prefix, lines.Err())
		return ""
	}
	if got := next("data:"); got != `data: {"unseen":"0"}` {
		t.Fatalf("first count: %s", got)
	}
	pa, _ := f.parties.Authenticate(ctx, f.tokA)
	h, err := escrow.New(f.st, f.ex).Propose(ctx, pa, escrow.ProposeInput{AgreementID: f.agreementID, Delivers: "x", Expects: "y"})
	if err != nil {
		t.Fatal(err)
	}
	if got := next("event:"); got != "event: parley" {
		t.Fatalf("next event: %s", got)
	}
	if got := next("data:"); !strings.Contains(got, `"kind":"handover.proposed"`) || !strings.Contains(got, h.Handover.ID) {
		t.Fatalf("event data: %s", got)
	}
	if got := next("data:"); got != `data: {"unseen":"1"}` {
		t.Fatalf("count after the event: %s", got)
	}
	// Signed out elsewhere: the next event is not sent.
	b.do("POST", "/ui/signout", url.Values{"csrf": {csrfB}})
	if _, err := escrow.New(f.st, f.ex).Propose(ctx, pa, escrow.ProposeInput{AgreementID: f.agreementID, Delivers: "secret", Expects: "y"}); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		if strings.Contains(lines.Text(), "secret") || strings.Contains(lines.Text(), "handover.proposed") {
			t.Fatalf("a signed-out stream sent %s", lines.Text())
		}
	}
	// Without a session there is no stream: 204 tells the EventSource
	// to stop reconnecting.
	anon := f.browser(t)
	if resp, _ := anon.do("GET", "/ui/events/stream", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("stream without a session: %s", resp.Status)
	}
}

func TestLedgerPage(t *testing.T) {
	f := newFixture(t)
	a, c := f.browser(t), f.browser(t)
	a.signIn(f.tokA)
	c.signIn(f.tokC)
	resp, page := a.do("GET", "/ui/ledger", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<code>agreement.proposed</code>") || !strings.Contains(page, "<code>feed.batch</code>") {
		t.Fatalf("A's ledger page: %s\n%s", resp.Status, page)
	}
	_, page = a.do("GET", "/ui/ledger?kind=feed.batch", nil)
	if strings.Contains(page, "<code>agreement.proposed</code>") || strings.Count(page, `class="ledger-entry"`) < 3 {
		t.Fatal("the kind filter does not keep only feed.batch entries")
	}
	_, page = a.do("GET", "/ui/ledger?before=1", nil)
	if n := strings.Count(page, `class="ledger-entry"`); n > 1 || strings.Contains(page, "Older entries") {
		t.Fatalf("before=1 lists %d entries", n)
	}
	if _, page = c.do("GET", "/ui/ledger", nil); strings.Contains(page, `class="ledger-entry"`) || strings.Contains(page, f.agreementID) {
		t.Fatal("an outsider's ledger page lists the parties' entries")
	}
}
