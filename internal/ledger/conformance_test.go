package ledger_test

import (
	"testing"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/ledger/ledgertest"
)

func TestMemStoreConformance(t *testing.T) {
	ledgertest.Run(t, func() ledger.Store { return ledger.NewMemStore() })
}
