package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAttackDeleteAndSquat (issue 12, finding 10): on operator collections
// an object belongs to the party that first posted it. Nobody else deletes
// it or adds versions of it, whatever its rights on the collection; a
// writer that may not read cannot delete at all and learns nothing of which
// ids exist; and no version dated far in the future can squat the "latest"
// slot so that the owner's real updates never become current.
func TestAttackDeleteAndSquat(t *testing.T) {
	w := newAttackWorld(t)
	ex := w.s.Srv.Ex
	// dropbox: alpha reads and writes, bravo only writes. joint: both read
	// and write.
	c, err := ex.CreateCollection(ctx, "Drop box", "", []string{w.alpha.ID}, []string{w.alpha.ID, w.bravo.ID})
	if err != nil {
		t.Fatal(err)
	}
	dropbox := c.ID
	if c, err = ex.CreateCollection(ctx, "Joint workspace", "", []string{w.alpha.ID, w.bravo.ID}, []string{w.alpha.ID, w.bravo.ID}); err != nil {
		t.Fatal(err)
	}
	joint := c.ID
	inDrop, inJoint := newIndicator("drop", 0, firstVersion), newIndicator("joint", 0, firstVersion)
	for coll, s := range map[string]secret{dropbox: inDrop, joint: inJoint} {
		if st, err := w.alpha.C.AddObjects(ctx, "shared", coll, []json.RawMessage{s.Raw}); err != nil || st.SuccessCount != 1 {
			t.Fatalf("alpha posts: %+v, %v", st, err)
		}
	}

	// Refusals that must not tell whether the object exists.
	w.run(t, []string{"drop", w.tagOp}, []probe{
		{name: "writer-only-deletes", attack: del(w.bravo, objectPath("shared", dropbox, inDrop.ID)), twin: del(w.bravo, objectPath("shared", dropbox, missingObject())), status: 403},
		{name: "writer-only-deletes-one-version", attack: del(w.bravo, objectPath("shared", dropbox, inDrop.ID)+"?match[version]="+firstVersion), twin: del(w.bravo, objectPath("shared", dropbox, missingObject())+"?match[version]="+firstVersion), status: 403},
		{name: "reader-only-deletes", attack: del(w.bravo, objectPath("shared", w.opShared, w.opPublic.ID)), twin: del(w.bravo, objectPath("shared", w.opShared, missingObject())), status: 403},
	})
	// bravo reads joint, so whether inJoint exists is no secret there; the
	// refusal says why.
	r := w.send(t, del(w.bravo, objectPath("shared", joint, inJoint.ID)))
	if r.Status != 403 || !strings.Contains(string(r.Body), "first posted by another party") {
		t.Errorf("another writer deletes on a shared collection: %s", r)
	}

	// Version squatting: another writer (reader or not) posting alpha's id,
	// with a far-future or a plausible modified, gets a failure
	// for that object alone; its own new object in the same request is kept.
	mine := newIndicator("bravos", 0, firstVersion)
	for _, tc := range []struct{ name, coll, modified string }{
		{"joint-9999", joint, "9999-12-31T23:59:59.999Z"},
		{"joint-tomorrow", joint, time.Now().UTC().Add(24 * time.Hour).Format("2006-01-02T15:04:05.000Z")},
		{"joint-next-year", joint, "2026-06-01T00:00:00.000Z"},
		{"joint-plausible", joint, "2026-01-15T00:00:00.000Z"},
		{"dropbox-9999", dropbox, "9999-12-31T23:59:59.999Z"},
		{"dropbox-newer", dropbox, "2026-06-01T00:00:00.000Z"},
	} {
		t.Run("squat-"+tc.name, func(t *testing.T) {
			target := inJoint
			if tc.coll == dropbox {
				target = inDrop
			}
			mine := newIndicator("bravos-"+tc.name, 0, firstVersion)
			st, err := w.bravo.C.AddObjects(ctx, "shared", tc.coll, []json.RawMessage{indicatorRaw(target, tc.modified), mine.Raw})
			if err != nil {
				t.Fatal(err)
			}
			if st.SuccessCount != 1 || st.FailureCount != 1 || st.Failures[0].ID != target.ID || st.Successes[0].ID != mine.ID {
				t.Fatalf("status: %+v", st)
			}
			if m := st.Failures[0].Message; !strings.Contains(m, "another party first posted this object id") && !strings.Contains(m, "is in the future") {
				t.Errorf("failure does not say why: %q", m)
			}
		})
	}
	// The owner itself cannot date a version in the far future either.
	st, err := w.alpha.C.AddObjects(ctx, "shared", joint, []json.RawMessage{indicatorRaw(inJoint, "9999-12-31T23:59:59.999Z")})
	if err != nil || st.FailureCount != 1 || !strings.Contains(st.Failures[0].Message, "is in the future") {
		t.Errorf("owner's far-future version: %+v, %v", st, err)
	}
	// bravo's own object is bravo's: alpha may not version or delete it.
	if st, err := w.bravo.C.AddObjects(ctx, "shared", joint, []json.RawMessage{mine.Raw}); err != nil || st.SuccessCount != 1 {
		t.Fatalf("bravo posts its own: %+v, %v", st, err)
	}
	if st, err := w.alpha.C.AddObjects(ctx, "shared", joint, []json.RawMessage{indicatorRaw(mine, "2026-03-01T00:00:00.000Z")}); err != nil || st.FailureCount != 1 {
		t.Errorf("alpha versions bravo's object: %+v, %v", st, err)
	}
	if r := w.send(t, del(w.alpha, objectPath("shared", joint, mine.ID))); r.Status != 403 {
		t.Errorf("alpha deletes bravo's object: %s", r)
	}

	// The owner's real update becomes current, and nothing of alpha's was
	// lost or changed.
	update := "2026-02-01T00:00:00.000Z"
	if st, err := w.alpha.C.AddObjects(ctx, "shared", joint, []json.RawMessage{indicatorRaw(inJoint, update)}); err != nil || st.SuccessCount != 1 {
		t.Fatalf("alpha updates: %+v, %v", st, err)
	}
	for _, who := range []*Party{w.alpha, w.bravo} {
		r := w.send(t, get(who, objectPath("shared", joint, inJoint.ID)))
		if r.Status != 200 || !strings.Contains(string(r.Body), `"modified":"`+update+`"`) {
			t.Errorf("%s reads the latest version of alpha's object: %s", who.Name, r)
		}
		r = w.send(t, get(who, objectPath("shared", joint, inJoint.ID)+"versions/"))
		var vs struct{ Versions []string }
		if json.Unmarshal(r.Body, &vs) != nil || !slices.Equal(vs.Versions, []string{firstVersion, update}) {
			t.Errorf("versions of alpha's object seen by %s: %s", who.Name, r)
		}
	}
	if got := ReadAll(t, w.alpha, "shared", dropbox, 50); !slices.Contains(got, inDrop.ID) {
		t.Errorf("alpha's drop box holds %v", got)
	}
	r = w.send(t, get(w.alpha, objectPath("shared", dropbox, inDrop.ID)+"versions/"))
	var vs struct{ Versions []string }
	if json.Unmarshal(r.Body, &vs) != nil || !slices.Equal(vs.Versions, []string{firstVersion}) {
		t.Errorf("versions of alpha's drop-box object: %s", r)
	}
	if got := ReadAll(t, w.bravo, "shared", w.opShared, 50); !slices.Equal(got, []string{w.opPublic.ID}) {
		t.Errorf("the operator bulletin holds %v", got)
	}
	// The owner still deletes its own.
	if r := w.send(t, del(w.alpha, objectPath("shared", joint, inJoint.ID))); r.Status != 200 {
		t.Errorf("alpha deletes its own object: %s", r)
	}
}
