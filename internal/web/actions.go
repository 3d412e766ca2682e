package web

import (
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/parley-cti/parley/internal/fault"
)

// actionRoutes are the pages and steps of handovers, requests, the ledger,
// agreement signatures and contests, and the event notifications. Every
// POST goes through authedPost (session and CSRF token) except the deposit,
// which checks both itself because its form may be multipart.
func (d *Dashboard) actionRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /ui/handovers":                      d.authed(d.handovers),
		"POST /ui/handovers":                     d.authedPost(d.proposeHandover),
		"GET /ui/handovers/{id}":                 d.authed(d.handover),
		"POST /ui/handovers/{id}/accept":         d.authedPost(d.decideHandover(true)),
		"POST /ui/handovers/{id}/decline":        d.authedPost(d.decideHandover(false)),
		"POST /ui/handovers/{id}/deposit":        d.authed(d.deposit),
		"GET /ui/handovers/{id}/deposit":         d.authed(d.fetchDeposit),
		"POST /ui/handovers/{id}/chunk-verdicts": d.authedPost(d.judgeChunk),
		"GET /ui/requests":                       d.authed(d.requests),
		"POST /ui/requests":                      d.authedPost(d.fileRequest),
		"GET /ui/requests/{id}":                  d.authed(d.request),
		"POST /ui/requests/{id}/acknowledge":     d.authedPost(d.requestStep(d.ackRequest)),
		"POST /ui/requests/{id}/refuse":          d.authedPost(d.requestStep(d.refuseRequest)),
		"POST /ui/requests/{id}/fulfil":          d.authedPost(d.requestStep(d.fulfilRequest)),
		"POST /ui/agreements/{id}/signatures":    d.authedPost(d.signAgreement),
		"POST /ui/agreements/{id}/contests":      d.authedPost(d.contest),
		"GET /ui/events":                         d.authed(d.events),
		"GET /ui/ledger":                         d.authed(d.ledger),
		"GET /ui/events/stream":                  d.authedStream(d.stream),
	}
}

// wording is how a family of pages words a refusal of a kind; each
// format takes the error's client-safe message.
type wording struct{ conflict, forbidden string }

var (
	// agreementSteps: signing, amending and contesting under an agreement.
	agreementSteps = wording{conflict: "Not possible now: %s.", forbidden: "Not permitted: %s."}
	// caseSteps: the steps of a handover or a request.
	caseSteps = wording{
		conflict:  "Not possible now (the case was already decided, answered, released or expired): %s.",
		forbidden: "Not permitted: %s. Only the side a step belongs to may take it, and only while the agreement is in force.",
	}
)

// refuse shows why a step was refused. This is the one place the
// dashboard turns an error into a status: by its fault kind, with the
// client-safe message the domain wrote; an error of no kind is an internal
// failure with a fixed message (fail).
func (d *Dashboard) refuse(w http.ResponseWriter, r *http.Request, err error, words wording) {
	kind := fault.KindOf(err)
	msg := clientText(err, kind)
	switch kind {
	case fault.NotFound:
		d.notFound(w, r)
	case fault.Conflict:
		switch fault.Code(err) {
		case "agreement_broken":
			d.showError(w, r, http.StatusConflict, "This agreement's recorded history does not verify: "+msg+".")
		case "deadline_passed":
			d.showError(w, r, http.StatusConflict, "The handover's deadline has passed: "+msg+".")
		default:
			d.showError(w, r, http.StatusConflict, fmt.Sprintf(words.conflict, msg))
		}
	case fault.Forbidden:
		d.showError(w, r, http.StatusForbidden, fmt.Sprintf(words.forbidden, msg))
	case fault.Invalid:
		d.showError(w, r, http.StatusBadRequest, "Refused: "+msg+".")
	case fault.TooLarge:
		d.showError(w, r, http.StatusRequestEntityTooLarge, "Refused: "+msg+".")
	default:
		d.fail(w, r, err)
	}
}

// clientText is err's client-safe message, or the kind's own words when
// the domain attached none.
func clientText(err error, kind *fault.Kind) string {
	if msg, ok := fault.MessageOf(err); ok {
		return string(msg)
	}
	switch kind {
	case fault.Forbidden:
		return "not permitted"
	case fault.Conflict:
		return "conflict"
	case fault.Invalid:
		return "invalid request"
	case fault.TooLarge:
		return "too large"
	}
	return "refused"
}

func hexOf(b [32]byte) string { return hex.EncodeToString(b[:]) }

// actionPages are the templates of these pages.
var actionPages = []string{"handovers", "handover", "requests", "request", "events", "ledger"}
