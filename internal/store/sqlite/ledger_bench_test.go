package sqlite_test

import (
	"context"
	"testing"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/ledger/ledgertest"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// BenchmarkLedgerAppend appends batches of 1,000 entries to the ledger in
// SQLite, each batch in its own committed transaction (synchronous=FULL),
// as the server's state changes do:
//
//	go test ./internal/store/sqlite -run '^$' -bench LedgerAppend -benchtime 50x
func BenchmarkLedgerAppend(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const batch = 1000
	es := make([]ledger.Entry, batch)
	for i := range es {
		es[i] = ledgertest.Entry(i)
	}
	b.ResetTimer()
	for b.Loop() {
		err := db.Update(ctx, func(tx store.Handle) error {
			_, err := ledger.Append(ctx, tx.Ledger(), es...)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkLedgerAppendOne appends one entry per transaction, as a state
// change does: here the commitment key's lookup and the entry's seal are
// paid per entry.
func BenchmarkLedgerAppendOne(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	i := 0
	for b.Loop() {
		err := db.Update(ctx, func(tx store.Handle) error {
			_, err := ledger.Append(ctx, tx.Ledger(), ledgertest.Entry(i))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
