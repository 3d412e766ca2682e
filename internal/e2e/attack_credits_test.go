package e2e

// The give-to-get attack family (issue 12, findings 1 and 11): a party
// with valid credentials tries to earn credits without giving intelligence
// new to the agreement, or to push data above the agreement's highest TLP
// past the scope check. Each case goes through TAXII POST on the real
// server and checks both the refusal (or the missing credit) and that the
// honest side's standing did not move.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
)

// TestAttackGranularMarkingAboveScope: an object whose object_marking_refs
// are within the agreement's highest TLP but whose granular_markings carry
// a higher level is refused, whichever TLP version names the level.
func TestAttackGranularMarkingAboveScope(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	d := Document(t, a, b, nil) // max_tlp amber
	ag := Activate(t, a, b, d).ID
	own, _ := Collections(t, a, ag)

	obj := func(objectMarking, granular string) (string, json.RawMessage) {
		id := "indicator--" + party.NewID("")
		refs := ""
		if objectMarking != "" {
			refs = fmt.Sprintf(`,"object_marking_refs":[%q]`, objectMarking)
		}
		return id, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"secret name","description":"the red part","pattern":"[ipv4-addr:value = '192.0.2.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"%s,"granular_markings":[{"selectors":["description"],"marking_ref":%q}]}`,
			id, len(id)%250, refs, granular))
	}
	for _, tc := range []struct {
		name, objectMarking, granular string
		refused                       bool
	}{
		{"green-with-granular-red", stix.TLP2Green, stix.TLP2Red, true},
		{"green-with-granular-tlp1-red", stix.TLPGreen, stix.TLPRed, true},
		{"unmarked-with-granular-red", "", stix.TLP2Red, true},
		{"amber-with-granular-amber-strict", stix.TLP2Amber, stix.TLP2AmberStrict, true},
		{"green-with-granular-amber", stix.TLP2Green, stix.TLP2Amber, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, raw := obj(tc.objectMarking, tc.granular)
			st, err := a.C.AddObjects(ctx, ag, own, []json.RawMessage{raw})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.refused {
				if st.SuccessCount != 1 {
					t.Fatalf("an object within scope was refused: %+v", st)
				}
				return
			}
			if st.SuccessCount != 0 || st.FailureCount != 1 || st.Failures[0].ID != id || !strings.Contains(st.Failures[0].Message, "above the agreement's highest TLP:AMBER") {
				t.Fatalf("granular marking above scope: status %+v, want one failure naming the level", st)
			}
			for _, got := range ReadAll(t, a, ag, own, 100) {
				if got == id {
					t.Fatalf("the refused object %s was stored", id)
				}
			}
		})
	}
	bal, err := a.C.Balance(ctx, ag)
	if err != nil || bal.Contributed != 1 {
		t.Fatalf("alpha's balance %+v, %v: only the in-scope object may count", bal, err)
	}
}
