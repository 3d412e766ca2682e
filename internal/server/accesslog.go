package server

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/health"
	"github.com/parley-cti/parley/internal/party"
)

// accessLog logs one line per request, once it is answered: method, the
// route pattern that served it (never the path, whose ids and query may say
// more than an operator's log should), status, the party it authenticated
// as, bytes sent and duration. Failed authentications (401) and refused
// pushes (4xx on POST) are logged like everything else, at level WARN for
// 4xx and ERROR for 5xx, so an operator sees them at the default level.
// Headers are never logged: tokens travel in Authorization.
//
// The health monitor hears of every outcome too: it logs each 5xx with the
// cause its surface noted (rate-limited) and keeps readiness.
func accessLog(log *slog.Logger, mon *health.Monitor, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, note := party.WithNote(r.Context())
		ctx, cause := health.WithCause(ctx)
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			mon.Done(ctx, r.Method, routeOf(r.Pattern), status, cause.Err())
			level := slog.LevelInfo
			switch {
			case status >= 500:
				level = slog.LevelError
			case status >= 400:
				level = slog.LevelWarn
			}
			if !log.Enabled(ctx, level) {
				return
			}
			who := "-"
			if p, ok := note.Principal(); ok {
				who = p.Name
			}
			log.LogAttrs(ctx, level, "request",
				slog.String("method", r.Method),
				slog.String("route", routeOf(r.Pattern)),
				slog.Int("status", status),
				slog.String("party", who),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)))
		}()
		h.ServeHTTP(rec, r)
	})
}

// routeOf turns a ServeMux pattern ("GET /ui/agreements/{id}") into its
// path part without the exact-match marker {$}; a request no pattern
// matched is "unmatched".
func routeOf(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = strings.TrimLeft(pattern[i+1:], " \t")
	}
	return strings.TrimSuffix(pattern, "{$}")
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushes of
// streamed responses, deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush passes flushes through for streaming handlers (server-sent events).
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
