package api

import (
	"net/http"
	"strconv"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/verification"
)

// VerificationBody carries a party's signed verification of the ledger.
type VerificationBody struct {
	Verification agreement.SignedVerification `json:"verification"`
}

func (s *Handler) uploadVerification(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var body VerificationBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	v, err := s.verifications.Record(r.Context(), p, body.Verification)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Handler) listVerifications(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	limit := 20
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > verification.MaxList {
			return apiErr(http.StatusBadRequest, "invalid", "limit must be 1 to "+strconv.Itoa(verification.MaxList))
		}
		limit = n
	}
	vs, err := s.verifications.List(r.Context(), p, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"verifications": vs})
	return nil
}
