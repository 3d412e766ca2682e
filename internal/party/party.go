// Package party manages the organisations that use parley and their API
// tokens: creating parties, issuing and revoking tokens, and turning a
// presented token into the party it belongs to.
//
// Tokens carry 256 random bits. Only their SHA-256 is stored, so a copy of
// the database does not let anyone act as a party; a token is shown once, when
// it is issued. This package must never log or store a token in clear.
package party

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/fault"

	"github.com/parley-cti/parley/internal/store"
)

// Sentinel errors.
var (
	// ErrUnauthenticated: the token is unknown, malformed or revoked. The
	// three are deliberately indistinguishable to the caller.
	ErrUnauthenticated = fault.Generic(fault.Unauthenticated, "party: invalid or revoked token")
	// ErrInvalidName: the party name is not acceptable.
	ErrInvalidName = fault.Tagged(fault.Invalid, "party", "invalid name")
	// ErrExists: a party with that name exists already.
	ErrExists = fault.Tagged(fault.Conflict, "party", "a party with that name exists")
	// ErrNotFound: no such party or token.
	ErrNotFound = fault.Generic(fault.NotFound, "party: not found")
	// ErrInvalidExpiry: a token's lifetime is not acceptable.
	ErrInvalidExpiry = fault.Tagged(fault.Invalid, "party", "invalid token expiry")
	// ErrRemoteParty: the party lives on a peer node; it gets no token here.
	ErrRemoteParty = fault.Tagged(fault.Invalid, "party", "a party of a peer node gets no token here")
)

// TokenPrefix starts every parley token, so secret scanners and people can
// recognise one.
const TokenPrefix = "parley_"

// Principal is an authenticated party.
type Principal struct {
	PartyID string
	Name    string
	TokenID string
}

// Service issues and checks tokens.
type Service struct {
	st  store.Store
	now func() time.Time
	// parties holds the parties tokens were checked for, by id: a party
	// never changes once created, so every request's check reads only its
	// token (whose revocation and expiry must be seen at once) and not the
	// party again.
	parties sync.Map
}

// SetClock replaces the service's clock (tests of expiry).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// New returns a Service on st.
func New(st store.Store) *Service {
	return &Service{st: st, now: func() time.Time { return time.Now().UTC() }}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._\-]{0,62}$`)

// ValidName reports whether name is a party name: 1 to 63 letters, digits,
// spaces, '.', '_' or '-', starting with a letter or digit. It holds no
// '@', so a peer node's party, listed here as NAME@PEER, never takes a
// local party's name.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// NewID returns a random UUIDv4 after kind and one "--" separator, e.g.
// NewID("party") is "party--…"; with an empty kind, the bare UUID. A kind
// given with its separator ("match--") still gets exactly one: ids once
// came out as "match----…" that way. Those old ids stay valid; nothing
// parses the separator.
func NewID(kind string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("party: no randomness: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	u := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	kind = strings.TrimRight(kind, "-")
	if kind == "" {
		return u
	}
	return kind + "--" + u
}

// Create makes a party named name and issues its first token. It returns the
// party and the token secret, which is not stored and cannot be shown again.
func (s *Service) Create(ctx context.Context, name string) (store.Party, string, error) {
	name = strings.TrimSpace(name)
	if !nameRE.MatchString(name) {
		return store.Party{}, "", fault.Errorf("%w: %q: use 1-63 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit", ErrInvalidName, name)
	}
	p := store.Party{ID: NewID("party"), Name: name, CreatedAt: s.now()}
	var secret string
	err := s.st.Update(ctx, func(tx store.Handle) error {
		if err := tx.Parties().Create(ctx, p); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fault.Errorf("%w: %q", ErrExists, name)
			}
			return err
		}
		var err error
		secret, _, err = issue(ctx, tx, p.ID, "initial", s.now())
		return err
	})
	if err != nil {
		return store.Party{}, "", err
	}
	return p, secret, nil
}

// List returns every party: the directory parties need to address a
// proposal.
func (s *Service) List(ctx context.Context) ([]store.Party, error) {
	return s.st.Parties().List(ctx)
}

// Lookup finds a party by name or id.
func (s *Service) Lookup(ctx context.Context, nameOrID string) (store.Party, error) {
	var p store.Party
	var err error
	if strings.HasPrefix(nameOrID, "party--") {
		p, err = s.st.Parties().Get(ctx, nameOrID)
	} else {
		p, err = s.st.Parties().ByName(ctx, nameOrID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Party{}, fault.Errorf("%w: party %q", ErrNotFound, nameOrID)
	}
	return p, err
}

// AddToken issues a further token for the party and returns its secret and id.
func (s *Service) AddToken(ctx context.Context, partyID, label string) (secret, id string, err error) {
	return s.AddExpiringToken(ctx, partyID, label, 0)
}

// AddExpiringToken issues a token that stops authenticating once ttl has
// passed (0: never). A negative ttl is ErrInvalidExpiry.
func (s *Service) AddExpiringToken(ctx context.Context, partyID, label string, ttl time.Duration) (secret, id string, err error) {
	if ttl < 0 {
		return "", "", fault.Errorf("%w: %v is in the past", ErrInvalidExpiry, ttl)
	}
	err = s.st.Update(ctx, func(tx store.Handle) error {
		var err error
		secret, id, err = issueUntil(ctx, tx, partyID, label, s.now(), ttl)
		if errors.Is(err, store.ErrNotFound) {
			return fault.Errorf("%w: party %s", ErrNotFound, partyID)
		}
		return err
	})
	return secret, id, err
}

// RevokeToken revokes the token with id; from then on it authenticates nothing.
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	err := s.st.Tokens().Revoke(ctx, id, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return fault.Errorf("%w: token %s", ErrNotFound, id)
	}
	return err
}

// Tokens lists a party's tokens (ids and state, never secrets).
func (s *Service) Tokens(ctx context.Context, partyID string) ([]store.Token, error) {
	return s.st.Tokens().ListByParty(ctx, partyID)
}

func issue(ctx context.Context, tx store.Handle, partyID, label string, now time.Time) (string, string, error) {
	return issueUntil(ctx, tx, partyID, label, now, 0)
}

func issueUntil(ctx context.Context, tx store.Handle, partyID, label string, now time.Time, ttl time.Duration) (string, string, error) {
	// A peer node's party signs in on its own node; a token here would
	// let this node's operator act in its name on this server.
	if _, err := tx.Federation().RemoteParty(ctx, partyID); err == nil {
		return "", "", fault.Errorf("%w: %s is a party of a peer node; it signs in on its own node", ErrRemoteParty, partyID)
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", "", err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", err
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	t := store.Token{ID: NewID("token"), PartyID: partyID, Hash: Hash(secret), Label: label, CreatedAt: now}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	if err := tx.Tokens().Create(ctx, t); err != nil {
		return "", "", err
	}
	return secret, t.ID, nil
}

// Hash is the stored form of a token secret.
func Hash(secret string) [32]byte {
	return sha256.Sum256([]byte(secret))
}

// Authenticate returns the party a token belongs to. Unknown, malformed,
// revoked and expired tokens all give ErrUnauthenticated.
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) != len(TokenPrefix)+43 {
		return Principal{}, ErrUnauthenticated
	}
	t, err := s.st.Tokens().ByHash(ctx, Hash(secret))
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	now := s.now()
	if !t.RevokedAt.IsZero() || !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return Principal{}, ErrUnauthenticated
	}
	// Last use is kept to the minute: one write per token per minute, not
	// one per request. Failing to record it does not fail the request.
	if now.Sub(t.LastUsedAt) >= time.Minute {
		_ = s.st.Tokens().Touch(ctx, t.ID, now.Truncate(time.Minute))
	}
	var p store.Party
	if v, ok := s.parties.Load(t.PartyID); ok {
		p = v.(store.Party)
	} else {
		if p, err = s.st.Parties().Get(ctx, t.PartyID); err != nil {
			return Principal{}, err
		}
		s.parties.Store(p.ID, p)
	}
	pr := Principal{PartyID: p.ID, Name: p.Name, TokenID: t.ID}
	note(ctx, pr)
	return pr, nil
}

// CheckLive returns ErrUnauthenticated when the token p authenticated with
// has been revoked, has expired (or no longer exists) since. Long-lived
// streams and dashboard sessions call it while they last, so that a
// revocation made on any instance ends them too.
func (s *Service) CheckLive(ctx context.Context, p Principal) error {
	ts, err := s.st.Tokens().ListByParty(ctx, p.PartyID)
	if err != nil {
		return err
	}
	now := s.now()
	for _, t := range ts {
		if t.ID == p.TokenID && t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt)) {
			return nil
		}
	}
	return ErrUnauthenticated
}

// TokenFromAuthorization extracts the token from an Authorization header:
// "Bearer TOKEN" (the scheme name in any case, RFC 9110 section 11.1),
// "Token TOKEN", which the OASIS Python TAXII client's TokenAuth sends, or
// HTTP Basic with any user name and the token as password, which existing
// TAXII clients send. It returns "" when the header carries none of them.
func TokenFromAuthorization(h string) string {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return ""
	}
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"), strings.EqualFold(scheme, "Token"):
		return rest
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return ""
		}
		_, pw, ok := strings.Cut(string(raw), ":")
		if !ok {
			return ""
		}
		return pw
	}
	return ""
}

// noteKey is the context key of a WithNote slot.
type noteKey struct{}

// Note is where Authenticate records whom a request authenticated as, for
// the server's access log. It holds the party, never the token.
type Note struct {
	p  Principal
	ok bool
}

// Principal returns the party the request authenticated as, if any.
func (n *Note) Principal() (Principal, bool) { return n.p, n.ok }

// WithNote returns a context carrying an empty Note that Authenticate fills.
func WithNote(ctx context.Context) (context.Context, *Note) {
	n := &Note{}
	return context.WithValue(ctx, noteKey{}, n), n
}

func note(ctx context.Context, p Principal) {
	if n, ok := ctx.Value(noteKey{}).(*Note); ok {
		n.p, n.ok = p, true
	}
}
