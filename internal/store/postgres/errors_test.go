package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parley-cti/parley/internal/store"
)

func TestMapErr(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("exec: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	cases := []struct {
		name      string
		err       error
		want      error // nil: no sentinel
		retryable bool
	}{
		{"no rows", pgx.ErrNoRows, store.ErrNotFound, false},
		{"unique violation", pg("23505"), store.ErrConflict, false},
		{"foreign key violation", pg("23503"), store.ErrNotFound, false},
		{"admin shutdown", pg("57P01"), store.ErrUnavailable, false},
		{"cannot connect now", pg("57P03"), store.ErrUnavailable, false},
		{"connection failure", pg("08006"), store.ErrUnavailable, false},
		{"too many connections", pg("53300"), store.ErrUnavailable, false},
		{"out of shared memory (lock table full)", pg("53200"), store.ErrUnavailable, false},
		{"insufficient resources", pg("53000"), store.ErrUnavailable, false},
		{"serialization failure", pg("40001"), nil, true},
		{"deadlock", pg("40P01"), nil, true},
		{"syntax error", pg("42601"), nil, false},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, store.ErrUnavailable, false},
		{"connection dropped", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), store.ErrUnavailable, false},
		{"connection closed under the pool", fmt.Errorf("begin: %w", pgconn.ErrConnClosed), store.ErrUnavailable, false},
		{"deadline", fmt.Errorf("acquire: %w", context.DeadlineExceeded), store.ErrUnavailable, false},
		{"caller cancelled", fmt.Errorf("acquire: %w", context.Canceled), nil, false},
	}
	sentinels := []error{store.ErrNotFound, store.ErrConflict, store.ErrUnavailable}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := mapErr(tc.err)
			if got == nil {
				t.Fatal("mapErr returned nil for an error")
			}
			for _, s := range sentinels {
				if errors.Is(got, s) != (s == tc.want) {
					t.Errorf("mapErr(%v) = %v; errors.Is(%v) = %v", tc.err, got, s, errors.Is(got, s))
				}
			}
			if retryable(got) != tc.retryable {
				t.Errorf("retryable(%v) = %v, want %v", got, !tc.retryable, tc.retryable)
			}
			// The driver error stays reachable for logs and for retryable.
			if tc.err != pgx.ErrNoRows && !errors.Is(got, tc.err) {
				t.Errorf("mapErr(%v) = %v dropped the original error", tc.err, got)
			}
		})
	}
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) != nil")
	}
}
