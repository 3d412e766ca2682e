package e2e

import (
	"regexp"
	"testing"
)

// oneSeparator is a parley id: a kind, one "--", a UUID.
var oneSeparator = regexp.MustCompile(`^[a-z]+--[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestNewIDsHaveOneSeparator (issue 12, finding 13): a matching session and
// its handover were named "match----…" and "handover----…". New ids have
// one separator; ids made before stay valid, since nothing parses them.
func TestNewIDsHaveOneSeparator(t *testing.T) {
	w := newMatchWorld(t, 100)
	m, err := w.a.C.StartMatch(ctx, w.agreement)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{m.ID, m.Handover} {
		if !oneSeparator.MatchString(id) {
			t.Errorf("id %q does not have the form kind--uuid", id)
		}
	}
	if got, err := w.b.C.Match(ctx, m.ID); err != nil || got.ID != m.ID {
		t.Errorf("the counterpart reads the session by its id: %+v, %v", got, err)
	}
}
