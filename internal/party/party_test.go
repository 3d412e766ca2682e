package party_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

func TestTokensLifecycle(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := party.New(db)
	p, secret, err := s.Create(ctx, "CERT-Alpha")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, party.TokenPrefix) || len(secret) != len(party.TokenPrefix)+43 {
		t.Fatalf("token %q: want prefix and 256 bits in base64url", secret)
	}
	pr, err := s.Authenticate(ctx, secret)
	if err != nil || pr.PartyID != p.ID || pr.Name != "CERT-Alpha" {
		t.Fatalf("Authenticate = %+v, %v", pr, err)
	}
	// The database holds only the hash.
	toks, err := s.Tokens(ctx, p.ID)
	if err != nil || len(toks) != 1 || toks[0].Hash != party.Hash(secret) {
		t.Fatalf("Tokens = %+v, %v", toks, err)
	}
	second, id2, err := s.AddToken(ctx, p.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, pr.TokenID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, party.ErrUnauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}
	if pr2, err := s.Authenticate(ctx, second); err != nil || pr2.TokenID != id2 {
		t.Fatalf("second token after revoking the first: %+v, %v", pr2, err)
	}
	for _, bad := range []string{"", "parley_", "Bearer x", secret[:len(secret)-1] + "A", strings.ToUpper(second)} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, party.ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", bad, err)
		}
	}
	if _, _, err := s.Create(ctx, "CERT-Alpha"); !errors.Is(err, party.ErrExists) {
		t.Fatalf("duplicate party: %v", err)
	}
	for _, bad := range []string{"", " ", "-x", strings.Repeat("a", 64), "a/b", "<script>"} {
		if _, _, err := s.Create(ctx, bad); !errors.Is(err, party.ErrInvalidName) {
			t.Errorf("Create(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	if err := s.RevokeToken(ctx, "token--nope"); !errors.Is(err, party.ErrNotFound) {
		t.Fatalf("revoke unknown token: %v", err)
	}
	if _, _, err := s.AddToken(ctx, "party--nope", ""); !errors.Is(err, party.ErrNotFound) {
		t.Fatalf("token for unknown party: %v", err)
	}
}

// TestList: the directory holds every party created, by id and name.
func TestList(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := party.New(db)
	if ps, err := s.List(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("List of an empty store = %v, %v", ps, err)
	}
	want := map[string]string{}
	for _, name := range []string{"CERT-Alpha", "CERT-Beta"} {
		p, _, err := s.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		want[p.ID] = name
	}
	ps, err := s.List(ctx)
	if err != nil || len(ps) != len(want) {
		t.Fatalf("List = %v, %v; want %d parties", ps, err, len(want))
	}
	for _, p := range ps {
		if want[p.ID] != p.Name {
			t.Errorf("List has %s %q; want %v", p.ID, p.Name, want)
		}
	}
}

func TestTokenFromAuthorization(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct{ header, want string }{
		{"Bearer parley_abc", "parley_abc"},
		{"bearer parley_abc", "parley_abc"},
		{"BEARER   parley_abc  ", "parley_abc"},
		{basic("any-user:parley_abc"), "parley_abc"},
		{basic("user:with:colon"), "with:colon"},
		{"basic " + base64.StdEncoding.EncodeToString([]byte("u:parley_x")), "parley_x"},
		{basic("no-colon"), ""},
		{"Basic !!!", ""},
		{"Bearer", ""},
		{"Token parley_abc", "parley_abc"}, // the OASIS Python client's TokenAuth
		{"token parley_abc", "parley_abc"},
		{"Token", ""},
		{"Digest parley_abc", ""},
		{"", ""},
	} {
		if got := party.TokenFromAuthorization(tc.header); got != tc.want {
			t.Errorf("TokenFromAuthorization(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

func TestNewIDOneSeparator(t *testing.T) {
	for _, kind := range []string{"match", "match--", "handover-", "party"} {
		id := party.NewID(kind)
		k, rest, ok := strings.Cut(id, "--")
		if !ok || k != strings.TrimRight(kind, "-") || len(rest) != 36 || strings.Contains(rest, "--") {
			t.Errorf("NewID(%q) = %q, want one kind, one \"--\" and a UUID", kind, id)
		}
	}
	if id := party.NewID(""); len(id) != 36 || strings.Contains(id, "--") {
		t.Errorf("NewID(\"\") = %q, want a bare UUID", id)
	}
}

// TestTokenExpiryAndLastUse: a token issued with a lifetime authenticates
// until it ends and never after; each use is recorded to the minute, at
// most one write a minute.
func TestTokenExpiryAndLastUse(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := party.New(db)
	created := time.Date(2026, 12, 3, 10, 0, 30, 0, time.UTC)
	now := created
	s.SetClock(func() time.Time { return now })
	p, _, err := s.Create(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	secret, id, err := s.AddExpiringToken(ctx, p.ID, "ci", 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lastUse := func() (time.Time, time.Time) {
		toks, err := s.Tokens(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range toks {
			if tk.ID == id {
				return tk.LastUsedAt, tk.ExpiresAt
			}
		}
		t.Fatalf("token %s not listed", id)
		return time.Time{}, time.Time{}
	}
	if used, exp := lastUse(); !used.IsZero() || !exp.Equal(now.Add(90*24*time.Hour)) {
		t.Fatalf("before use: last used %v, expires %v", used, exp)
	}
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if used, _ := lastUse(); !used.Equal(now.Truncate(time.Minute)) {
		t.Fatalf("last used %v, want %v", used, now.Truncate(time.Minute))
	}
	now = now.Add(89 * 24 * time.Hour)
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatalf("a day before expiry: %v", err)
	}
	if used, _ := lastUse(); !used.Equal(now.Truncate(time.Minute)) {
		t.Fatalf("last used %v after a later use, want %v", used, now.Truncate(time.Minute))
	}
	now = created.Add(90 * 24 * time.Hour) // exactly at expiry
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, party.ErrUnauthenticated) {
		t.Fatalf("at expiry: %v, want ErrUnauthenticated", err)
	}
	if _, _, err := s.AddExpiringToken(ctx, p.ID, "", -time.Hour); !errors.Is(err, party.ErrInvalidExpiry) {
		t.Fatalf("negative lifetime: %v", err)
	}
}

// countingStore counts the reads of parties by id.
type countingStore struct {
	store.Store
	gets *atomic.Int64
}

func (c countingStore) Parties() store.Parties { return countingParties{c.Store.Parties(), c.gets} }

type countingParties struct {
	store.Parties
	gets *atomic.Int64
}

func (c countingParties) Get(ctx context.Context, id string) (store.Party, error) {
	c.gets.Add(1)
	return c.Parties.Get(ctx, id)
}

// TestAuthenticateReadsThePartyOnce: a token check reads the token every
// time, so a revocation (here, or by another instance on the same database)
// counts from the next request, and the party, which never changes once
// created, only the first time.
func TestAuthenticateReadsThePartyOnce(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var gets atomic.Int64
	s := party.New(countingStore{db, &gets})
	other := party.New(db) // another instance on the same database
	p, secret, err := s.Create(ctx, "CERT-Alpha")
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := other.AddToken(ctx, p.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		pr, err := s.Authenticate(ctx, secret)
		if err != nil || pr.PartyID != p.ID || pr.Name != "CERT-Alpha" {
			t.Fatalf("check %d: %+v, %v", i, pr, err)
		}
	}
	if pr, err := s.Authenticate(ctx, second); err != nil || pr.Name != "CERT-Alpha" {
		t.Fatalf("second token: %+v, %v", pr, err)
	}
	if n := gets.Load(); n != 1 {
		t.Fatalf("six checks read the party %d times, want once", n)
	}
	toks, err := other.Tokens(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if err := other.RevokeToken(ctx, tk.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, sec := range []string{secret, second} {
		if _, err := s.Authenticate(ctx, sec); !errors.Is(err, party.ErrUnauthenticated) {
			t.Fatalf("a token revoked by another instance still authenticates here: %v", err)
		}
	}
}
