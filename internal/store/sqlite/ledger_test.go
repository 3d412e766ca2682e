package sqlite_test

import (
	"context"
	"testing"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/ledger/ledgertest"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

func TestLedgerStore(t *testing.T) {
	ledgertest.Run(t, func() ledger.Store {
		db, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db.Ledger()
	})
}
