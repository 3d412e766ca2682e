package api

import (
	"errors"
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

// verificationErr gives the package's refusals their statuses; the rest
// goes through writeError's mapping.
func verificationErr(err error) error {
	switch {
	case errors.Is(err, verification.ErrUnknownCheckpoint):
		return apiErr(http.StatusConflict, "unknown_checkpoint", clean(err.Error()))
	case errors.Is(err, agreement.ErrKeyRotated):
		return apiErr(http.StatusBadRequest, "invalid", clean(err.Error()))
	}
	return err
}

func (s *Server) uploadVerification(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var body VerificationBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	v, err := s.verifications.Record(r.Context(), p, body.Verification)
	if err != nil {
		return verificationErr(err)
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) listVerifications(w http.ResponseWriter, r *http.Request, p party.Principal) error {
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
