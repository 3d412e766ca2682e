package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkAgreementPage renders an agreement page, whose balance history
// is read from the whole ledger (BalanceHistory scans it); it reports the
// ledger size so ns/op can be read per entry.
func BenchmarkAgreementPage(b *testing.B) {
	f := newFixture(b)
	for i := range 400 {
		f.ingest(b, f.a, 10_000+i*5, 5)
	}
	size, err := f.st.Ledger().Size(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	f.dash.Register(mux)
	id, _ := f.dash.sessions.create(f.b, f.dash.now())
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/ui/agreements/"+f.agreementID, nil)
		req.AddCookie(&http.Cookie{Name: "parley_session", Value: id})
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d", w.Code)
		}
	}
	b.ReportMetric(float64(size), "ledger-entries")
}
