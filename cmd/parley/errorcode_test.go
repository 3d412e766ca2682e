package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// errorCode maps each fault kind to its --json code, after the CLI's own
// conditions and the server's code; an error of no kind is "failed".
func TestErrorCode(t *testing.T) {
	cases := []struct {
		err  error
		code string
	}{
		{fmt.Errorf("%w: --server is not a URL", errUsage), "usage"},
		{fmt.Errorf("%w: no profile", errConfig), "config"},
		{fmt.Errorf("no party named %q: %w", "acme", errNotFound), "not_found"},
		{fmt.Errorf("no party named %q on the server: %w", "acme", client.ErrNotFound), "not_found"},
		{client.ErrUnauthorized, "unauthorized"},
		{client.ErrTooLarge, "too_large"},
		{client.ErrUnsupportedMedia, "unsupported_media"},
		{client.ErrProtocol, "protocol"},
		{&client.APIError{StatusCode: 409, Code: "deadline_passed", Message: "too late"}, "deadline_passed"},
		{fmt.Errorf("reading: %w", os.ErrNotExist), "file_not_found"},
		{context.Canceled, "interrupted"},
		{party.ErrExists, "conflict"},
		{party.ErrInvalidName, "invalid"},
		{escrow.ErrForbidden, "forbidden"},
		{fmt.Errorf("opening: %w", store.ErrUnavailable), "unavailable"},
		{errors.New(`pq: relation "parties" does not exist`), "failed"},
	}
	for _, tc := range cases {
		if got := errorCode(tc.err); got != tc.code {
			t.Errorf("errorCode(%v) = %q, want %q", tc.err, got, tc.code)
		}
	}
	for _, k := range fault.Kinds {
		if _, ok := kindCodes[k]; !ok {
			t.Errorf("kind %v has no --json code", k)
		}
	}
}
