package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestMonitor() (*Monitor, *bytes.Buffer, *clock) {
	var buf bytes.Buffer
	c := &clock{time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	m := NewMonitor(slog.New(slog.NewTextHandler(&buf, nil)))
	m.now = c.now
	return m, &buf, c
}

// TestFailuresLoggedWithCauseRateLimited: each kind of 5xx is logged with
// its cause at most once per second; the lines held back are counted in
// the next one.
func TestFailuresLoggedWithCauseRateLimited(t *testing.T) {
	m, buf, c := newTestMonitor()
	ctx := context.Background()
	full := fmt.Errorf("%w: sqlite: database or disk is full", store.ErrDiskFull)
	for range 570 {
		m.Done(ctx, "POST", "/taxii2/{root}/collections/{id}/objects/", 503, full)
		c.t = c.t.Add(time.Millisecond)
	}
	m.Done(ctx, "GET", "/api/v1/me", 500, errors.New("boom"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "database or disk is full") || !strings.Contains(lines[1], "boom") {
		t.Fatalf("log after 570 disk-full failures in 0.57 s and one other 500:\n%s", buf.String())
	}
	c.t = c.t.Add(time.Second)
	m.Done(ctx, "POST", "/taxii2/{root}/collections/{id}/objects/", 503, full)
	if !strings.Contains(buf.String(), "suppressed=569") {
		t.Fatalf("the next line does not count the 569 held back:\n%s", buf.String())
	}
	// No cause noted is said, not hidden.
	m.Done(ctx, "GET", "/x", 502, nil)
	if !strings.Contains(buf.String(), "no cause noted") {
		t.Fatalf("a 5xx without a cause:\n%s", buf.String())
	}
}

// TestReadinessFollowsWrites: a failed write makes the server unready
// until a write succeeds (or Hold passes); a failed read does not; a
// damaged database makes it unready for good.
func TestReadinessFollowsWrites(t *testing.T) {
	m, _, c := newTestMonitor()
	ctx := context.Background()
	full := fmt.Errorf("%w: disk", store.ErrDiskFull)
	m.Done(ctx, "GET", "/r", 503, full)
	if err := m.Ready(); err != nil {
		t.Fatalf("unready after a failed read: %v", err)
	}
	m.Done(ctx, "POST", "/w", 503, full)
	if err := m.Ready(); !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, store.ErrDiskFull) || !strings.Contains(err.Error(), "disk") {
		t.Fatalf("after a failed write: %v", err)
	}
	m.Done(ctx, "GET", "/r", 200, nil)
	if m.Ready() == nil {
		t.Fatal("a successful read made a server whose writes fail ready")
	}
	m.Done(ctx, "POST", "/w", 202, nil)
	if err := m.Ready(); err != nil {
		t.Fatalf("after a successful write: %v", err)
	}
	m.Done(ctx, "POST", "/w", 503, full)
	c.t = c.t.Add(31 * time.Second)
	if err := m.Ready(); err != nil {
		t.Fatalf("still unready %s after the last failed write: %v", 31*time.Second, err)
	}
	m.Done(ctx, "GET", "/r", 500, fmt.Errorf("%w: page 7", store.ErrCorrupt))
	m.Done(ctx, "POST", "/w", 202, nil)
	c.t = c.t.Add(time.Hour)
	if err := m.Ready(); !errors.Is(err, store.ErrCorrupt) || m.Damaged() == nil {
		t.Fatalf("an hour after corruption was seen: %v", err)
	}
}

// TestRefused: each failure status gets the headers that go with it, the
// monitor hears of the server's own failures, and only a 500 is logged.
func TestRefused(t *testing.T) {
	for _, c := range []struct {
		status             int
		auth, retry, noted bool
		logged             bool
	}{
		{http.StatusUnauthorized, true, false, false, false},
		{http.StatusNotFound, false, false, false, false},
		{http.StatusServiceUnavailable, false, true, true, false},
		{http.StatusInternalServerError, false, false, true, true},
	} {
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		ctx, cause := WithCause(context.Background())
		r := httptest.NewRequest("GET", "/x", nil).WithContext(ctx)
		w := httptest.NewRecorder()
		Refused(w, r, log, c.status, errors.New("disk on fire"))
		if got := w.Header().Get("WWW-Authenticate") != ""; got != c.auth {
			t.Errorf("%d: WWW-Authenticate set %v, want %v", c.status, got, c.auth)
		}
		if got := w.Header().Get("Retry-After") != ""; got != c.retry {
			t.Errorf("%d: Retry-After set %v, want %v", c.status, got, c.retry)
		}
		if got := cause.Err() != nil; got != c.noted {
			t.Errorf("%d: cause noted %v, want %v", c.status, got, c.noted)
		}
		if got := strings.Contains(logs.String(), "disk on fire"); got != c.logged {
			t.Errorf("%d: logged %v, want %v: %q", c.status, got, c.logged, logs.String())
		}
	}
}

// TestClientGone: only the request's own cancellation is its client gone;
// a deadline (the server's), a cancellation of something else while the
// request lives, or any other error is not.
func TestClientGone(t *testing.T) {
	live := httptest.NewRequest(http.MethodGet, "/", nil)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	dropped := live.WithContext(cctx)
	dctx, stop := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer stop()
	late := live.WithContext(dctx)
	cases := []struct {
		name string
		r    *http.Request
		err  error
		want bool
	}{
		{"dropped, canceled", dropped, fmt.Errorf("ingest: %w", context.Canceled), true},
		{"dropped, another error", dropped, store.ErrUnavailable, false},
		{"live, canceled (not its own)", live, context.Canceled, false},
		{"past its deadline", late, context.DeadlineExceeded, false},
		{"past its deadline, canceled", late, context.Canceled, false},
		{"live, no error", live, nil, false},
	}
	for _, tc := range cases {
		if got := ClientGone(tc.r, tc.err); got != tc.want {
			t.Errorf("%s: ClientGone = %v, want %v", tc.name, got, tc.want)
		}
	}
}
