package audit

import (
	"context"
	"fmt"
	"testing"

	"github.com/parley-cti/parley/internal/ledger"
)

// BenchmarkVerify measures a first `parley verify` over an in-memory log of
// n feed batches (checkpoint, replay of every entry with root check,
// comparison), without HTTP: the audit's own cost per entry.
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprint("entries=", n), func(b *testing.B) {
			ctx := context.Background()
			mem := ledger.NewMemStore()
			skey, vkey, _ := ledger.GenerateSignerKey("bench-log")
			signer, _ := ledger.NewSigner(skey)
			es := []ledger.Entry{agreementEntry("propose", "A"), agreementEntry("countersign", "B")}
			for i := range n - 2 {
				e := batch("A", 1)
				e.Subject = fmt.Sprint("status--", i)
				es = append(es, e)
			}
			if err := mem.Update(ctx, func(st ledger.Store) error {
				if _, err := ledger.Append(ctx, st, es...); err != nil {
					return err
				}
				_, _, err := ledger.NewCheckpoint(ctx, st, signer)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				rep, err := Verify(ctx, Options{State: State{Dir: b.TempDir()}, Remote: ledger.NewLocalRemote(mem), Party: "A", LogKey: vkey})
				if err != nil || rep.Err() != nil || rep.Entries != int64(n) {
					b.Fatal(err, rep.Err())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
		})
	}
}
