package stix

import "time"

// TimelessVersion is the version of objects that carry neither modified nor
// created (most cyber-observables): the Unix epoch.
var TimelessVersion = time.Unix(0, 0).UTC()

// Version is the version under which o is stored: its modified, else its
// created, else TimelessVersion — an object with neither (most SCOs) has
// one version, since its id is derived from its contents and a re-post is
// the same object. It is in UTC at the microsecond precision stores keep.
func (o *Object) Version() time.Time {
	v := o.Modified
	if v.IsZero() {
		v = o.Created
	}
	if v.IsZero() {
		v = TimelessVersion
	}
	return v.UTC().Truncate(time.Microsecond)
}

// FormatTime renders a timestamp the way TAXII and STIX expect: UTC, RFC 3339
// with at least millisecond precision.
func FormatTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()%int(time.Millisecond) == 0 {
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	return t.Format("2006-01-02T15:04:05.000000Z")
}
