// Package authlimit bounds failed authentication per source address, so
// that tokens and dashboard sign-ins cannot be guessed at network speed
// (700 failed attempts in 2.6 s were possible before it).
//
// A source may fail Max times within Window, counted from its first
// failure; after that every attempt from it that presents a credential is
// refused until the window ends, whether the credential is right or not —
// otherwise the refusal would tell a right guess from a wrong one.
// Successful authentication counts nothing. IPv6 sources are counted by
// their /64, which one host usually holds whole.
//
// The counts live in the memory of one instance: behind a load balancer
// each instance limits on its own. The package decides nothing about
// parties; it must never hold tokens or credentials.
package authlimit

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Defaults: 20 failures per source per minute.
const (
	DefaultMax    = 20
	DefaultWindow = time.Minute
	// maxSources bounds memory: past it, expired sources are swept and,
	// if still full, the oldest window is dropped.
	maxSources = 100_000
)

// Limiter counts failed authentication per source.
type Limiter struct {
	mu      sync.Mutex
	max     int
	window  time.Duration
	now     func() time.Time
	sources map[string]*window
}

type window struct {
	start    time.Time
	failures int
}

// New returns a limiter allowing max failures per window per source.
func New(max int, win time.Duration) *Limiter {
	if max <= 0 {
		max = DefaultMax
	}
	if win <= 0 {
		win = DefaultWindow
	}
	return &Limiter{max: max, window: win, now: time.Now, sources: map[string]*window{}}
}

// SetMax changes how many failures a source may make per window (tests
// that send many bad credentials on purpose).
func (l *Limiter) SetMax(max int) {
	l.mu.Lock()
	l.max = max
	l.mu.Unlock()
}

// SetClock replaces the clock (tests).
func (l *Limiter) SetClock(now func() time.Time) {
	l.mu.Lock()
	l.now = now
	l.mu.Unlock()
}

// Source is the key a remote address ("host:port", as in
// http.Request.RemoteAddr) is counted under: the IPv4 address, or the /64
// of an IPv6 one.
func Source(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Blocked returns how long source must wait before presenting a credential
// again, or 0 when it may now.
func (l *Limiter) Blocked(source string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.sources[source]
	if w == nil {
		return 0
	}
	now := l.now()
	left := w.start.Add(l.window).Sub(now)
	if left <= 0 {
		delete(l.sources, source)
		return 0
	}
	if w.failures < l.max {
		return 0
	}
	return left
}

// Fail records one failed authentication by source.
func (l *Limiter) Fail(source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w := l.sources[source]
	if w != nil && !now.Before(w.start.Add(l.window)) {
		w = nil
	}
	if w == nil {
		if len(l.sources) >= maxSources {
			l.sweepLocked(now)
		}
		w = &window{start: now}
		l.sources[source] = w
	}
	w.failures++
}

func (l *Limiter) sweepLocked(now time.Time) {
	var oldest string
	var at time.Time
	for k, w := range l.sources {
		if !now.Before(w.start.Add(l.window)) {
			delete(l.sources, k)
			continue
		}
		if at.IsZero() || w.start.Before(at) {
			oldest, at = k, w.start
		}
	}
	if len(l.sources) >= maxSources {
		delete(l.sources, oldest)
	}
}
