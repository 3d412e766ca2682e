package e2e

import (
	"encoding/json"
	"testing"
)

// TestAttackContributionOracle: contributing an object under an agreement
// must not tell the contributor whether the counterpart holds an
// unreleased object with the same id — neither through the status message
// nor through the credit it earns.
func TestAttackContributionOracle(t *testing.T) {
	w := newAttackWorld(t)
	probeObj := func(id string) json.RawMessage {
		s := newIndicator("probe", 0, firstVersion)
		s.ID = id
		return indicatorRaw(s, firstVersion)
	}
	type status struct {
		Successes []struct {
			Message string `json:"message"`
		} `json:"successes"`
	}
	contributed := func() int64 {
		b, err := w.bravo.C.Balance(ctx, w.ag)
		if err != nil {
			t.Fatal(err)
		}
		return b.Contributed
	}
	send := func(id string) (status, int64) {
		before := contributed()
		r := w.send(t, post(w.bravo, objectsPath(w.ag, w.bravoColl), envelope(probeObj(id))))
		var s status
		if r.Status != 202 || json.Unmarshal(r.Body, &s) != nil || len(s.Successes) != 1 {
			t.Fatalf("posting %s: %s", id, r)
		}
		return s, contributed() - before
	}
	hit, hitCredit := send(w.unreleased[3].ID)
	miss, missCredit := send(missingObject())
	if hit.Successes[0].Message != miss.Successes[0].Message {
		t.Errorf("the status tells alpha's unreleased id from a fresh one: %q vs %q", hit.Successes[0].Message, miss.Successes[0].Message)
	}
	if hitCredit != missCredit {
		t.Errorf("the balance tells alpha's unreleased id from a fresh one: +%d vs +%d contributed", hitCredit, missCredit)
	}
}
