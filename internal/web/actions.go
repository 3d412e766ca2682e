package web

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
)

// actionRoutes are the pages and steps of handovers, requests, the ledger,
// agreement signatures and contests, and the event notifications. Every
// POST goes through authedPost (session and CSRF token) except the deposit,
// which checks both itself because its form may be multipart.
func (d *Dashboard) actionRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /ui/handovers":                   d.authed(d.handovers),
		"POST /ui/handovers":                  d.authedPost(d.proposeHandover),
		"GET /ui/handovers/{id}":              d.authed(d.handover),
		"POST /ui/handovers/{id}/accept":      d.authedPost(d.decideHandover(true)),
		"POST /ui/handovers/{id}/decline":     d.authedPost(d.decideHandover(false)),
		"POST /ui/handovers/{id}/deposit":     d.authed(d.deposit),
		"GET /ui/handovers/{id}/deposit":      d.authed(d.fetchDeposit),
		"GET /ui/requests":                    d.authed(d.requests),
		"POST /ui/requests":                   d.authedPost(d.fileRequest),
		"GET /ui/requests/{id}":               d.authed(d.request),
		"POST /ui/requests/{id}/acknowledge":  d.authedPost(d.requestStep(d.ackRequest)),
		"POST /ui/requests/{id}/refuse":       d.authedPost(d.requestStep(d.refuseRequest)),
		"POST /ui/requests/{id}/fulfil":       d.authedPost(d.requestStep(d.fulfilRequest)),
		"POST /ui/agreements/{id}/signatures": d.authedPost(d.signAgreement),
		"POST /ui/agreements/{id}/contests":   d.authedPost(d.contest),
		"GET /ui/events":                      d.authed(d.events),
		"GET /ui/ledger":                      d.authed(d.ledger),
		"GET /ui/events/stream":               d.authed(d.stream),
	}
}

// exchangeError maps package exchange's and package agreement's sentinels
// for a step the party took; their messages name what was wrong and are
// written for clients (the API sends them too).
func (d *Dashboard) exchangeError(w http.ResponseWriter, r *http.Request, err error) {
	msg := err.Error()
	for _, p := range []string{"exchange: not permitted: ", "exchange: invalid request: ", "exchange: conflict: ", "exchange: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	switch {
	case errors.Is(err, exchange.ErrBrokenAgreement):
		d.showError(w, r, http.StatusConflict, "This agreement's recorded history does not verify: "+msg+".")
	case errors.Is(err, exchange.ErrNotFound):
		d.notFound(w, r)
	case errors.Is(err, exchange.ErrForbidden), errors.Is(err, agreement.ErrNotParty):
		d.showError(w, r, http.StatusForbidden, "Not permitted: "+msg+".")
	case errors.Is(err, exchange.ErrConflict), errors.Is(err, agreement.ErrIllegalTransition):
		d.showError(w, r, http.StatusConflict, "Not possible now: "+msg+".")
	case errors.Is(err, exchange.ErrInvalid), errors.Is(err, agreement.ErrInvalidDocument), errors.Is(err, agreement.ErrSelfAgreement),
		errors.Is(err, agreement.ErrBadSignature), errors.Is(err, agreement.ErrWrongVersion), errors.Is(err, agreement.ErrUnknownKey),
		errors.Is(err, agreement.ErrDocumentChanged), errors.Is(err, agreement.ErrInvalidKey), errors.Is(err, agreement.ErrIdentityMismatch):
		d.showError(w, r, http.StatusBadRequest, "Refused: "+msg+".")
	default:
		d.fail(w, r, err)
	}
}

func hexOf(b [32]byte) string { return hex.EncodeToString(b[:]) }

// actionPages are the templates of these pages.
var actionPages = []string{"handovers", "handover", "requests", "request", "events", "ledger"}
