package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/health"
	"github.com/parley-cti/parley/internal/party"
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
// slot, and after 30 s get 503 with Retry-After. One caller holds at most
// half of the slots (largeSlots), so it cannot stall everyone else's reads
// with its own. The deadline applies to reads (GET); the event stream,
// which is meant to stay open, has none.
func boundResponses(h http.Handler, writeWithin time.Duration, largeAtOnce int) http.Handler {
	if writeWithin <= 0 {
		writeWithin = defaultWriteWithin
	}
	if largeAtOnce <= 0 {
		largeAtOnce = defaultLargeAtOnce
	}
	slots := newLargeSlots(largeAtOnce)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if large(r) {
			ctx, cancel := context.WithTimeout(r.Context(), waitForLargeSlot)
			release, err := slots.acquire(ctx, party.TokenFromAuthorization(r.Header.Get("Authorization")))
			cancel()
			if err != nil {
				if health.ClientGone(r, err) {
					w.WriteHeader(health.StatusClientGone)
					return
				}
				w.Header().Set("Retry-After", largeRetryAfterSecs)
				http.Error(w, "too many large responses are being sent; retry shortly", http.StatusServiceUnavailable)
				return
			}
			defer release()
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

// largeSlots hands out the large-response slots, at most perCaller of them
// to one caller at a time. Without that share, a counterpart with a valid
// token could take every slot with requests it never reads and make every
// other party's reads wait for them, then fail with 503, for as long as the
// write deadline lets it hold them (two minutes by default, again at once).
// A caller is known by the token it presents, before it is checked: a
// party's token is its own, a forged one fails at once, and nothing yet
// costs a database read. Requests beyond a caller's share wait for one of
// its own slots, so they queue behind that caller's reads, not everyone's.
type largeSlots struct {
	all       chan struct{}
	perCaller int

	mu      sync.Mutex
	callers map[string]*callerSlots
}

type callerSlots struct {
	slots chan struct{} // perCaller
	refs  int           // requests holding or waiting for one
}

func newLargeSlots(n int) *largeSlots {
	return &largeSlots{all: make(chan struct{}, n), perCaller: max(1, n/2), callers: map[string]*callerSlots{}}
}

// acquire waits, until ctx ends, for one of caller's slots and then one of
// all; it returns the function that gives both back.
func (l *largeSlots) acquire(ctx context.Context, caller string) (release func(), err error) {
	l.mu.Lock()
	c := l.callers[caller]
	if c == nil {
		c = &callerSlots{slots: make(chan struct{}, l.perCaller)}
		l.callers[caller] = c
	}
	c.refs++
	l.mu.Unlock()
	leave := func() {
		l.mu.Lock()
		if c.refs--; c.refs == 0 {
			delete(l.callers, caller)
		}
		l.mu.Unlock()
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
	select {
	case l.all <- struct{}{}:
	case <-ctx.Done():
		<-c.slots
		leave()
		return nil, ctx.Err()
	}
	return func() {
		<-l.all
		<-c.slots
		leave()
	}, nil
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
