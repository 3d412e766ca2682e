package e2e

import (
	"encoding/json"
	"slices"
	"testing"
)

func envelope(objs ...json.RawMessage) []byte {
	b, _ := json.Marshal(map[string]any{"objects": objs})
	return b
}

func post(p *Party, path string, body []byte) req {
	return req{Method: "POST", Path: path, Auth: bearer(p), Body: body}
}

func del(p *Party, path string) req { return req{Method: "DELETE", Path: path, Auth: bearer(p)} }

// TestAttackWrites: nobody writes into a collection it may not write,
// deletes anything from an agreement's collections, or learns from how a
// refused write or delete is answered whether an object exists. Refusals
// on collections the caller cannot see are the 404 of a missing
// collection; on collections it can see, one 403 whatever the object.
func TestAttackWrites(t *testing.T) {
	w := newAttackWorld(t)
	fresh := newIndicator("planted", 0, firstVersion)
	// An object with the id of one of alpha's unreleased objects.
	clash := newIndicator("planted", 1, firstVersion)
	clash.ID = w.unreleased[2].ID
	clash.Raw = indicatorRaw(clash, firstVersion)
	body, clashBody := envelope(fresh.Raw), envelope(clash.Raw)
	missingColl := missingCollection()
	hidden := append(w.hiddenFromCharlie(), "planted")

	w.run(t, hidden, []probe{
		// Bravo reads alpha's collection but may not write it, whatever it sends.
		{name: "bravo-posts-into-alpha", attack: post(w.bravo, objectsPath(w.ag, w.alphaColl), body), twin: post(w.bravo, objectsPath(w.ag, w.alphaColl), clashBody), status: 403},
		{name: "bravo-posts-garbage-into-alpha", attack: post(w.bravo, objectsPath(w.ag, w.alphaColl), []byte("{")), twin: post(w.bravo, objectsPath(w.ag, w.alphaColl), body), status: 403},
		{name: "bravo-posts-into-operator-readonly", attack: post(w.bravo, objectsPath("shared", w.opShared), body), twin: post(w.bravo, objectsPath("shared", w.opShared), clashBody), status: 403},
		// Collections the writer cannot see do not exist for it, whatever
		// the body.
		{name: "charlie-posts-into-alpha", attack: post(w.charlie, objectsPath(w.ag, w.alphaColl), body), twin: post(w.charlie, objectsPath(w.ag, missingColl), body), status: 404},
		{name: "charlie-posts-garbage-into-alpha", attack: post(w.charlie, objectsPath(w.ag, w.alphaColl), []byte("{")), twin: post(w.charlie, objectsPath(w.ag, missingColl), []byte("{")), status: 404},
		{name: "charlie-posts-into-operator", attack: post(w.charlie, objectsPath("shared", w.opShared), body), twin: post(w.charlie, objectsPath("shared", missingColl), body), status: 404},
		{name: "bravo-posts-into-alpha-operator", attack: post(w.bravo, objectsPath("shared", w.opAlpha), body), twin: post(w.bravo, objectsPath("shared", missingColl), body), status: 404},
		{name: "alpha-posts-into-bravo", attack: post(w.alpha, objectsPath(w.ag, w.bravoColl), body), twin: post(w.alpha, objectsPath(w.ag, w.bravoColl), clashBody), status: 403},
		// Deleting: the counterpart's objects, released or not or missing,
		// get one answer.
		{name: "bravo-deletes-released", attack: del(w.bravo, objectPath(w.ag, w.alphaColl, w.released[1].ID)), twin: del(w.bravo, objectPath(w.ag, w.alphaColl, missingObject())), status: 403},
		{name: "bravo-deletes-unreleased", attack: del(w.bravo, objectPath(w.ag, w.alphaColl, w.unreleased[1].ID)), twin: del(w.bravo, objectPath(w.ag, w.alphaColl, missingObject())), status: 403},
		{name: "bravo-deletes-unreleased-version", attack: del(w.bravo, objectPath(w.ag, w.alphaColl, w.unreleased[1].ID)+"?match[version]="+w.secondVersion), twin: del(w.bravo, objectPath(w.ag, w.alphaColl, missingObject())+"?match[version]="+w.secondVersion), status: 403},
		{name: "charlie-deletes-alphas", attack: del(w.charlie, objectPath(w.ag, w.alphaColl, w.released[1].ID)), twin: del(w.charlie, objectPath(w.ag, missingColl, missingObject())), status: 404},
		{name: "charlie-deletes-operator", attack: del(w.charlie, objectPath("shared", w.opAlpha, w.opSecret[0].ID)), twin: del(w.charlie, objectPath("shared", missingColl, missingObject())), status: 404},
		{name: "bravo-deletes-alpha-operator", attack: del(w.bravo, objectPath("shared", w.opAlpha, w.opSecret[0].ID)), twin: del(w.bravo, objectPath("shared", missingColl, missingObject())), status: 404},
		{name: "bravo-deletes-from-readonly-operator", attack: del(w.bravo, objectPath("shared", w.opShared, w.opPublic.ID)), twin: del(w.bravo, objectPath("shared", w.opShared, missingObject())), status: 403},
		// The contributor cannot take back what it contributed under an
		// agreement: what was released stays with its recipient.
		{name: "alpha-deletes-own-released", attack: del(w.alpha, objectPath(w.ag, w.alphaColl, w.released[1].ID)), twin: del(w.alpha, objectPath(w.ag, w.alphaColl, missingObject())), status: 403},
		{name: "alpha-deletes-own-unreleased", attack: del(w.alpha, objectPath(w.ag, w.alphaColl, w.unreleased[1].ID)), twin: del(w.alpha, objectPath(w.ag, w.alphaColl, missingObject())), status: 403},
		{name: "bravo-deletes-own", attack: del(w.bravo, objectPath(w.ag, w.bravoColl, w.bravoObj.ID)), twin: del(w.bravo, objectPath(w.ag, w.bravoColl, missingObject())), status: 403},
	})

	// Nothing was planted, nothing was taken: every collection holds what
	// it held, and bravo still reads all that was released.
	if got := ReadAll(t, w.bravo, w.ag, w.alphaColl, 3); !slices.Equal(got, w.releasedIDs()) {
		t.Errorf("after the attacks bravo reads %v, want %v", got, w.releasedIDs())
	}
	all := ReadAll(t, w.alpha, w.ag, w.alphaColl, 50)
	if len(all) != len(w.released)+1+len(w.unreleased) || slices.Contains(all, fresh.ID) {
		t.Errorf("after the attacks alpha's collection holds %v", all)
	}
	if got := ReadAll(t, w.alpha, "shared", w.opAlpha, 50); len(got) != len(w.opSecret) {
		t.Errorf("after the attacks alpha's operator collection holds %v", got)
	}
	if got := ReadAll(t, w.bravo, "shared", w.opShared, 50); !slices.Equal(got, []string{w.opPublic.ID}) {
		t.Errorf("after the attacks the shared operator collection holds %v", got)
	}
	if got := ReadAll(t, w.alpha, w.ag, w.bravoColl, 50); !slices.Equal(got, []string{w.bravoObj.ID}) {
		t.Errorf("after the attacks bravo's collection holds %v", got)
	}
	// The agreement's accounting did not move either.
	for _, p := range []*Party{w.alpha, w.bravo} {
		b, err := p.C.Balance(ctx, w.ag)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int64{w.alpha.Name: 8, w.bravo.Name: 1}[p.Name]; b.Contributed != want {
			t.Errorf("%s's contributions moved to %d, want %d", p.Name, b.Contributed, want)
		}
	}
}
