package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
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
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{st: db, ex: exchange.New(db), parties: party.New(db)}
	f.a, f.tokA = f.party(t, "cert-north")
	f.b, f.tokB = f.party(t, "police-south")
	_, f.tokC = f.party(t, "bystander")
	f.keyA, f.keyB = f.keys(t, f.a), f.keys(t, f.b)
	f.agreementID = f.activate(t, f.keyA, f.keyB)

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

func (f *fixture) party(t testing.TB, name string) (party.Principal, string) {
	t.Helper()
	p, tok, err := f.parties.Create(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := f.parties.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if pr.PartyID != p.ID {
		t.Fatalf("token of %s authenticates %s", p.ID, pr.PartyID)
	}
	return pr, tok
}

func (f *fixture) keys(t testing.TB, p party.Principal) *agreement.PrivateKeys {
	t.Helper()
	k, err := agreement.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ex.RegisterKeys(context.Background(), p, k.Public()); err != nil {
		t.Fatal(err)
	}
	return k
}

func (f *fixture) activate(t testing.TB, ka, kb *agreement.PrivateKeys) string {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	m := map[string]any{
		"schema_version": 1, "id": agreement.NewID(), "version": 1,
		"parties": []map[string]any{
			{"party_id": f.a.PartyID, "name": f.a.Name, "key_id": ka.KeyID()},
			{"party_id": f.b.PartyID, "name": f.b.Name, "key_id": kb.KeyID()},
		},
		"scope":              map[string]any{"types": []string{"indicator"}, "max_tlp": "amber", "unmarked": "allow"},
		"reciprocity":        map[string]any{"ratio": "1:2", "grace": 10},
		"escrow_deadline":    "72h",
		"request_deadlines":  map[string]any{"acknowledge": "24h", "fulfil": "168h"},
		"not_before":         now.Add(-time.Minute).Format(time.RFC3339),
		"not_after":          now.Add(365 * 24 * time.Hour).Format(time.RFC3339),
		"termination_notice": "0s",
	}
	raw, _ := json.Marshal(m)
	doc, err := agreement.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(k *agreement.PrivateKeys, p party.Principal, action agreement.Action) agreement.Signature {
		sig, err := agreement.Sign(k, agreement.StatementFor(doc, action, p.PartyID, k.KeyID(), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	if _, _, err := f.ex.Propose(ctx, f.a, doc.Canonical(), sign(ka, f.a, agreement.ActionPropose)); err != nil {
		t.Fatalf("propose: %v", err)
	}
	if _, _, err := f.ex.Sign(ctx, f.b, doc.ID, sign(kb, f.b, agreement.ActionCountersign)); err != nil {
		t.Fatalf("countersign: %v", err)
	}
	return doc.ID
}

func (f *fixture) ingest(t testing.TB, p party.Principal, from, n int) {
	t.Helper()
	ctx := context.Background()
	cs, err := f.ex.Collections(ctx, p, f.agreementID)
	if err != nil {
		t.Fatal(err)
	}
	own := ""
	for _, c := range cs {
		if c.Write {
			own = c.ID
		}
	}
	var objs []json.RawMessage
	for i := from; i < from+n; i++ {
		objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"C2 %d","pattern":"[ipv4-addr:value = '10.0.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
			i, i, (i>>8)&255, i&255)))
	}
	res, err := f.ex.Ingest(ctx, p, f.agreementID, own, objs)
	if err != nil || len(res.Status.Successes) != n {
		t.Fatalf("ingest: %+v, %v", res.Status, err)
	}
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
