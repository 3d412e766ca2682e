package ledgerhttp

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/ledger/ledgertest"
)

// FuzzReadHandlers throws arbitrary paths and queries at the read routes:
// they may answer 200, 400 or 404, never 500, and never panic.
func FuzzReadHandlers(f *testing.F) {
	st := ledger.NewMemStore()
	ctx := context.Background()
	es := make([]ledger.Entry, 300)
	for i := range es {
		es[i] = ledgertest.Entry(i)
	}
	if _, err := ledger.Append(ctx, st, es...); err != nil {
		f.Fatal(err)
	}
	skey, _, _ := ledger.GenerateSignerKey("parley.test/log")
	s, _ := ledger.NewSigner(skey)
	if _, _, err := ledger.NewCheckpoint(ctx, st, s); err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	Register(mux, "/l", Source{Log: st, Logger: slog.New(slog.DiscardHandler)})
	for _, seed := range []string{
		"tile/0/001.p/44", "tile/entries/000", "entries/299", "proof/inclusion?index=3&size=300",
		"proof/consistency?from=1&to=300", "checkpoint", "tile/1/000.p/1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		u, err := url.Parse("/l/" + p)
		if err != nil || strings.ContainsAny(p, " \t\r\n") {
			return
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL = u
		req.RequestURI = u.RequestURI()
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 301, 307, 308, 400, 404, 405:
		default:
			t.Fatalf("GET %q: status %d: %s", u, rec.Code, rec.Body)
		}
	})
}
