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
	probes := 0
	probeObj := func(id string) json.RawMessage {
		// Each probe carries new content: only its id may be known.
		probes++
		s := newIndicator("probe", probes, firstVersion)
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
	sendRaw := func(raw json.RawMessage) (status, int64) {
		before := contributed()
		r := w.send(t, post(w.bravo, objectsPath(w.ag, w.bravoColl), envelope(raw)))
		var s status
		if r.Status != 202 || json.Unmarshal(r.Body, &s) != nil || len(s.Successes) != 1 {
			t.Fatalf("posting %s: %s", raw, r)
		}
		return s, contributed() - before
	}
	send := func(id string) (status, int64) { return sendRaw(probeObj(id)) }
	hit, hitCredit := send(w.unreleased[3].ID)
	miss, missCredit := send(missingObject())
	if hit.Successes[0].Message != miss.Successes[0].Message {
		t.Errorf("the status tells alpha's unreleased id from a fresh one: %q vs %q", hit.Successes[0].Message, miss.Successes[0].Message)
	}
	if hitCredit != missCredit {
		t.Errorf("the balance tells alpha's unreleased id from a fresh one: +%d vs +%d contributed", hitCredit, missCredit)
	}
	// The same by content: alpha's unreleased content under a new id
	// earns like content nobody gave.
	copied := w.unreleased[2]
	copied.ID = missingObject()
	hit, hitCredit = sendRaw(indicatorRaw(copied, firstVersion))
	miss, missCredit = send(missingObject())
	if hit.Successes[0].Message != miss.Successes[0].Message || hitCredit != missCredit {
		t.Errorf("the answer tells alpha's unreleased content from fresh content: %q +%d vs %q +%d",
			hit.Successes[0].Message, hitCredit, miss.Successes[0].Message, missCredit)
	}
}
