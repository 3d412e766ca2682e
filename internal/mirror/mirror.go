// Package mirror keeps an agreement fed from a TAXII 2.1 server a party
// already runs (OpenCTI, a MISP TAXII server, the OASIS reference server):
// `parley mirror add --from URL --collection ID --token T --into AGREEMENT`.
//
// # Who runs it
//
// A mirror belongs to the party that added it, through its own parley
// token, and pulls into that party's own contribution collection under the
// agreement. The server runs the pull loop (Run) with that party's
// authority: every page goes through exchange.Service.Ingest exactly as a
// TAXII POST by the party would (validation, the agreement's scope,
// give-to-get credits, the feed.batch ledger entry), never around it. A
// party can add, list and remove only its own mirrors; nobody, the party
// included, reads a source's token back.
//
// # Pulling
//
// Each pull GETs the source collection's objects endpoint with limit and
// added_after, following more/next. The cursor is stored after every page
// is ingested, so a pull resumes after a restart from the last page
// stored; a page re-fetched because the server stopped between the ingest
// and the cursor's save is stored again as duplicates, which earn nothing
// and add no version. Failures back off exponentially with jitter, up to
// MaxBackoff, and a 429 or 503 with Retry-After waits what the source asks
// (up to MaxBackoff). Runners on several instances share the work through
// leases in the database (store.Mirrors.Claim).
//
// # What it must never do
//
// It never writes objects except through exchange.Service.Ingest, never
// returns or logs a source token, never follows a URL scheme other than
// http and https, and never imports the party-side client (internal/client),
// which the server binary does not link; its own small TAXII reader lives
// in source.go.
package mirror

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/wire"
)

// Sentinel errors.
var (
	// ErrNotFound: no such mirror, or one of another party's. The two
	// are one error on purpose.
	ErrNotFound = fault.Generic(fault.NotFound, "mirror: not found")
	// ErrInvalid: the mirror's definition is unacceptable (URL, limit,
	// missing collection).
	ErrInvalid = fault.Tagged(fault.Invalid, "mirror", "invalid definition")
	// ErrPrivateSource: a pull would connect to an address that is not
	// public, and the operator has not allowed that (Service.AllowPrivate).
	ErrPrivateSource = fault.Tagged(fault.Forbidden, "mirror", "the source is not at a public address")
)

// Limits on a definition.
const (
	DefaultPageLimit = 500
	MaxPageLimit     = 10000
	maxURLBytes      = 2048
	maxFieldBytes    = 512
	maxTokenBytes    = 8192
)

// Redacted stands where a source token would be shown.
const Redacted = "[redacted]"

// Spec is what a party gives to add a mirror.
type Spec = wire.MirrorSpec

// View is a mirror as its party sees it: everything but the token.
type View = wire.Mirror

// Service manages mirrors and runs their pulls.
type Service struct {
	st  store.Store
	ex  *exchange.Service
	now func() time.Time

	// Log receives pull failures (never a token). Default slog.Default().
	Log *slog.Logger
	// HTTP fetches pages; its Timeout bounds one page. Default: 2 minutes,
	// no redirects to another host.
	HTTP *http.Client
	// Interval is how long a caught-up mirror waits before asking its
	// source again (default 1 minute); Tick how often the runner looks for
	// due mirrors (default 1 second).
	Interval, Tick time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failure (defaults
	// 1 second and 10 minutes); a Retry-After is honoured up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Lease is how long a runner holds a mirror between two saves
	// (default 5 minutes); PagesPerClaim how many pages it pulls before it
	// lets other mirrors have a turn (default 20).
	Lease         time.Duration
	PagesPerClaim int
	// MaxPageBytes bounds one page of objects (default 64 MiB).
	MaxPageBytes int64
	// AllowPrivate lets pulls reach loopback, private, link-local and
	// other non-public addresses (parley serve --mirror-allow-private).
	// Off, a party cannot point the server at what only the server can
	// reach (its own metrics listener, a cloud metadata service, the
	// operator's network): the address is checked after DNS resolution, at
	// every connection, so a name that later resolves elsewhere is caught.
	AllowPrivate bool

	wake chan struct{}
}

// New returns a Service over st that writes through ex.
func New(st store.Store, ex *exchange.Service) *Service {
	return &Service{st: st, ex: ex, now: func() time.Time { return time.Now().UTC() }, wake: make(chan struct{}, 1),
		Interval: time.Minute, Tick: time.Second, MinBackoff: time.Second, MaxBackoff: 10 * time.Minute,
		Lease: 5 * time.Minute, PagesPerClaim: 20, MaxPageBytes: 64 << 20}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Add defines a mirror of p's: the source's collection feeds p's own
// contribution collection under spec.Agreement. The agreement must exist,
// p must be a party to it and its collections must exist (both parties
// signed); whether it is in force is checked at every page, as for any
// write. ErrInvalid for a bad definition; exchange.ErrNotFound when the
// agreement is none of p's.
func (s *Service) Add(ctx context.Context, p party.Principal, spec Spec) (View, error) {
	u, err := CheckSourceURL(spec.SourceURL)
	if err != nil {
		return View{}, err
	}
	switch {
	case spec.Agreement == "":
		return View{}, fault.Errorf("%w: name the agreement to feed", ErrInvalid)
	case spec.Collection == "" || len(spec.Collection) > maxFieldBytes || strings.ContainsAny(spec.Collection, "/?#"):
		return View{}, fault.Errorf("%w: the source collection must be a collection id (no '/', '?' or '#')", ErrInvalid)
	case len(spec.User) > maxFieldBytes || strings.Contains(spec.User, ":"):
		return View{}, fault.Errorf("%w: the source user must be at most %d bytes without ':'", ErrInvalid, maxFieldBytes)
	case len(spec.Token) > maxTokenBytes || strings.ContainsAny(spec.Token, "\r\n"):
		return View{}, fault.Errorf("%w: the source token must be one line of at most %d bytes", ErrInvalid, maxTokenBytes)
	case spec.PageLimit < 0 || spec.PageLimit > MaxPageLimit:
		return View{}, fault.Errorf("%w: the page limit must be 1 to %d", ErrInvalid, MaxPageLimit)
	}
	if spec.PageLimit == 0 {
		spec.PageLimit = DefaultPageLimit
	}
	coll, err := s.contribution(ctx, p, spec.Agreement)
	if err != nil {
		return View{}, err
	}
	now := s.now().Truncate(time.Microsecond)
	m := store.Mirror{ID: party.NewID("mirror"), PartyID: p.PartyID, Agreement: spec.Agreement, CreatedAt: now,
		SourceURL: u.String(), SourceCollection: spec.Collection, SourceUser: spec.User, SourceToken: spec.Token,
		PageLimit: spec.PageLimit, NextAttempt: now}
	if err := s.st.Mirrors().Create(ctx, m); err != nil {
		return View{}, err
	}
	s.Wake()
	return view(m, coll), nil
}

// CheckSourceURL parses a source's API root URL: http or https, a host, no
// credentials in it (they go in the token, which is never shown), no query
// or fragment. It returns the URL ending in "/".
func CheckSourceURL(raw string) (*url.URL, error) {
	if len(raw) > maxURLBytes {
		return nil, fault.Errorf("%w: the source URL is longer than %d bytes", ErrInvalid, maxURLBytes)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fault.Errorf("%w: the source URL does not parse", ErrInvalid)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fault.Errorf("%w: the source URL must be http:// or https://", ErrInvalid)
	case u.Host == "":
		return nil, fault.Errorf("%w: the source URL has no host", ErrInvalid)
	case u.User != nil:
		return nil, fault.Errorf("%w: put the source's credentials in the token, not in the URL", ErrInvalid)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fault.Errorf("%w: the source URL is an API root: no query or fragment", ErrInvalid)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

// contribution returns the id of p's own contribution collection under
// agreement; exchange.ErrNotFound when p has none there.
func (s *Service) contribution(ctx context.Context, p party.Principal, agreement string) (string, error) {
	cs, err := s.ex.Collections(ctx, p, agreement)
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if c.Agreement == agreement && c.Contributor == p.PartyID {
			return c.ID, nil
		}
	}
	return "", fault.Errorf("%w: no contribution collection of yours under agreement %s (is it signed by both parties?)", exchange.ErrNotFound, agreement)
}

// List returns p's mirrors with their progress, oldest first.
func (s *Service) List(ctx context.Context, p party.Principal) ([]View, error) {
	ms, err := s.st.Mirrors().ListByParty(ctx, p.PartyID)
	if err != nil {
		return nil, err
	}
	out := make([]View, 0, len(ms))
	for _, m := range ms {
		coll, err := s.contribution(ctx, p, m.Agreement)
		if err != nil && !errors.Is(err, exchange.ErrNotFound) {
			return nil, err
		}
		out = append(out, view(m, coll))
	}
	return out, nil
}

// Get returns one of p's mirrors; ErrNotFound for another party's.
func (s *Service) Get(ctx context.Context, p party.Principal, id string) (View, error) {
	m, err := s.own(ctx, p, id)
	if err != nil {
		return View{}, err
	}
	coll, err := s.contribution(ctx, p, m.Agreement)
	if err != nil && !errors.Is(err, exchange.ErrNotFound) {
		return View{}, err
	}
	return view(m, coll), nil
}

// Remove deletes one of p's mirrors; a pull under way stops at its next
// save. What it already stored stays. ErrNotFound for another party's.
func (s *Service) Remove(ctx context.Context, p party.Principal, id string) error {
	if _, err := s.own(ctx, p, id); err != nil {
		return err
	}
	if err := s.st.Mirrors().Delete(ctx, id); errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	return nil
}

func (s *Service) own(ctx context.Context, p party.Principal, id string) (store.Mirror, error) {
	m, err := s.st.Mirrors().Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.PartyID != p.PartyID) {
		return store.Mirror{}, ErrNotFound
	}
	return m, err
}

func view(m store.Mirror, coll string) View {
	v := View{ID: m.ID, Agreement: m.Agreement, Collection: coll, SourceURL: m.SourceURL, SourceCollection: m.SourceCollection,
		SourceUser: m.SourceUser, PageLimit: m.PageLimit, CreatedAt: m.CreatedAt, AddedAfter: m.AddedAfter, Paging: m.Next != "",
		Accepted: m.Accepted, Refused: m.Refused, LastRefusal: m.LastRefusal, Pages: m.Pages, LastError: m.LastError,
		Failures: m.Failures, NextAttempt: m.NextAttempt}
	if m.SourceToken != "" {
		v.SourceToken = Redacted
	}
	if !m.LastSuccess.IsZero() {
		t := m.LastSuccess
		v.LastSuccess = &t
	}
	if !m.LastErrorAt.IsZero() {
		t := m.LastErrorAt
		v.LastErrorAt = &t
	}
	return v
}
