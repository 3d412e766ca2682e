package api

import (
	"net/http"
	"strconv"

	"github.com/parley-cti/parley/internal/party"
)

// ledgerOpening serves GET /api/v1/ledger/openings/{index}: the key that
// opens one entry's commitments, to a party entitled to what they bind
// (exchange decides); anyone else gets the 404 of a missing entry.
func (s *Handler) ledgerOpening(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	index, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil {
		index = -1 // answered like any entry the caller may not open
	}
	o, err := s.ex.LedgerOpening(r.Context(), p, index)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}
