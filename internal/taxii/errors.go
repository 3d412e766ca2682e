package taxii

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/health"
)

// apiError is a TAXII error message resource (TAXII 2.1 section 3.6.1).
type apiError struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	ErrorCode   string `json:"error_code,omitempty"`
	HTTPStatus  string `json:"http_status"`
	status      int
}

func (e *apiError) Error() string { return e.Title + ": " + e.Description }

// problem builds a client error with its status and a description that
// says what was wrong and, where it helps, what to do.
func problem(status int, code, description string) *apiError {
	return &apiError{Title: http.StatusText(status), Description: description, ErrorCode: code, status: status}
}

// notFound is the one response for anything missing or not allowed: the
// bytes must not differ between the two cases.
func notFound() *apiError {
	return problem(http.StatusNotFound, "not-found", "The requested resource does not exist or you do not have access to it.")
}

// writeError maps any error to a TAXII error resource: an *apiError as it
// is, anything else by its fault kind. This is the only place that does;
// an error of no kind is a 500 whose detail goes to the log, never to the
// client.
func (s *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if health.ClientGone(r, err) {
		w.WriteHeader(health.StatusClientGone)
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = refusal(err)
	}
	health.Refused(w, r, s.log, ae.status, err)
	ae.HTTPStatus = strconv.Itoa(ae.status)
	writeJSON(w, ae.status, ae)
}

// refusal is the error resource for a domain error: its kind decides the
// status, its client-safe message (or fixed words) the description.
func refusal(err error) *apiError {
	say := func(status int, code, fallback string) *apiError {
		if msg, ok := fault.MessageOf(err); ok {
			return problem(status, code, string(msg))
		}
		return problem(status, code, fallback)
	}
	switch fault.KindOf(err) {
	case fault.NotFound:
		return notFound()
	case fault.Forbidden:
		return say(http.StatusForbidden, "forbidden", "You do not have the right to do this.")
	case fault.Unauthenticated:
		return problem(http.StatusUnauthorized, "unauthenticated", "Send a valid parley token: 'Authorization: Bearer <token>', or HTTP Basic with the token as password.")
	case fault.Invalid:
		return say(http.StatusBadRequest, "invalid", "The request is not acceptable.")
	case fault.Conflict:
		return say(http.StatusConflict, "conflict", "The request is not possible in the current state.")
	case fault.TooLarge:
		return say(http.StatusRequestEntityTooLarge, "too-large", "The request is larger than this server accepts.")
	case fault.Unavailable:
		return problem(http.StatusServiceUnavailable, "unavailable", "The database is unavailable; retry shortly.")
	}
	return problem(http.StatusInternalServerError, "internal", "The server failed to handle the request; the operator's log has the details.")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"title":"Internal Server Error","http_status":"500"}`)
	}
	w.Header().Set("Content-Type", MediaTAXII)
	w.WriteHeader(status)
	w.Write(b)
}
