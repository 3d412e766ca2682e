package mirror

import (
	"strings"
	"testing"
	"time"
)

// A source's Retry-After never makes a negative wait.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-5", "Thu, 03 Dec 2026 12:01:00 GMT", "99999999999999999999", "1e3"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, h string) {
		if d := retryAfter(h, now); d < 0 {
			t.Fatalf("retryAfter(%q) = %v", h, d)
		}
	})
}

// Whatever a party sends as a source URL, what is accepted is http(s),
// has a host, carries no credentials, query or fragment, and ends in "/".
func FuzzCheckSourceURL(f *testing.F) {
	for _, s := range []string{"https://x/root", "http://127.0.0.1:1/a/", "file:///etc/passwd", "https://u:p@x/", "https://x/?q", "//x/y", "http://[::1]:80/r%2Fs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := CheckSourceURL(raw)
		if err != nil {
			return
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
			!strings.HasSuffix(u.Path, "/") {
			t.Fatalf("CheckSourceURL(%q) accepted %q", raw, u)
		}
	})
}
