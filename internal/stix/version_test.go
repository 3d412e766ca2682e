package stix

import (
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	modified := time.Date(2026, 2, 1, 0, 0, 0, 123456789, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		name string
		o    Object
		want time.Time
	}{
		{"modified wins", Object{Created: created, Modified: modified}, time.Date(2026, 1, 31, 23, 0, 0, 123456000, time.UTC)},
		{"created without modified", Object{Created: created}, created},
		{"neither", Object{}, time.Unix(0, 0).UTC()},
	} {
		if got := tc.o.Version(); !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("%s: Version = %v, want %v in UTC", tc.name, got, tc.want)
		}
	}
}

func TestFormatTime(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05.000Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC), "2026-01-02T03:04:05.120Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), "2026-01-02T03:04:05.123456Z"},
		{time.Date(2026, 1, 2, 4, 4, 5, 0, time.FixedZone("x", 3600)), "2026-01-02T03:04:05.000Z"},
		{TimelessVersion, "1970-01-01T00:00:00.000Z"},
	} {
		if got := FormatTime(tc.t); got != tc.want {
			t.Errorf("FormatTime(%v) = %s, want %s", tc.t, got, tc.want)
		}
	}
}
