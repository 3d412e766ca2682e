package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/exchange/exchangetest"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// fixture is a dashboard over a real SQLite store holding two parties with
// an active agreement, some feed traffic and a signed checkpoint.
type fixture struct {
	st          store.Store
	ex          *exchange.Service
	parties     *party.Service
	dash        *Dashboard
	srv         *httptest.Server
	a, b        party.Principal
	tokA, tokB  string
	tokC        string // a third party, in no agreement
	agreementID string
	signer      *ledger.Signer
	keyA, keyB  *agreement.PrivateKeys
	pair        *exchangetest.Pair
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pair := exchangetest.NewPair(t, db)
	f := &fixture{st: db, ex: pair.Ex, parties: pair.Parties, pair: pair, a: pair.A, b: pair.B, tokA: pair.TokA, tokB: pair.TokB, tokC: pair.TokC,
		keyA: pair.KeyA, keyB: pair.KeyB, agreementID: pair.Agreement}

	// A contributes 30 in three batches, B 5: the chart has points.
	for i := range 3 {
		f.ingest(t, f.a, i*10, 10)
	}
	f.ingest(t, f.b, 1000, 5)

	skey, _, err := ledger.GenerateSignerKey("parley-test")
	if err != nil {
		t.Fatal(err)
	}
	if f.signer, err = ledger.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	f.checkpoint(t)
	f.dash, err = New(Options{Exchange: f.ex, Parties: f.parties, Ledger: db.Ledger(), Reports: report.New(f.ex, db.Ledger(), f.parties),
		VerifierKey: f.signer.VerifierKey(),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	f.dash.Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) checkpoint(t testing.TB) {
	t.Helper()
	cp := ledger.Checkpointer{Signer: f.signer, Update: func(ctx context.Context, fn func(ledger.Store) error) error {
		return f.st.Update(ctx, func(tx store.Handle) error { return fn(tx.Ledger()) })
	}}
	if _, _, err := cp.SignNow(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) ingest(t testing.TB, p party.Principal, from, n int) {
	t.Helper()
	f.pair.Ingest(t, p, f.agreementID, from, n)
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
type browser struct {
	t   *testing.T
	c   *http.Client
	url string
}

func (f *fixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, url: f.srv.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(raw)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the synchronizer token of the first form in html.
func csrf(t *testing.T, html string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", html)
	}
	return m[1]
}

// signIn signs in with token and returns the overview's CSRF token.
func (b *browser) signIn(token string) string {
	b.t.Helper()
	_, page := b.do("GET", "/ui/signin", nil)
	resp, _ := b.do("POST", "/ui/signin", url.Values{"csrf": {csrf(b.t, page)}, "token": {token}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		b.t.Fatalf("sign-in: %s → %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, page = b.do("GET", "/ui/", nil)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("overview after sign-in: %s", resp.Status)
	}
	return csrf(b.t, page)
}
