package e2e

import (
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// BenchmarkMirrorFromParley measures a mirror catching up with a source
// collection of 10,000 indicators on another parley (pages of 1,000, both
// servers in this process on loopback): objects pulled and stored per
// second, through the whole ingest (validation, scope, credits, ledger).
func BenchmarkMirrorFromParley(b *testing.B) {
	const n = 10000
	src := Start(b)
	owner := src.NewParty(b, "source-owner")
	feed, err := src.Srv.Ex.CreateCollection(ctx, "feed", "", []string{owner.ID}, []string{owner.ID})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 1000 {
		if st, err := owner.C.AddObjects(ctx, "shared", feed.ID, Indicators(i+1, 1000)); err != nil || len(st.Failures) != 0 {
			b.Fatalf("seeding the source: %v", err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := Start(b)
		a, c := s.NewParty(b, "alpha"), s.NewParty(b, "beta")
		d := Document(b, a, c, nil)
		Activate(b, a, c, d)
		b.StartTimer()
		start := time.Now()
		m, err := a.C.AddMirror(ctx, client.MirrorSpec{Agreement: d.ID, SourceURL: src.URL + "/taxii2/shared/", Collection: feed.ID,
			Token: owner.Token, PageLimit: 1000})
		if err != nil {
			b.Fatal(err)
		}
		for {
			m, err = a.C.MirrorStatus(ctx, m.ID)
			if err != nil {
				b.Fatal(err)
			}
			if m.Accepted == n && !m.Paging {
				break
			}
			if m.Failures > 0 {
				b.Fatalf("the mirror failed: %s", m.LastError)
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "objects/s")
		b.StopTimer()
		s.stop()
		b.StartTimer()
	}
}
