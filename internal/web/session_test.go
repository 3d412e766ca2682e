package web

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/party"
)

func TestSessions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSessions(time.Hour, 12*time.Hour, 3)
	id, v := s.create(party.Principal{PartyID: "party--a"}, t0)
	if len(id) != 43 || len(v.csrf) != 43 || id == v.csrf {
		t.Fatalf("id %q csrf %q: want two distinct 256-bit tokens", id, v.csrf)
	}
	// Only the hash is the key: the id itself is nowhere in the map.
	if _, ok := s.m[sha256.Sum256([]byte(id))]; !ok {
		t.Fatal("session not stored under the hash of its id")
	}
	cases := []struct {
		at   time.Duration
		want error
	}{
		{59 * time.Minute, nil},
		{118 * time.Minute, nil}, // 59 min after the last request
		{177 * time.Minute, nil},
		{237 * time.Minute, errExpired}, // 60 min idle
		// Held until a sweep, it keeps saying expired, even to a
		// request whose clock reads earlier.
		{238 * time.Minute, errExpired},
		{200 * time.Minute, errExpired},
	}
	for _, tc := range cases {
		if _, err := s.get(id, t0.Add(tc.at)); !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Fatalf("at +%s: %v, want %v", tc.at, err, tc.want)
		}
	}
	if _, err := s.get("not-a-session", t0); !errors.Is(err, errNoSession) {
		t.Fatalf("unknown id: %v", err)
	}
	// A session ended (its token revoked) reads as expired; one signed
	// out is gone.
	ended, _ := s.create(party.Principal{PartyID: "party--b"}, t0)
	s.end(ended)
	if _, err := s.get(ended, t0.Add(time.Minute)); !errors.Is(err, errExpired) {
		t.Fatalf("ended session: %v", err)
	}
	out, _ := s.create(party.Principal{PartyID: "party--c"}, t0)
	s.delete(out)
	if _, err := s.get(out, t0.Add(time.Minute)); !errors.Is(err, errNoSession) {
		t.Fatalf("signed-out session: %v", err)
	}
}

func TestSessionCapacity(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSessions(time.Hour, 12*time.Hour, 2)
	first, _ := s.create(party.Principal{PartyID: "a"}, t0)
	second, _ := s.create(party.Principal{PartyID: "b"}, t0.Add(time.Minute))
	if _, err := s.get(first, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Full: the least recently seen (second) makes room.
	s.create(party.Principal{PartyID: "c"}, t0.Add(3*time.Minute))
	if s.len() != 2 {
		t.Fatalf("%d sessions held, cap 2", s.len())
	}
	if _, err := s.get(second, t0.Add(4*time.Minute)); !errors.Is(err, errNoSession) {
		t.Fatalf("evicted session: %v", err)
	}
	if _, err := s.get(first, t0.Add(4*time.Minute)); err != nil {
		t.Fatalf("recently used session evicted: %v", err)
	}
	// Expired sessions are swept before anyone live is evicted.
	s.create(party.Principal{PartyID: "d"}, t0.Add(2*time.Hour))
	if s.len() != 1 {
		t.Fatalf("%d sessions after sweeping expired ones, want 1", s.len())
	}
}

func TestTokensEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"abc", "abc", true}, {"abc", "abd", false}, {"abc", "ab", false}, {"", "", false}, {"", "x", false}} {
		if got := tokensEqual(tc.a, tc.b); got != tc.want {
			t.Errorf("tokensEqual(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
