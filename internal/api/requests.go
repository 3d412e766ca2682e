package api

import (
	"net/http"

	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/wire"
)

func requestView(q store.Request) wire.Request {
	return wire.Request{ID: q.ID, Agreement: q.AgreementID, Requester: q.Requester, Responder: q.Responder, Subject: q.Subject,
		Refs: q.Refs, Reason: q.Reason, Urgency: q.Urgency, State: q.State, FiledAt: q.FiledAt, AckBy: q.AckBy, FulfilBy: q.FulfilBy,
		AcknowledgedAt: optTime(q.AcknowledgedAt), AnsweredAt: optTime(q.AnsweredAt), Ground: q.Ground, GroundText: q.GroundText,
		Handover: q.HandoverID, AnswerPending: request.Pending(q), AckOverdue: q.AckOverdue, AnswerOverdue: q.AnswerOverdue}
}

func requestStep(w http.ResponseWriter, res request.Result, status int) {
	receipt(w, res.LedgerIndex)
	v := requestView(res.Request)
	v.LedgerIndex = &res.LedgerIndex
	writeJSON(w, status, v)
}

func (s *Handler) fileRequest(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in wire.NewRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	res, err := s.requests.File(r.Context(), p, request.FileInput{AgreementID: in.Agreement, Subject: in.Subject,
		Refs: in.Refs, Reason: in.Reason, Urgency: in.Urgency})
	if err != nil {
		return err
	}
	requestStep(w, res, http.StatusCreated)
	return nil
}

func (s *Handler) listRequests(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	rs, err := s.requests.List(r.Context(), p, r.URL.Query().Get("agreement"))
	if err != nil {
		return err
	}
	out := []wire.Request{}
	for _, q := range rs {
		out = append(out, requestView(q))
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": out})
	return nil
}

func (s *Handler) getRequest(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	q, err := s.requests.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, requestView(q))
	return nil
}

func (s *Handler) ackRequest(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	res, err := s.requests.Acknowledge(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	requestStep(w, res, http.StatusOK)
	return nil
}

func (s *Handler) fulfilRequest(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in struct {
		Handover string `json:"handover"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	res, err := s.requests.Fulfil(r.Context(), p, r.PathValue("id"), in.Handover)
	if err != nil {
		return err
	}
	requestStep(w, res, http.StatusOK)
	return nil
}

func (s *Handler) refuseRequest(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in struct {
		Ground string `json:"ground"`
		Text   string `json:"text,omitempty"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	res, err := s.requests.Refuse(r.Context(), p, r.PathValue("id"), in.Ground, in.Text)
	if err != nil {
		return err
	}
	requestStep(w, res, http.StatusOK)
	return nil
}

func (s *Handler) requestStats(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	st, err := s.requests.Stats(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"agreement": r.PathValue("id"), "sides": st})
	return nil
}
