package taxii

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/health"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
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

// writeError maps any error to a TAXII error resource. Sentinels from the
// layers below map to client statuses here and only here; anything else is a
// 500 whose detail goes to the log, never to the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, exchange.ErrNotFound), errors.Is(err, store.ErrNotFound):
		ae = notFound()
	case errors.Is(err, exchange.ErrForbidden):
		ae = problem(http.StatusForbidden, "forbidden", forbiddenText(err))
	case errors.Is(err, party.ErrUnauthenticated):
		ae = problem(http.StatusUnauthorized, "unauthenticated", "Send a valid parley token: 'Authorization: Bearer <token>', or HTTP Basic with the token as password.")
	case errors.Is(err, store.ErrUnavailable):
		health.Note(r.Context(), err)
		w.Header().Set("Retry-After", "5")
		ae = problem(http.StatusServiceUnavailable, "unavailable", "The database is unavailable; retry shortly.")
	default:
		health.Note(r.Context(), err)
		s.log.ErrorContext(r.Context(), "internal error", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		ae = problem(http.StatusInternalServerError, "internal", "The server failed to handle the request; the operator's log has the details.")
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley", Basic realm="parley"`)
	}
	ae.HTTPStatus = strconv.Itoa(ae.status)
	writeJSON(w, ae.status, ae)
}

// forbiddenText is the description of an ErrForbidden: the exchange
// package's wording is written for clients.
func forbiddenText(err error) string {
	msg := err.Error()
	const prefix = "exchange: not permitted: "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return msg[len(prefix):]
	}
	return "You do not have the right to do this."
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
