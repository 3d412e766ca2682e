package server

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Defaults for boundResponses.
const (
	defaultWriteWithin  = 2 * time.Minute
	defaultLargeAtOnce  = 4
	waitForLargeSlot    = 30 * time.Second
	largeRetryAfterSecs = "5"
)

// boundResponses keeps clients that do not read from pinning the server's
// memory (issue 15: 100 connections asking for 10,000-object pages and
// never reading held 878 MiB). Every response must be written within
// writeWithin, after which the connection is cut and what the response
// held is freed; and at most largeAtOnce large responses (TAXII object,
// manifest and version listings, deposit fetches), each of which holds its
// page in memory while it is written, run at once: the others wait for a
// slot, and after 30 s get 503 with Retry-After. The deadline applies to
// reads (GET); the event stream, which is meant to stay open, has none.
func boundResponses(h http.Handler, writeWithin time.Duration, largeAtOnce int) http.Handler {
	if writeWithin <= 0 {
		writeWithin = defaultWriteWithin
	}
	if largeAtOnce <= 0 {
		largeAtOnce = defaultLargeAtOnce
	}
	slots := make(chan struct{}, largeAtOnce)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if large(r) {
			ctx, cancel := context.WithTimeout(r.Context(), waitForLargeSlot)
			select {
			case slots <- struct{}{}:
				cancel()
				defer func() { <-slots }()
			case <-ctx.Done():
				cancel()
				w.Header().Set("Retry-After", largeRetryAfterSecs)
				http.Error(w, "too many large responses are being sent; retry shortly", http.StatusServiceUnavailable)
				return
			}
		}
		// Set once the slot is held, so waiting for it does not count.
		// Reads only: a write's response is small, and its deadline would
		// also count the time spent receiving a large body.
		if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/v1/events") {
			// Errors mean the writer cannot take a deadline (a test
			// recorder); there is nothing to bound then.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeWithin))
		}
		h.ServeHTTP(w, r)
	})
}

// large reports the requests whose responses hold a page of objects or a
// deposit in memory while they are written.
func large(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/taxii2/"):
		return strings.Contains(p, "/objects/") || strings.Contains(p, "/manifest/")
	case strings.HasPrefix(p, "/api/v1/handovers/"):
		return strings.HasSuffix(p, "/deposit")
	}
	return false
}
