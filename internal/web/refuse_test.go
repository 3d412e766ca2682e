package web

import (
	"errors"
	"fmt"
	"html"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
)

// refuse maps every kind to its status with the domain's client-safe
// message in the page family's words; internal text never reaches the
// browser.
func TestRefuseMapsKinds(t *testing.T) {
	errSQL := errors.New(`pq: relation "handovers" does not exist (SELECT secret FROM tokens)`)
	cases := []struct {
		name   string
		err    error
		words  wording
		status int
		says   string
	}{
		{"not found", fault.Errorf("%w: handover--1", escrow.ErrNotFound), caseSteps, 404, "There is no such page"},
		{"not found page", errNotFoundPage, caseSteps, 404, "There is no such page"},
		{"case conflict", fault.Errorf("%w: handover h1 was declined", escrow.ErrConflict), caseSteps, 409,
			"Not possible now (the case was already decided, answered, released or expired): not possible now: handover h1 was declined."},
		{"agreement conflict", fault.Errorf("%w: this signature is already recorded", exchange.ErrConflict), agreementSteps, 409,
			"Not possible now: this signature is already recorded."},
		{"illegal transition", agreement.ErrIllegalTransition, agreementSteps, 409, "Not possible now: illegal agreement transition."},
		{"deadline passed", fault.Errorf("%w: handover h1 expired", escrow.ErrDeadlinePassed), caseSteps, 409,
			"The handover's deadline has passed: not possible now: the handover's deadline has passed: handover h1 expired."},
		{"broken agreement", fault.Errorf("%w: agreement--1: %w", exchange.ErrBrokenAgreement, errSQL), agreementSteps, 409,
			"This agreement's recorded history does not verify: the agreement's recorded history does not verify: agreement--1."},
		{"case forbidden", request.ErrForbidden, caseSteps, 403,
			"Not permitted: not permitted. Only the side a step belongs to may take it, and only while the agreement is in force."},
		{"agreement forbidden", agreement.ErrNotParty, agreementSteps, 403, "Not permitted: signer is not a party to the agreement."},
		{"invalid", fault.Errorf("%w: key k1 is not one of your registered keys", exchange.ErrInvalid), agreementSteps, 400,
			"Refused: key k1 is not one of your registered keys."},
		{"out of scope", fault.Errorf("%w: type %q is outside the agreement's scope", agreement.ErrOutOfScope, "tool"), caseSteps, 400,
			`Refused: out of the agreement's scope: type "tool" is outside the agreement's scope.`},
		{"too large", fault.Errorf("%w: 9 elements, cap 4", matching.ErrOverCap), caseSteps, 413,
			"Refused: invalid: more elements than the agreement's match_cap: 9 elements, cap 4."},
		{"unavailable", fmt.Errorf("listing: %w", store.ErrUnavailable), caseSteps, 503, "The database is unavailable."},
		{"internal", errSQL, caseSteps, 500, "The server failed to show this page."},
		{"internal under a conflict", fault.Errorf("%w: storing h1: %w", escrow.ErrConflict, errSQL), caseSteps, 409, "not possible now: storing h1."},
	}
	d := newFixture(t).dash
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			d.refuse(w, httptest.NewRequest("POST", "/ui/handovers/h1/accept", nil), tc.err, tc.words)
			body := html.UnescapeString(w.Body.String())
			if w.Code != tc.status || !strings.Contains(body, tc.says) {
				t.Errorf("got %d, want %d saying %q; page:\n%s", w.Code, tc.status, tc.says, body)
			}
			if strings.Contains(body, "pq:") || strings.Contains(body, "SELECT") {
				t.Errorf("internal text reached the browser")
			}
		})
	}
}
