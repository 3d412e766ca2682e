package mirror

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Run pulls due mirrors until ctx ends. Every instance on a database may
// run it: the leases make each mirror pulled by one runner at a time.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.Tick)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			pulled, err := s.RunOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log().WarnContext(ctx, "mirror: claiming a due mirror", slog.Any("err", err))
				}
				break
			}
			if !pulled {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// Wake has the runner look for due mirrors now rather than at its next tick.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// RunOnce claims the mirror due soonest and pulls it until it is caught up,
// fails, or has had PagesPerClaim pages. It reports whether one was due.
func (s *Service) RunOnce(ctx context.Context) (bool, error) {
	now := s.now()
	m, err := s.st.Mirrors().Claim(ctx, now, now.Add(s.Lease), party.NewID("lease"))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.pull(ctx, m)
	return true, nil
}

// pull runs one claim of m. Every outcome ends in a save of m that sets
// its next attempt and gives up the lease.
func (s *Service) pull(ctx context.Context, m store.Mirror) {
	p := party.Principal{PartyID: m.PartyID}
	coll, err := s.contribution(ctx, p, m.Agreement)
	if err != nil {
		s.fail(ctx, m, s.ingestReason(ctx, m, err), 0)
		return
	}
	hc := s.httpClient()
	restarted := false
	for pages := 1; ; pages++ {
		u, err := objectsURL(m.SourceURL, m.SourceCollection, m.PageLimit, m.AddedAfter, m.Next)
		if err != nil {
			s.fail(ctx, m, "the source URL is not usable", 0)
			return
		}
		pg, err := s.fetch(ctx, hc, u, m.SourceUser, m.SourceToken)
		if ctx.Err() != nil {
			s.release(ctx, m)
			return
		}
		var se *sourceError
		if errors.As(err, &se) && m.Next != "" && !restarted && pagingRefused(se.status) {
			// A source that lost its paging session (restarted, expired
			// it) is asked again from the position the session reached.
			restarted = true
			m.Next = ""
			if m.SessionLast != "" {
				m.AddedAfter, m.SessionLast = m.SessionLast, ""
			}
			continue
		}
		if err != nil {
			var wait time.Duration
			if se != nil {
				wait = se.retryAfter
			}
			s.fail(ctx, m, err.Error(), wait)
			return
		}
		if len(pg.Objects) > 0 {
			res, err := s.ex.Ingest(ctx, p, m.Agreement, coll, pg.Objects)
			if err != nil {
				if ctx.Err() != nil {
					s.release(ctx, m)
					return
				}
				s.fail(ctx, m, s.ingestReason(ctx, m, err), 0)
				return
			}
			m.Accepted += int64(len(res.Status.Successes))
			m.Refused += int64(len(res.Status.Failures))
			if n := len(res.Status.Failures); n > 0 {
				f := res.Status.Failures[n-1]
				why := f.Message
				if f.ID != "" && !strings.Contains(why, f.ID) {
					why = f.ID + ": " + why
				}
				m.LastRefusal = clip(why, 300)
			}
		}
		m.Pages++
		if pg.DateAddedLast != "" {
			m.SessionLast = pg.DateAddedLast
		}
		now := s.now()
		m.LastSuccess, m.Failures = now, 0
		switch {
		case pg.More && pg.Next != "":
			if pg.Next == m.Next && len(pg.Objects) == 0 {
				s.fail(ctx, m, "the source's paging does not advance (the same next token, no objects)", 0)
				return
			}
			m.Next = pg.Next
		case pg.More:
			// No next: page on added_after, which needs the header.
			if m.SessionLast == "" || m.SessionLast == m.AddedAfter {
				s.fail(ctx, m, "the source says there is more but gives neither next nor a new X-TAXII-Date-Added-Last", 0)
				return
			}
			m.Next, m.AddedAfter, m.SessionLast = "", m.SessionLast, ""
		default:
			m.Next = ""
			if m.SessionLast != "" {
				m.AddedAfter, m.SessionLast = m.SessionLast, ""
			}
		}
		switch {
		case !pg.More:
			m.NextAttempt, m.LeaseUntil = now.Add(s.Interval), time.Time{}
		case pages >= s.PagesPerClaim:
			m.NextAttempt, m.LeaseUntil = now, time.Time{}
		default:
			m.LeaseUntil = now.Add(s.Lease)
		}
		if err := s.st.Mirrors().Save(ctx, m); err != nil {
			if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
				// Lost lease or database trouble: the next claim resumes
				// from the last cursor saved.
				s.log().WarnContext(ctx, "mirror: saving progress", slog.String("mirror", m.ID), slog.Any("err", err))
			}
			return
		}
		if m.LeaseUntil.IsZero() {
			if !pg.More {
				return
			}
			s.Wake() // its turn is over; it is due again at once
			return
		}
	}
}

// pagingRefused: statuses with which a source refuses a stale next token.
func pagingRefused(status int) bool {
	return status == 400 || status == 404 || status == 410 || status == 422
}

// ingestReason is what the mirror's status says when parley refused a
// page: the exchange's own refusal for what the party can act on, a fixed
// text (and a log line) for the rest.
func (s *Service) ingestReason(ctx context.Context, m store.Mirror, err error) string {
	switch {
	case errors.Is(err, exchange.ErrNotFound):
		return "the agreement has no contribution collection of this party's (not signed by both, or not the party's)"
	case errors.Is(err, exchange.ErrForbidden):
		return "parley refused the page: the agreement does not accept contributions now (not in force, or it no longer verifies)"
	case errors.Is(err, store.ErrUnavailable):
		return "parley's database is unavailable; the pull will be retried"
	}
	s.log().ErrorContext(ctx, "mirror: storing a page", slog.String("mirror", m.ID), slog.Any("err", err))
	return "storing the page failed; the operator's log has the details"
}

// fail records a failed attempt and schedules the next: exponential
// backoff with jitter from the consecutive failures, or what the source
// asked for in Retry-After, bounded by MaxBackoff either way.
func (s *Service) fail(ctx context.Context, m store.Mirror, reason string, retryAfter time.Duration) {
	now := s.now()
	m.Failures++
	m.LastError, m.LastErrorAt = clip(reason, 500), now
	wait := s.backoff(m.Failures)
	if retryAfter > 0 {
		wait = min(retryAfter, s.MaxBackoff)
	}
	m.NextAttempt, m.LeaseUntil = now.Add(wait), time.Time{}
	s.log().WarnContext(ctx, "mirror: pull failed", slog.String("mirror", m.ID), slog.String("party", m.PartyID),
		slog.String("source", m.SourceURL), slog.String("reason", m.LastError), slog.Int("failures", m.Failures), slog.Duration("retry_in", wait))
	if err := s.st.Mirrors().Save(ctx, m); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log().WarnContext(ctx, "mirror: saving a failure", slog.String("mirror", m.ID), slog.Any("err", err))
	}
}

// release gives the lease up when the server stops mid-pull, so the mirror
// is due at once after a restart rather than when the lease runs out.
func (s *Service) release(ctx context.Context, m store.Mirror) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	m.LeaseUntil = time.Time{}
	if err := s.st.Mirrors().Save(sctx, m); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log().WarnContext(sctx, "mirror: releasing at shutdown", slog.String("mirror", m.ID), slog.Any("err", err))
	}
}

// backoff is the wait after the n-th consecutive failure: MinBackoff
// doubled n-1 times, at most MaxBackoff, then drawn uniformly from its
// upper half so that mirrors failing together do not retry together.
func (s *Service) backoff(n int) time.Duration {
	d := s.MinBackoff
	for i := 1; i < n && d < s.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.MaxBackoff)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
