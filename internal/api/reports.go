package api

import (
	"net/http"
	"strconv"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/wire"
)

// ReportSignatureBody carries a party's signed statement of a joint report.
type ReportSignatureBody struct {
	Signature agreement.SignedReport `json:"signature"`
}

func (s *Handler) getReport(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	q := r.URL.Query()
	from, to, err := report.ParsePeriod(q.Get("from"), q.Get("to"))
	if err != nil {
		return err
	}
	rep, err := s.reports.Build(r.Context(), p, r.PathValue("id"), from, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Handler) signReport(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var body ReportSignatureBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	sig, err := s.reports.Countersign(r.Context(), p, r.PathValue("id"), body.Signature)
	if err != nil {
		return err
	}
	w.Header().Set(wire.LedgerIndexHeader, strconv.FormatInt(sig.LedgerIndex, 10))
	writeJSON(w, http.StatusCreated, sig)
	return nil
}

// listReportSignatures returns every report signature recorded under the
// agreement with its signed statement, for the parties to check again.
func (s *Handler) listReportSignatures(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	sigs, err := s.ex.StoredReportSignatures(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"signatures": sigs})
	return nil
}
