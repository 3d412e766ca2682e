// Package pgtest gives each test its own empty PostgreSQL schema on the
// server named by PARLEY_TEST_POSTGRES, so parallel packages and repeated
// runs never see each other's tables. It lives under internal/store because
// it speaks to the database, which nothing outside the store packages may.
//
// It is for tests only: nothing in parley's server or CLI may import it.
package pgtest

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Env names the variable holding the test server's connection string.
const Env = "PARLEY_TEST_POSTGRES"

// Base returns the test server's connection string. It skips the test only
// when the variable is unset, so a CI job that sets it makes every test
// that asks mandatory.
func Base(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(Env)
	if u == "" {
		tb.Skip(Env + " not set")
	}
	return u
}

// Schema creates an empty schema named prefix plus a random suffix, drops
// it (and everything in it) when the test ends, and returns a connection
// string whose connections use it.
func Schema(tb testing.TB, prefix string) string {
	tb.Helper()
	return SchemaOn(tb, Base(tb), prefix)
}

// SchemaOn is Schema on the server at base.
func SchemaOn(tb testing.TB, base, prefix string) string {
	tb.Helper()
	u, drop, err := NewSchema(context.Background(), base, prefix)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := drop(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return u
}

// NewSchema creates an empty schema named prefix plus a random suffix on
// the server at base and returns a connection string whose connections use
// it, and the function that drops it with everything in it. It is Schema
// for callers that hold no testing.TB (a testscript command).
func NewSchema(ctx context.Context, base, prefix string) (string, func(context.Context) error, error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("connecting to %s: %w", Env, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	crand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		return "", nil, err
	}
	drop := func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return fmt.Errorf("dropping schema %s: %w", schema, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			return fmt.Errorf("dropping schema %s: %w", schema, err)
		}
		return nil
	}
	u, err := searchPath(base, schema)
	if err != nil {
		return "", nil, errors.Join(err, drop(ctx))
	}
	return u, drop, nil
}

// WithSearchPath adds the search_path run-time parameter, which pgx sends
// at connection start-up, to a URL or a key=value connection string.
func WithSearchPath(tb testing.TB, base, schema string) string {
	tb.Helper()
	u, err := searchPath(base, schema)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func searchPath(base, schema string) (string, error) {
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return base + " search_path=" + schema, nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("%s: %w", Env, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
