package e2e

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
)

// TestAttackSuspensionTermination: once an agreement is suspended, and
// again once it is terminated, nothing new flows — neither side can
// contribute, and contributions cannot raise the allowance — while what
// was released stays readable and what was not stays exactly as
// invisible as a missing object.
func TestAttackSuspensionTermination(t *testing.T) {
	w := newAttackWorld(t)
	hidden := w.hiddenFromBravo()
	late := newIndicator("late", 0, firstVersion)
	hidden = append(hidden, "late")
	check := func(t *testing.T, phase string) {
		// Reads: the released prefix, exactly.
		if got := ReadAll(t, w.bravo, w.ag, w.alphaColl, 2); !slices.Equal(got, w.releasedIDs()) {
			t.Errorf("%s: bravo reads %v, want what was released: %v", phase, got, w.releasedIDs())
		}
		if got := ReadAll(t, w.alpha, w.ag, w.bravoColl, 2); !slices.Equal(got, []string{w.bravoObj.ID}) {
			t.Errorf("%s: alpha reads %v, want %v", phase, got, w.bravoObj.ID)
		}
		for _, id := range w.releasedIDs() {
			if r := w.send(t, get(w.bravo, objectPath(w.ag, w.alphaColl, id))); r.Status != 200 {
				t.Errorf("%s: released %s is gone: %s", phase, id, r)
			}
		}
		missing := missingObject()
		w.run(t, hidden, []probe{
			{name: phase + "/unreleased", attack: get(w.bravo, objectPath(w.ag, w.alphaColl, w.unreleased[1].ID)), twin: get(w.bravo, objectPath(w.ag, w.alphaColl, missing)), status: 404},
			{name: phase + "/unreleased-versions", attack: get(w.bravo, objectPath(w.ag, w.alphaColl, w.unreleased[1].ID)+"versions/"), twin: get(w.bravo, objectPath(w.ag, w.alphaColl, missing)+"versions/"), status: 404},
			{name: phase + "/unreleased-match-id", attack: get(w.bravo, objectsPath(w.ag, w.alphaColl)+"?match[id]="+w.unreleased[2].ID), twin: get(w.bravo, objectsPath(w.ag, w.alphaColl)+"?match[id]="+missing), status: 200},
			{name: phase + "/charlie", attack: get(w.charlie, objectsPath(w.ag, w.alphaColl)), twin: get(w.charlie, objectsPath(w.ag, missingCollection())), status: 404},
			// Writes are refused on either side, whatever is sent.
			{name: phase + "/bravo-contributes", attack: post(w.bravo, objectsPath(w.ag, w.bravoColl), envelope(late.Raw)), twin: post(w.bravo, objectsPath(w.ag, w.bravoColl), []byte("{")), status: 403},
			{name: phase + "/alpha-contributes", attack: post(w.alpha, objectsPath(w.ag, w.alphaColl), envelope(late.Raw)), twin: post(w.alpha, objectsPath(w.ag, w.alphaColl), []byte("{")), status: 403},
			{name: phase + "/alpha-deletes", attack: del(w.alpha, objectPath(w.ag, w.alphaColl, w.released[0].ID)), twin: del(w.alpha, objectPath(w.ag, w.alphaColl, missing)), status: 403},
		})
		b, err := w.bravo.C.Balance(ctx, w.ag)
		if err != nil || b.Released != int64(len(w.releasedIDs())) || b.Contributed != 1 || b.InForce {
			t.Errorf("%s: bravo's balance %+v, %v", phase, b, err)
		}
	}

	if _, err := w.alpha.C.Sign(ctx, Sign(t, w.alpha, w.doc, agreement.ActionSuspend)); err != nil {
		t.Fatalf("suspend: %v", err)
	}
	time.Sleep(10 * time.Millisecond) // effective_at is the signing time
	check(t, "suspended")

	if _, err := w.bravo.C.Sign(ctx, Sign(t, w.bravo, w.doc, agreement.ActionTerminate)); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	check(t, "terminated")

	// An amendment raising bravo's grace cannot revive the terminated
	// agreement's flow.
	d2 := Document(t, w.alpha, w.bravo, func(m map[string]any) {
		m["id"], m["version"] = w.ag, 2
		m["scope"] = map[string]any{"types": []string{"indicator", "relationship"}, "max_tlp": "amber", "unmarked": "allow"}
		m["reciprocity"] = map[string]any{"ratio": "1:1", "grace": 100}
	})
	raw, _ := json.Marshal(map[string]any{"document": json.RawMessage(d2.Canonical()), "signature": Sign(t, w.bravo, d2, agreement.ActionAmend)})
	r := w.send(t, req{Method: "POST", Path: "/api/v1/agreements/" + w.ag + "/versions", Auth: bearer(w.bravo), Body: raw})
	noLeak(t, "amend after termination", r, hidden)
	if r.Status < 400 || r.Status >= 500 {
		t.Errorf("amending a terminated agreement: %s", r)
	}
	check(t, "after-amend-attempt")
}
