package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/ledger"
)

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	for _, path := range []string{"/ui/signin", "/ui/", "/ui/static/style.css", "/ui/nope", "/ui/agreements/x"} {
		resp, _ := b.do("GET", path, nil)
		h := resp.Header
		for k, want := range map[string]string{
			"X-Frame-Options":        "DENY",
			"Referrer-Policy":        "no-referrer",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
	resp, body := b.do("GET", "/", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("/ → %s %q", resp.Status, resp.Header.Get("Location"))
	}
	if strings.Contains(body, "<script") {
		t.Errorf("a page carries a script")
	}
}

func TestSignInAndPages(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)

	// Signed out, every page leads to sign-in.
	resp, _ := b.do("GET", "/ui/", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/signin" {
		t.Fatalf("/ui/ signed out: %s → %q", resp.Status, resp.Header.Get("Location"))
	}
	_, page := b.do("GET", "/ui/signin", nil)
	resp, _ = b.do("POST", "/ui/signin", url.Values{"csrf": {csrf(t, page)}, "token": {f.tokA}})
	var sc *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "parley_session" {
			sc = c
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || len(sc.Value) < 43 {
		t.Fatalf("session cookie %+v", sc)
	}
	if strings.Contains(sc.Value, f.tokA) {
		t.Fatal("the session cookie carries the token")
	}

	resp, page = b.do("GET", "/ui/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("overview: %s", resp.Status)
	}
	for _, want := range []string{"Signed in as <strong>cert-north</strong>", "police-south", "phase-active",
		`id="checkpoint-verified" class="">passed`, `id="client-verified">not verified by your client yet`, "/ui/agreements/" + f.agreementID, `id="handovers"`, `id="requests"`} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}

	resp, page = b.do("GET", "/ui/agreements/"+f.agreementID, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("agreement page: %s", resp.Status)
	}
	if !strings.Contains(page, `<svg id="balance-chart"`) {
		t.Fatalf("no chart:\n%s", page)
	}
	// The chart's last points are the balance after all traffic: A gave 30,
	// B gave 5, and A may read 10 + 2×30 = 70 ≥ 5, so all 5 were released.
	last := func(class string) int {
		re := regexp.MustCompile(`data-series="` + class + `">([\s\S]*?)</g>`)
		m := re.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("series %s missing", class)
		}
		vals := regexp.MustCompile(`data-value="(\d+)"`).FindAllStringSubmatch(m[1], -1)
		if len(vals) == 0 {
			t.Fatalf("series %s has no points", class)
		}
		n, _ := strconv.Atoi(vals[len(vals)-1][1])
		return n
	}
	if got := [3]int{last("mine"), last("theirs"), last("released")}; got != [3]int{30, 5, 5} {
		t.Errorf("last chart values (mine, theirs, released) = %v, want [30 5 5]", got)
	}
	for _, want := range []string{"cert-north", "police-south", "propose", "countersign", "TLP:AMBER", "indicator"} {
		if !strings.Contains(page, want) {
			t.Errorf("agreement page lacks %q", want)
		}
	}
}

func TestSignInRefusals(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name   string
		form   func(csrf string) url.Values
		cookie bool // keep the sign-in cookie
		status int
		says   string
	}{
		{"wrong token", func(c string) url.Values {
			return url.Values{"csrf": {c}, "token": {"parley_" + strings.Repeat("A", 43)}}
		}, true, http.StatusUnauthorized, "not valid or has been revoked"},
		{"garbage token", func(c string) url.Values { return url.Values{"csrf": {c}, "token": {"hunter2"}} }, true, http.StatusUnauthorized, "not valid"},
		{"forged csrf", func(c string) url.Values { return url.Values{"csrf": {c + "x"}, "token": {f.tokA}} }, true, http.StatusForbidden, "stale"},
		{"no csrf", func(c string) url.Values { return url.Values{"token": {f.tokA}} }, true, http.StatusForbidden, "stale"},
		{"no sign-in cookie", func(c string) url.Values { return url.Values{"csrf": {c}, "token": {f.tokA}} }, false, http.StatusForbidden, "stale"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := f.browser(t)
			_, page := b.do("GET", "/ui/signin", nil)
			if !tc.cookie {
				b.c.Jar.SetCookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(f.srv.URL, "http://"), Path: "/ui/"},
					[]*http.Cookie{{Name: signinCookie, Value: "", MaxAge: -1, Path: "/ui/"}})
			}
			resp, body := b.do("POST", "/ui/signin", tc.form(csrf(t, page)))
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("%s, want %d saying %q", resp.Status, tc.status, tc.says)
			}
			if strings.Contains(body, f.tokA) {
				t.Fatal("the page echoes the token")
			}
			if resp, _ := b.do("GET", "/ui/", nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("signed in after a refused sign-in: %s", resp.Status)
			}
		})
	}
}

func TestCSRFOnSignOut(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	token := b.signIn(f.tokA)
	for _, forged := range []string{"", "x", token[:len(token)-1] + "A", strings.Repeat("A", len(token))} {
		if forged == token {
			continue
		}
		resp, body := b.do("POST", "/ui/signout", url.Values{"csrf": {forged}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF check failed") {
			t.Fatalf("forged %q: %s", forged, resp.Status)
		}
	}
	// Another session's token is no good either.
	other := f.browser(t)
	otherToken := other.signIn(f.tokA)
	if resp, _ := b.do("POST", "/ui/signout", url.Values{"csrf": {otherToken}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another session's CSRF token: %s", resp.Status)
	}
	if resp, _ := b.do("GET", "/ui/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("refused sign-outs signed out: %s", resp.Status)
	}
	resp, _ := b.do("POST", "/ui/signout", url.Values{"csrf": {token}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/signin" {
		t.Fatalf("sign-out: %s", resp.Status)
	}
	if resp, _ := b.do("GET", "/ui/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("still signed in after signing out: %s", resp.Status)
	}
	if resp, _ := other.do("GET", "/ui/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("signing out one session ended another: %s", resp.Status)
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t)
	base := time.Now().UTC()
	now := base
	f.dash.SetClock(func() time.Time { return now })
	cases := []struct {
		name  string
		steps []time.Duration // requests at these offsets from sign-in
		alive bool
	}{
		{"active within the idle limit", []time.Duration{30 * time.Minute, 59 * time.Minute}, true},
		{"idle for an hour", []time.Duration{time.Hour}, false},
		{"kept busy past twelve hours", []time.Duration{50 * time.Minute, 100 * time.Minute, 150 * time.Minute, 200 * time.Minute,
			250 * time.Minute, 300 * time.Minute, 350 * time.Minute, 400 * time.Minute, 450 * time.Minute, 500 * time.Minute,
			550 * time.Minute, 600 * time.Minute, 650 * time.Minute, 700 * time.Minute, 720 * time.Minute}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now = base
			b := f.browser(t)
			b.signIn(f.tokA)
			var resp *http.Response
			for _, d := range tc.steps {
				now = base.Add(d)
				resp, _ = b.do("GET", "/ui/", nil)
			}
			if alive := resp.StatusCode == http.StatusOK; alive != tc.alive {
				t.Fatalf("last request: %s %q, want alive=%v", resp.Status, resp.Header.Get("Location"), tc.alive)
			}
			if !tc.alive {
				if loc := resp.Header.Get("Location"); loc != "/ui/signin?expired=1" {
					t.Fatalf("expired session → %q", loc)
				}
				_, page := b.do("GET", "/ui/signin?expired=1", nil)
				if !strings.Contains(page, "Your session expired") {
					t.Fatal("sign-in page does not say the session expired")
				}
			}
		})
	}
}

// TestExpiryFoundFirstByAnotherRequest: when the live events stream or
// another tab is the first request to find the session expired, the page
// the party opens next still says the session expired instead of showing a
// bare sign-in form. The headless-browser test met this race in CI.
func TestExpiryFoundFirstByAnotherRequest(t *testing.T) {
	f := newFixture(t)
	base := time.Now().UTC()
	now := base
	f.dash.SetClock(func() time.Time { return now })
	b := f.browser(t)
	b.signIn(f.tokA)
	u, err := url.Parse(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cookies := b.c.Jar.Cookies(u)
	if len(cookies) == 0 {
		t.Fatal("no session cookie after signing in")
	}
	now = base.Add(2 * time.Hour)
	// The live stream is first to find out: it ends without touching
	// the cookie.
	if resp, _ := b.do("GET", "/ui/events/stream", nil); resp.StatusCode != http.StatusNoContent || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("stream of an expired session: %s, Set-Cookie %q", resp.Status, resp.Header.Values("Set-Cookie"))
	}
	// Another tab carries the same cookie but does not share the jar.
	other := f.browser(t)
	other.c.Jar.SetCookies(u, cookies)
	if resp, _ := other.do("GET", "/ui/", nil); resp.Header.Get("Location") != "/ui/signin?expired=1" {
		t.Fatalf("other tab after expiry → %s %q", resp.Status, resp.Header.Get("Location"))
	}
	for _, path := range []string{"/ui/", "/ui/events"} {
		if resp, _ := b.do("GET", path, nil); resp.Header.Get("Location") != "/ui/signin?expired=1" {
			t.Fatalf("%s after another request found the session expired → %s %q", path, resp.Status, resp.Header.Get("Location"))
		}
		// The redirect cleared b's cookie: put it back to ask again.
		b.c.Jar.SetCookies(u, cookies)
	}
}

func TestRevokedTokenEndsSession(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signIn(f.tokA)
	p, err := f.parties.Authenticate(context.Background(), f.tokA)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.parties.RevokeToken(context.Background(), p.TokenID); err != nil {
		t.Fatal(err)
	}
	resp, _ := b.do("GET", "/ui/", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/signin") {
		t.Fatalf("after revocation: %s %q", resp.Status, resp.Header.Get("Location"))
	}
}

// A party outside an agreement gets the same page for it as for an
// agreement that does not exist.
func TestNotFoundEqualsNotAllowed(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signIn(f.tokC)
	r1, p1 := b.do("GET", "/ui/agreements/"+f.agreementID, nil)
	r2, p2 := b.do("GET", "/ui/agreements/agreement--00000000-0000-4000-8000-000000000000", nil)
	if r1.StatusCode != http.StatusNotFound || r2.StatusCode != http.StatusNotFound || p1 != p2 {
		t.Fatalf("outsider: %s vs missing: %s (pages equal: %v)", r1.Status, r2.Status, p1 == p2)
	}
	_, overview := b.do("GET", "/ui/", nil)
	if strings.Contains(overview, f.agreementID) || !strings.Contains(overview, "no agreements yet") {
		t.Fatal("the outsider's overview shows the agreement")
	}
}

// forgedLedger serves a checkpoint signed by another key.
type forgedLedger struct {
	ledger.Reader
	note []byte
	size int64
}

func (l forgedLedger) LatestCheckpoint(ctx context.Context) (int64, []byte, error) {
	return l.size, l.note, nil
}

func TestCheckpointVerification(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	size, note, err := f.st.Ledger().LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	good, err := f.dash.ledgerStatus(ctx)
	if err != nil || !good.Verified || good.Size != size || good.Covers.IsZero() {
		t.Fatalf("genuine checkpoint: %+v, %v", good, err)
	}
	c, err := ledger.VerifyCheckpoint(note, f.signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, _ := ledger.GenerateSignerKey(f.signer.Origin())
	other, _ := ledger.NewSigner(otherKey)
	wrongKey, _ := other.Sign(c)
	c2 := c
	c2.Hash[0] ^= 1
	wrongRoot, _ := f.signer.Sign(c2)
	for name, n := range map[string][]byte{"other key": wrongKey, "wrong root": wrongRoot, "garbage": []byte("nonsense\n")} {
		f.dash.o.Ledger = forgedLedger{Reader: f.st.Ledger(), note: n, size: size}
		st, err := f.dash.ledgerStatus(ctx)
		if err != nil || st.Verified || st.Problem == "" {
			t.Errorf("%s: %+v, %v", name, st, err)
		}
	}
}
