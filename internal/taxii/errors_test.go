package taxii

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Every kind maps to its TAXII status in writeError, and internal error
// text (a SQL message) never reaches the client.
func TestWriteErrorMapsKinds(t *testing.T) {
	errSQL := errors.New(`pq: relation "objects" does not exist (SELECT raw FROM objects)`)
	const notFoundText = "The requested resource does not exist or you do not have access to it."
	cases := []struct {
		name   string
		err    error
		status int
		code   string
		desc   string
	}{
		{"not found", fault.Errorf("%w: object %s", exchange.ErrNotFound, "indicator--1"), 404, "not-found", notFoundText},
		{"not found in store", store.ErrNotFound, 404, "not-found", notFoundText},
		{"forbidden with a reason", fault.Errorf("%w: this collection is read-only for you", exchange.ErrForbidden), 403, "forbidden", "this collection is read-only for you"},
		{"forbidden, no reason", exchange.ErrForbidden, 403, "forbidden", "You do not have the right to do this."},
		{"not the owner", fault.Errorf("%w: %s was first posted by another party; only that party may delete it", exchange.ErrNotOwner, "indicator--1"), 403, "forbidden",
			"the object belongs to the party that first posted it: indicator--1 was first posted by another party; only that party may delete it"},
		{"forbidden over a broken agreement", fault.Errorf("%w: %w", exchange.ErrForbidden, fault.Errorf("%w: agreement--1: %w", exchange.ErrBrokenAgreement, errSQL)), 403, "forbidden",
			"the agreement's recorded history does not verify: agreement--1"},
		{"unauthenticated", party.ErrUnauthenticated, 401, "unauthenticated", "Send a valid parley token: 'Authorization: Bearer <token>', or HTTP Basic with the token as password."},
		{"invalid", fault.Errorf("%w: %v", agreement.ErrOutOfScope, "type malware"), 400, "invalid", "out of the agreement's scope: type malware"},
		{"conflict", exchange.ErrConflict, 409, "conflict", "The request is not possible in the current state."},
		{"unavailable", fmt.Errorf("listing: %w", store.ErrUnavailable), 503, "unavailable", "The database is unavailable; retry shortly."},
		{"internal", errSQL, 500, "internal", "The server failed to handle the request; the operator's log has the details."},
		{"internal, wrapped", fmt.Errorf("reading page: %w", errSQL), 500, "internal", "The server failed to handle the request; the operator's log has the details."},
		{"a TAXII error as it is", problem(415, "unsupported-media-type", "send TAXII"), 415, "unsupported-media-type", "send TAXII"},
	}
	s := &Handler{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.writeError(w, httptest.NewRequest("GET", "/taxii2/", nil), tc.err)
			var got apiError
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != tc.status || got.ErrorCode != tc.code || got.Description != tc.desc || got.HTTPStatus != fmt.Sprint(tc.status) {
				t.Errorf("got %d %q %q\nwant %d %q %q", w.Code, got.ErrorCode, got.Description, tc.status, tc.code, tc.desc)
			}
			if strings.Contains(w.Body.String(), "pq:") || strings.Contains(w.Body.String(), "SELECT") {
				t.Errorf("internal text reached the client: %s", w.Body)
			}
			if (w.Code == 401) != (w.Header().Get("WWW-Authenticate") != "") {
				t.Errorf("WWW-Authenticate %q on a %d", w.Header().Get("WWW-Authenticate"), w.Code)
			}
			if (w.Code == 503) != (w.Header().Get("Retry-After") == "5") {
				t.Errorf("Retry-After %q on a %d", w.Header().Get("Retry-After"), w.Code)
			}
		})
	}
	for _, k := range fault.Kinds {
		if refusal(k).status == 500 {
			t.Errorf("kind %v maps to 500", k)
		}
	}
}
