package authlimit

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	l := New(3, time.Minute)
	l.SetClock(func() time.Time { return now })
	a, b := Source("192.0.2.1:5555"), Source("192.0.2.2:5555")
	for i := range 3 {
		if d := l.Blocked(a); d != 0 {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail(a)
	}
	now = now.Add(10 * time.Second)
	if d := l.Blocked(a); d != 50*time.Second {
		t.Fatalf("after 3 failures: wait %v, want the 50 s left of the window", d)
	}
	if d := l.Blocked(b); d != 0 {
		t.Fatalf("another source is blocked for %v", d)
	}
	now = now.Add(50 * time.Second)
	if d := l.Blocked(a); d != 0 {
		t.Fatalf("still blocked after the window: %v", d)
	}
	l.Fail(a)
	if d := l.Blocked(a); d != 0 {
		t.Fatalf("a new window counts from zero, but blocked %v", d)
	}
}

func TestSource(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:80":               "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.9]:1":       "192.0.2.9",
		"not an address":             "not an address",
	} {
		if got := Source(in); got != want {
			t.Errorf("Source(%q) = %q, want %q", in, got, want)
		}
	}
}
