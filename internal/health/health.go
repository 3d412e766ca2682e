// Package health watches what the server's failed requests say about its
// database and tells the operator: it logs every 5xx with its cause
// (rate-limited, so that a database that fails every request does not also
// fill the disk with the same line), takes the server out of readiness
// while writes fail, and stops writes for good once the database has been
// seen damaged.
//
// The HTTP surfaces record the cause of a 5xx with Note in their one
// error-mapping function; the server's outermost handler creates the note
// (WithCause) and reports the outcome to a Monitor. The package decides no
// status code and never touches the database itself.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

type causeKey struct{}

// Cause is the slot a request's error mapper fills.
type Cause struct {
	mu  sync.Mutex
	err error
}

// Err returns the noted cause, or nil.
func (c *Cause) Err() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// WithCause returns a context carrying an empty cause slot.
func WithCause(ctx context.Context) (context.Context, *Cause) {
	c := &Cause{}
	return context.WithValue(ctx, causeKey{}, c), c
}

// Note records err as the cause of the request's failure. Without a slot
// in ctx (a surface used on its own, in tests) it does nothing.
func Note(ctx context.Context, err error) {
	if c, ok := ctx.Value(causeKey{}).(*Cause); ok {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
	}
}

// StatusClientGone is the status recorded (nginx's 499, "client closed
// request") for a request whose client went away before its answer:
// nothing can reach the client, so nothing is sent, and the server did not
// fail, so it is neither logged as a failure nor held against readiness. A
// counterpart that drops its requests at will must not fill the operator's
// error log ("internal error … context canceled" and a 500 before).
const StatusClientGone = 499

// ClientGone reports whether err is the request's own cancellation: its
// client closed the connection (or the server is shutting down) while it
// was handled. A deadline the server set is not the client's doing.
func ClientGone(r *http.Request, err error) bool {
	return errors.Is(err, context.Canceled) && errors.Is(r.Context().Err(), context.Canceled)
}

// Refused prepares the answer to a request that failed with status, for
// every surface alike: the headers that go with the status
// (WWW-Authenticate with 401, Retry-After with 503), the cause noted for
// the monitor when the server is at fault (5xx), and a 500's detail logged
// on log (never sent: the surface writes its own fixed words).
func Refused(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, err error) {
	switch {
	case status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley", Basic realm="parley"`)
	case status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	}
	if status >= 500 {
		Note(r.Context(), err)
	}
	if status == http.StatusInternalServerError && log != nil {
		log.ErrorContext(r.Context(), "internal error", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	}
}

// Monitor turns request outcomes into log lines and readiness.
type Monitor struct {
	Log *slog.Logger
	// Every is how often one kind of failure is logged at most (default
	// 1 s); the lines between are counted and the count logged with the
	// next one.
	Every time.Duration
	// Hold is how long a failed write keeps the server unready when no
	// write succeeds after it (default 30 s).
	Hold time.Duration
	now  func() time.Time

	mu         sync.Mutex
	last       map[string]time.Time // failure kind → when last logged
	suppressed map[string]int
	writeFail  time.Time // the last failed write, zero once a write succeeds
	writeCause error     // why the last write failed, with its sentinels
	damaged    error     // the first corruption seen; never cleared
}

// NewMonitor returns a monitor logging to log.
func NewMonitor(log *slog.Logger) *Monitor {
	return &Monitor{Log: log, now: time.Now}
}

func (m *Monitor) clock() time.Time {
	if m.now == nil {
		return time.Now()
	}
	return m.now()
}

// IsWrite reports whether a request with this method changes state.
func IsWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// kind names a failure for rate limiting: status and the sentinel behind it.
func kind(status int, cause error) string {
	switch {
	case errors.Is(cause, store.ErrCorrupt):
		return fmt.Sprint(status, " corrupt")
	case errors.Is(cause, store.ErrDiskFull):
		return fmt.Sprint(status, " disk full")
	case errors.Is(cause, store.ErrUnavailable):
		return fmt.Sprint(status, " unavailable")
	}
	return fmt.Sprint(status)
}

// Done reports a finished request: its method, route and status, and the
// cause its surface noted. A 5xx is logged (rate-limited per kind) with the
// cause; a failed write makes the server unready until a write succeeds or
// Hold passes; a corrupt database makes it unready for good.
func (m *Monitor) Done(ctx context.Context, method, route string, status int, cause error) {
	now := m.clock()
	write := IsWrite(method)
	m.mu.Lock()
	if status < 500 {
		if write && status < 400 {
			m.writeFail = time.Time{}
		}
		m.mu.Unlock()
		return
	}
	if errors.Is(cause, store.ErrCorrupt) && m.damaged == nil {
		m.damaged = cause
	}
	if write && (errors.Is(cause, store.ErrUnavailable) || errors.Is(cause, store.ErrCorrupt)) {
		m.writeFail, m.writeCause = now, cause
	}
	k := kind(status, cause)
	every := m.Every
	if every <= 0 {
		every = time.Second
	}
	if m.last == nil {
		m.last, m.suppressed = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := m.last[k]; ok && now.Sub(t) < every {
		m.suppressed[k]++
		m.mu.Unlock()
		return
	}
	m.last[k] = now
	n := m.suppressed[k]
	m.suppressed[k] = 0
	m.mu.Unlock()
	if m.Log != nil {
		m.Log.LogAttrs(ctx, slog.LevelError, "request failed",
			slog.String("method", method), slog.String("route", route), slog.Int("status", status),
			slog.String("cause", causeText(cause)), slog.Int("suppressed", n))
	}
}

func causeText(err error) string {
	if err == nil {
		return "unknown (no cause noted)"
	}
	return err.Error()
}

// Ready returns nil when the server should get traffic: the database is
// not known damaged and no write has failed within Hold without a write
// succeeding since.
func (m *Monitor) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.damaged != nil {
		return fmt.Errorf("%w: the database is damaged (%s); restore it from a backup", store.ErrCorrupt, m.damaged)
	}
	hold := m.Hold
	if hold <= 0 {
		hold = 30 * time.Second
	}
	if !m.writeFail.IsZero() && m.clock().Sub(m.writeFail) < hold {
		// The cause's sentinels stay in the chain, so the probe's answer
		// can say which condition (the disk is full) without its text.
		return fmt.Errorf("%w: writes are failing: %w", store.ErrUnavailable, m.writeCause)
	}
	return nil
}

// Damaged returns the corruption seen, or nil.
func (m *Monitor) Damaged() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.damaged
}
