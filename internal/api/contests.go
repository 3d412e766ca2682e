package api

import (
	"net/http"
	"strconv"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/wire"
)

// ContestBody carries a signed contest of one credit.
type ContestBody struct {
	Contest agreement.SignedContest `json:"contest"`
}

// WithdrawalBody carries a signed withdrawal of a contest.
type WithdrawalBody struct {
	Withdrawal agreement.SignedContest `json:"withdrawal"`
}

func (s *Handler) fileContest(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var body ContestBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	c, err := s.ex.Contest(r.Context(), p, r.PathValue("id"), body.Contest)
	if err != nil {
		return err
	}
	w.Header().Set(wire.LedgerIndexHeader, strconv.FormatInt(c.LedgerIndex, 10))
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Handler) withdrawContest(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var body WithdrawalBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	c, err := s.ex.WithdrawContest(r.Context(), p, r.PathValue("id"), r.PathValue("contest"), body.Withdrawal)
	if err != nil {
		return err
	}
	w.Header().Set(wire.LedgerIndexHeader, strconv.FormatInt(c.WithdrawIndex, 10))
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Handler) listContests(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	cs, err := s.ex.Contests(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []exchange.ContestView{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"contests": cs})
	return nil
}
