package server

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/authlimit"
	"github.com/parley-cti/parley/internal/taxii"
	"github.com/parley-cti/parley/internal/wire"
)

// limitAuthFailures answers 429 with Retry-After to a source that has
// failed authentication too often (authlimit), on every surface: a TAXII
// error resource under /taxii2/, a page under /ui/, JSON elsewhere. Only
// requests presenting a credential (an Authorization header, or a
// dashboard sign-in) are limited and counted; a 401 answer to one is a
// failure.
func (s *Server) limitAuthFailures(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" && (r.Method != http.MethodPost || r.URL.Path != "/ui/signin") {
			h.ServeHTTP(w, r)
			return
		}
		src := authlimit.Source(r.RemoteAddr)
		if wait := s.AuthLimit.Blocked(src); wait > 0 {
			tooManyFailures(w, r, wait)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusUnauthorized {
			s.AuthLimit.Fail(src)
		}
	})
}

var tooManyPage = template.Must(template.New("429").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many failed sign-ins — parley</title></head>
<body><main><h1>Too many failed sign-ins</h1>
<p>{{.}}</p><p><a href="/ui/signin">Back to sign-in</a></p></main></body></html>
`))

func tooManyFailures(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := int((wait + time.Second - 1) / time.Second)
	msg := fmt.Sprintf("Too many failed authentication attempts from your address; try again in %d s.", secs)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch {
	case strings.HasPrefix(r.URL.Path, taxii.Prefix):
		b, _ := json.Marshal(map[string]string{"title": "Too Many Requests", "description": msg, "error_code": "rate-limited", "http_status": "429"})
		w.Header().Set("Content-Type", wire.MediaTAXII)
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write(b)
	case strings.HasPrefix(r.URL.Path, "/ui/"):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		tooManyPage.Execute(w, msg)
	default:
		b, _ := json.Marshal(map[string]string{"error": "rate_limited", "message": msg})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write(b)
	}
}
