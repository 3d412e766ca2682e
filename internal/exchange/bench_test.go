package exchange_test

import (
	"encoding/json"
	"testing"

	"github.com/parley-cti/parley/internal/exchange"
)

// BenchmarkIngest measures ingest of 1,000-indicator batches (validation,
// storage, status, and what each variant adds) in one run, so the costs of
// the ledger and of give-to-get accounting read as ratios:
//
//	go test ./internal/exchange -run '^$' -bench Ingest -benchtime 30x
//
// operator-no-ledger: an operator collection with ledger entries switched off
// operator:           an operator collection (one feed.batch entry per batch)
// agreement:          an agreement's collection: scope check, credits and
//
//	release accounting under the agreement's lock, plus
//	feed.batch and feed.released entries
func BenchmarkIngest(b *testing.B) {
	const batchSize = 1000
	for _, variant := range []string{"operator-no-ledger", "operator", "agreement"} {
		b.Run(variant, func(b *testing.B) {
			fb := newFixture(b)
			var root, coll string
			switch variant {
			case "agreement":
				ag := fb.activate(nil)
				root = ag.Record.ID
				coll, _ = fb.collections(fb.a, root)
			default:
				c, err := fb.ex.CreateCollection(ctx, "feed", "", []string{fb.a.p.PartyID}, []string{fb.a.p.PartyID})
				if err != nil {
					b.Fatal(err)
				}
				root, coll = exchange.OperatorRoot, c.ID
				if variant == "operator-no-ledger" {
					exchange.WithoutLedger(fb.ex)
				}
			}
			batches := make([][]json.RawMessage, b.N)
			for i := range batches {
				batches[i] = batch(i*batchSize, batchSize)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := fb.ex.Ingest(ctx, fb.a.p, root, coll, batches[i])
				if err != nil || len(res.Status.Successes) != batchSize {
					b.Fatalf("ingest: %v (%d stored)", err, len(res.Status.Successes))
				}
			}
			b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}
