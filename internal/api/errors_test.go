package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/mirror"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/verification"
)

// errSQL stands for any internal error: its text must never reach a client.
var errSQL = errors.New(`pq: duplicate key value violates unique constraint "handovers_pkey" (SELECT secret FROM tokens)`)

// Every kind maps to its status in writeError, with the domain's code and
// client-safe message, whichever package the sentinel comes from; internal
// text stays in the log.
func TestWriteErrorMapsKinds(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		status  int
		code    string
		message string
	}{
		{"unauthenticated", party.ErrUnauthenticated, 401, "unauthenticated", "send a valid parley token: 'Authorization: Bearer <token>'"},
		{"not found in exchange, detail withheld", fault.Errorf("%w: collection %s", exchange.ErrNotFound, "c1"), 404, "not_found", "the resource does not exist or you do not have access to it"},
		{"not found in escrow", fault.Errorf("%w: handover--1", escrow.ErrNotFound), 404, "not_found", "the resource does not exist or you do not have access to it"},
		{"not found in store", store.ErrNotFound, 404, "not_found", "the resource does not exist or you do not have access to it"},
		{"not found in matching", matching.ErrNotFound, 404, "not_found", "the resource does not exist or you do not have access to it"},
		{"forbidden in exchange", fault.Errorf("%w: this collection is read-only for you", exchange.ErrForbidden), 403, "forbidden", "this collection is read-only for you"},
		{"forbidden in request", fault.Errorf("%w: only the requested side may answer", request.ErrForbidden), 403, "forbidden", "not permitted: only the requested side may answer"},
		{"forbidden in agreement", agreement.ErrNotParty, 403, "forbidden", "signer is not a party to the agreement"},
		{"bare forbidden", exchange.ErrForbidden, 403, "forbidden", "not permitted"},
		{"conflict in exchange", fault.Errorf("%w: version %d exists", exchange.ErrConflict, 2), 409, "conflict", "version 2 exists"},
		{"bare conflict", exchange.ErrConflict, 409, "conflict", "conflict"},
		{"conflict in escrow", fault.Errorf("%w: handover %s was declined", escrow.ErrConflict, "h1"), 409, "conflict", "not possible now: handover h1 was declined"},
		{"deadline passed", fault.Errorf("%w: handover h1 expired", escrow.ErrDeadlinePassed), 409, "deadline_passed", "not possible now: the handover's deadline has passed: handover h1 expired"},
		{"not ready", matching.ErrNotReady, 409, "not_ready", "not possible now: not ready"},
		{"broken agreement", fault.Errorf("%w: %s: %w", exchange.ErrBrokenAgreement, "agreement--1", agreement.ErrKeyRotated), 409, "agreement_broken",
			"the agreement's recorded history does not verify: agreement--1: unknown key: key rotated out"},
		{"unknown checkpoint", fault.Errorf("%w: size 7", verification.ErrUnknownCheckpoint), 409, "unknown_checkpoint", "not a checkpoint this server signed: size 7"},
		{"invalid in exchange", fault.Errorf("%w: a collection needs a title", exchange.ErrInvalid), 400, "invalid", "a collection needs a title"},
		{"invalid in two packages", fault.Errorf("%w: %w: parties[0].name is %q", exchange.ErrInvalid, agreement.ErrIdentityMismatch, "x"), 400, "invalid",
			`identity in the document does not match the signer: parties[0].name is "x"`},
		{"hash mismatch", fault.Errorf("%w: stated 00", escrow.ErrHashMismatch), 400, "hash_mismatch", "invalid: the ciphertext does not match its stated SHA-256: stated 00"},
		{"report period", fault.Errorf("%w: from: required", report.ErrInvalid), 400, "invalid", "from: required"},
		{"over cap", fault.Errorf("%w: 9 elements, cap 4", matching.ErrOverCap), 413, "over_cap", "invalid: more elements than the agreement's match_cap: 9 elements, cap 4"},
		{"mirror definition", fault.Errorf("%w: the page limit must be 1 to %d", mirror.ErrInvalid, 1000), 400, "invalid", "invalid definition: the page limit must be 1 to 1000"},
		{"mirror not found", mirror.ErrNotFound, 404, "not_found", "the resource does not exist or you do not have access to it"},
		{"unavailable", fmt.Errorf("reading: %w", store.ErrUnavailable), 503, "unavailable", "the database is unavailable; retry shortly"},
		{"disk full", store.ErrDiskFull, 503, "unavailable", "the database is unavailable; retry shortly"},
		{"internal", errSQL, 500, "internal", "the server failed to handle the request; the operator's log has the details"},
		{"internal, wrapped", fmt.Errorf("storing handover: %w", errSQL), 500, "internal", "the server failed to handle the request; the operator's log has the details"},
		{"internal cause under a conflict", fault.Errorf("%w: storing %s: %w", escrow.ErrConflict, "h1", errSQL), 409, "conflict", "not possible now: storing h1"},
		{"internal cause under a generic kind", fmt.Errorf("saving: %w", fault.Errorf("%w: %w", store.ErrConflict, errSQL)), 409, "conflict", "conflict"},
		{"an API error as it is", apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send JSON"), 415, "unsupported_media_type", "send JSON"},
	}
	s := &Handler{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.writeError(w, httptest.NewRequest("GET", "/api/v1/x", nil), tc.err)
			var got Error
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != tc.status || got.Code != tc.code || got.Message != tc.message {
				t.Errorf("got %d %q %q\nwant %d %q %q", w.Code, got.Code, got.Message, tc.status, tc.code, tc.message)
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
}

// Every kind has a status other than 500.
func TestEveryKindHasAStatus(t *testing.T) {
	for _, k := range fault.Kinds {
		if e := refusal(k); e.status == http.StatusInternalServerError {
			t.Errorf("kind %v maps to 500", k)
		}
	}
}
