package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/authlimit"
	"github.com/parley-cti/parley/internal/party"
)

// fromAddr is an HTTP client whose connections come from the loopback
// address ip, so one test can be several sources.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestAttackBruteForce (issue 12, finding 13): failed authentication is
// limited per source address on every surface. After authlimit.DefaultMax
// failures within the window — whatever mix of TAXII, management API,
// ledger and dashboard sign-in — every attempt from that address that
// presents a credential gets 429 with Retry-After, in the surface's own
// format, right token or not; successful authentication counts nothing;
// other addresses are unaffected; after the window the right token works
// again.
func TestAttackBruteForce(t *testing.T) {
	s := Start(t)
	a := s.NewParty(t, "alpha")
	var mu sync.Mutex
	now := time.Now()
	s.Srv.AuthLimit.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	type answer struct {
		status int
		header http.Header
		body   string
	}
	do := func(hc *http.Client, method, path, auth string, body string, hdr map[string]string) answer {
		t.Helper()
		r, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header, string(b)}
	}
	wrong := func(i int) string {
		tok := party.TokenPrefix + strings.Repeat("A", 40) + string(rune('a'+i%26)) + "zz"
		return "Bearer " + tok
	}
	good := "Bearer " + a.Token
	signin := func(hc *http.Client, token string) answer {
		t.Helper()
		form := do(hc, "GET", "/ui/signin", "", "", nil)
		m := csrfRE.FindStringSubmatch(form.body)
		if form.status != 200 || m == nil {
			t.Fatalf("sign-in form: %d %s", form.status, form.body)
		}
		var cookie string
		for _, c := range (&http.Response{Header: form.header}).Cookies() {
			cookie = c.Name + "=" + c.Value
		}
		return do(hc, "POST", "/ui/signin", "", url.Values{"token": {token}, "csrf": {m[1]}}.Encode(),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
	}

	attacker := fromAddr("127.0.0.1")
	surfaces := []string{"/taxii2/", "/api/v1/me", "/ledger/checkpoint"}
	for i := range authlimit.DefaultMax - 1 {
		if r := do(attacker, "GET", surfaces[i%3], wrong(i), "", nil); r.status != 401 {
			t.Fatalf("failed attempt %d on %s: %d %s", i+1, surfaces[i%3], r.status, r.body)
		}
		if i == 5 {
			// Successes in between count nothing.
			for range 30 {
				if r := do(attacker, "GET", "/api/v1/me", good, "", nil); r.status != 200 {
					t.Fatalf("the right token among failures: %d %s", r.status, r.body)
				}
			}
		}
	}
	if r := signin(attacker, "parley_wrong"); r.status != 401 {
		t.Fatalf("last allowed failure, a dashboard sign-in: %d %s", r.status, r.body)
	}

	// The limit is reached: every surface answers 429 in its own format.
	retry := func(t *testing.T, r answer) {
		t.Helper()
		if r.status != 429 || r.header.Get("Retry-After") != "60" {
			t.Errorf("status %d, Retry-After %q, want 429 and 60: %s", r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	t.Run("taxii", func(t *testing.T) {
		for _, auth := range []string{wrong(99), good} {
			r := do(attacker, "GET", "/taxii2/", auth, "", map[string]string{"Accept": "application/taxii+json;version=2.1"})
			retry(t, r)
			var er struct{ Title, Description, HTTPStatus string }
			if r.header.Get("Content-Type") != "application/taxii+json;version=2.1" || json.Unmarshal([]byte(r.body), &er) != nil ||
				!strings.Contains(r.body, `"http_status":"429"`) || !strings.Contains(er.Description, "try again in 60 s") {
				t.Errorf("not a TAXII error resource: %s %s", r.header.Get("Content-Type"), r.body)
			}
		}
	})
	t.Run("api", func(t *testing.T) {
		for _, auth := range []string{wrong(98), good} {
			r := do(attacker, "GET", "/api/v1/me", auth, "", nil)
			retry(t, r)
			var er struct{ Error, Message string }
			if json.Unmarshal([]byte(r.body), &er) != nil || er.Error != "rate_limited" || !strings.Contains(er.Message, "60 s") {
				t.Errorf("not the API's JSON error: %s", r.body)
			}
		}
	})
	t.Run("ledger", func(t *testing.T) {
		retry(t, do(attacker, "GET", "/ledger/checkpoint", good, "", nil))
	})
	t.Run("dashboard", func(t *testing.T) {
		r := signin(attacker, a.Token)
		retry(t, r)
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(r.body, "Too many failed sign-ins") {
			t.Errorf("not a page: %s", r.body)
		}
	})
	// Requests without a credential are neither limited nor counted.
	if r := do(attacker, "GET", "/healthz", "", "", nil); r.status != 200 {
		t.Errorf("/healthz during the block: %d", r.status)
	}
	if r := do(attacker, "GET", "/taxii2/", "", "", nil); r.status != 401 {
		t.Errorf("TAXII without a credential during the block: %d, want its usual 401", r.status)
	}
	// Another address is unaffected.
	other := fromAddr("127.0.0.2")
	if r := do(other, "GET", "/api/v1/me", good, "", nil); r.status != 200 {
		t.Errorf("another address with the right token: %d %s", r.status, r.body)
	}
	if r := signin(other, a.Token); r.status != 303 {
		t.Errorf("another address signs in: %d %s", r.status, r.body)
	}
	// After the window the right token works again from the attacker's
	// address, and the count starts over.
	mu.Lock()
	now = now.Add(authlimit.DefaultWindow + time.Second)
	mu.Unlock()
	if r := do(attacker, "GET", "/api/v1/me", good, "", nil); r.status != 200 {
		t.Errorf("after the window, the right token: %d %s", r.status, r.body)
	}
	if r := signin(attacker, a.Token); r.status != 303 {
		t.Errorf("after the window, sign-in: %d %s", r.status, r.body)
	}
	if r := do(attacker, "GET", "/taxii2/", wrong(1), "", nil); r.status != 401 {
		t.Errorf("after the window, a wrong token: %d, want 401 again", r.status)
	}
}
