package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/party"
)

// Session errors.
var (
	// errNoSession: the cookie names no session (never issued, signed out,
	// or forgotten by a restart).
	errNoSession = errors.New("web: no such session")
	// errExpired: the session existed but was idle or alive for too long.
	errExpired = errors.New("web: session expired")
)

// session is one signed-in browser. It holds the principal, never the
// token it signed in with.
type session struct {
	principal party.Principal
	csrf      string // synchronizer token for this session's forms
	created   time.Time
	seen      time.Time
	// seenEvents is the newest event the party saw in this session (on
	// the events page); the notification count is of events after it.
	seenEvents int64
	// ended is set once the session is found expired or its token
	// revoked. The entry stays, so every request still carrying the
	// cookie learns why it was signed out (the live events stream or
	// another tab may be the first to find out), until a sweep drops it.
	ended bool
}

// sessions keeps sessions in memory, keyed by the SHA-256 of their id so a
// memory dump does not hand out live cookies. A restart signs everyone out,
// and with several instances behind a load balancer a session lives on the
// instance that made it (use sticky sessions until they move to the store).
type sessions struct {
	mu   sync.Mutex
	m    map[[32]byte]*session
	idle time.Duration // since the last request
	max  time.Duration // since sign-in, however active
	cap  int           // most sessions held; the least recently seen goes first
}

func newSessions(idle, max time.Duration, capacity int) *sessions {
	return &sessions{m: map[[32]byte]*session{}, idle: idle, max: max, cap: capacity}
}

// randomToken returns 256 random bits, base64url-encoded.
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("web: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *sessions) expired(v *session, now time.Time) bool {
	return v.ended || now.Sub(v.seen) >= s.idle || now.Sub(v.created) >= s.max
}

// create starts a session for p and returns its id (the cookie value).
func (s *sessions) create(p party.Principal, now time.Time) (string, *session) {
	id := randomToken()
	v := &session{principal: p, csrf: randomToken(), created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.cap {
		s.sweepLocked(now)
	}
	if len(s.m) >= s.cap {
		var oldest [32]byte
		var at time.Time
		for k, o := range s.m {
			if at.IsZero() || o.seen.Before(at) {
				oldest, at = k, o.seen
			}
		}
		delete(s.m, oldest)
	}
	s.m[sha256.Sum256([]byte(id))] = v
	return id, v
}

// get returns the live session id names and marks it seen; errExpired
// when it timed out or was ended (for as long as it is held), errNoSession
// when unknown.
func (s *sessions) get(id string, now time.Time) (session, error) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	if !ok {
		return session{}, errNoSession
	}
	if s.expired(v, now) {
		v.ended = true
		return session{}, errExpired
	}
	v.seen = now
	return *v, nil
}

// seen raises the newest event session id has seen to seq.
func (s *sessions) seen(id string, seq int64) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[k]; ok && seq > v.seenEvents {
		v.seenEvents = seq
	}
}

// seenOf returns the newest event session id has seen (0 if unknown).
func (s *sessions) seenOf(id string) int64 {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[k]; ok {
		return v.seenEvents
	}
	return 0
}

// end marks session id ended (its token was revoked): from now on it
// reads as expired, and a sweep may drop it.
func (s *sessions) end(id string) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	if v, ok := s.m[k]; ok {
		v.ended = true
	}
	s.mu.Unlock()
}

// delete forgets session id at once (the party signed out).
func (s *sessions) delete(id string) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

func (s *sessions) sweepLocked(now time.Time) {
	for k, v := range s.m {
		if s.expired(v, now) {
			delete(s.m, k)
		}
	}
}

// len returns the number of sessions held, expired or not.
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// tokensEqual compares secrets in constant time.
func tokensEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
