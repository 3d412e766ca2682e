package exchange

import (
	"context"

	"github.com/parley-cti/parley/internal/store"
)

// WithoutLedger makes s skip ledger entries, so that a benchmark can
// measure what the ledger costs. Nothing outside tests can do this.
func WithoutLedger(s *Service) { s.noLedger = true }

// LoadAgreementInTx exposes the status computation (and its cache) to a
// test that runs it inside a transaction it then rolls back.
func LoadAgreementInTx(s *Service, tx store.Handle, id string) (Agreement, error) {
	return s.loadAgreement(context.Background(), tx, id, s.now())
}
