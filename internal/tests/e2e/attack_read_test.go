package e2e

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// collectionEndpoints are the read endpoints of one collection, with obj
// for the per-object ones.
func collectionEndpoints(root, coll, obj string) map[string]string {
	base := "/taxii2/" + root + "/collections/" + coll + "/"
	return map[string]string{
		"collection": base,
		"objects":    base + "objects/",
		"object":     base + "objects/" + obj + "/",
		"versions":   base + "objects/" + obj + "/versions/",
		"manifest":   base + "manifest/",
		"match-id":   base + "objects/?match[id]=" + obj,
	}
}

// probesFor pairs each endpoint of (root, coll, obj) with the same endpoint
// of a collection that does not exist, as p.
func probesFor(prefix string, p *Party, root, coll, obj string) []probe {
	attack := collectionEndpoints(root, coll, obj)
	twin := collectionEndpoints(root, missingCollection(), missingObject())
	var out []probe
	for _, k := range slices.Sorted(mapKeys(attack)) {
		out = append(out, probe{name: prefix + "/" + k, attack: get(p, attack[k]), twin: get(p, twin[k]), status: 404})
	}
	return out
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestAttackReadOtherContributions: a party outside an agreement, or
// outside an operator collection's readers, reads nothing of it through
// any endpoint, and each refusal is the 404 of a collection that does not
// exist. Collection ids are not secret (the ledger names them), so these
// are the attacks of someone who knows them.
func TestAttackReadOtherContributions(t *testing.T) {
	w := newAttackWorld(t)
	var outsider []probe
	outsider = append(outsider, probesFor("charlie-reads-alpha", w.charlie, w.ag, w.alphaColl, w.released[0].ID)...)
	outsider = append(outsider, probesFor("charlie-reads-bravo", w.charlie, w.ag, w.bravoColl, w.bravoObj.ID)...)
	outsider = append(outsider, probesFor("charlie-reads-operator", w.charlie, "shared", w.opShared, w.opPublic.ID)...)
	w.run(t, w.hiddenFromCharlie(), outsider)
	var insider []probe
	insider = append(insider, probesFor("bravo-reads-alpha-operator", w.bravo, "shared", w.opAlpha, w.opSecret[0].ID)...)
	// A collection is found only in its own API root.
	insider = append(insider, probesFor("alpha-operator-via-agreement-root", w.alpha, w.ag, w.opAlpha, w.opSecret[0].ID)...)
	insider = append(insider, probesFor("alpha-collection-via-shared-root", w.bravo, "shared", w.alphaColl, w.released[0].ID)...)
	w.run(t, w.hiddenFromBravo(), insider)

	// An object is found only in its own collection: alpha's released
	// object asked for through bravo's own collection, and an operator
	// object through alpha's agreement collection.
	w.run(t, w.hiddenFromBravo(), []probe{
		{name: "released-object-via-own-collection", attack: get(w.bravo, objectPath(w.ag, w.bravoColl, w.released[0].ID)),
			twin: get(w.bravo, objectPath(w.ag, w.bravoColl, missingObject())), status: 404},
		{name: "operator-object-via-agreement-collection", attack: get(w.alpha, objectPath(w.ag, w.alphaColl, w.opSecret[0].ID)),
			twin: get(w.alpha, objectPath(w.ag, w.alphaColl, missingObject())), status: 404},
	})
}

// TestAttackBeyondAllowance: bravo may read the released prefix of alpha's
// contributions and nothing past it, whichever endpoint, filter or paging
// trick it uses; an unreleased object answers exactly as a missing one.
func TestAttackBeyondAllowance(t *testing.T) {
	w := newAttackWorld(t)
	hidden := w.hiddenFromBravo()
	u0, u1 := w.unreleased[0].ID, w.unreleased[1].ID
	missing := missingObject()
	obj := func(id, query string) req { return get(w.bravo, objectPath(w.ag, w.alphaColl, id)+query) }
	objs := func(query string) req { return get(w.bravo, objectsPath(w.ag, w.alphaColl)+query) }
	manifest := func(query string) req {
		return get(w.bravo, "/taxii2/"+w.ag+"/collections/"+w.alphaColl+"/manifest/"+query)
	}
	r0 := w.released[0].ID
	w.run(t, hidden, []probe{
		{name: "object-by-id", attack: obj(u1, ""), twin: obj(missing, ""), status: 404},
		{name: "object-all-versions", attack: obj(u1, "?match[version]=all"), twin: obj(missing, "?match[version]=all"), status: 404},
		{name: "object-first-version", attack: obj(u1, "?match[version]=first"), twin: obj(missing, "?match[version]=first"), status: 404},
		{name: "object-exact-version", attack: obj(u1, "?match[version]="+w.secondVersion), twin: obj(missing, "?match[version]="+w.secondVersion), status: 404},
		{name: "object-added-after-epoch", attack: obj(u1, "?added_after=1970-01-01T00:00:00Z"), twin: obj(missing, "?added_after=1970-01-01T00:00:00Z"), status: 404},
		{name: "object-spec-version", attack: obj(u1, "?match[spec_version]=2.1"), twin: obj(missing, "?match[spec_version]=2.1"), status: 404},
		{name: "object-uppercase-id", attack: obj(strings.ToUpper(u1[len("indicator--"):]), ""), twin: obj(strings.ToUpper(missing[len("indicator--"):]), ""), status: 404},
		{name: "versions", attack: get(w.bravo, objectPath(w.ag, w.alphaColl, u1)+"versions/"), twin: get(w.bravo, objectPath(w.ag, w.alphaColl, missing)+"versions/"), status: 404},
		{name: "versions-limit", attack: get(w.bravo, objectPath(w.ag, w.alphaColl, u1)+"versions/?limit=1"), twin: get(w.bravo, objectPath(w.ag, w.alphaColl, missing)+"versions/?limit=1"), status: 404},
		// The relationship names u0, but naming it releases nothing.
		{name: "referenced-target-by-id", attack: obj(u0, ""), twin: obj(missing, ""), status: 404},
		{name: "referenced-target-versions", attack: get(w.bravo, objectPath(w.ag, w.alphaColl, u0)+"versions/"), twin: get(w.bravo, objectPath(w.ag, w.alphaColl, missing)+"versions/"), status: 404},
		// Filters that name hidden objects answer as for missing ones.
		{name: "match-id", attack: objs("?match[id]=" + u1), twin: objs("?match[id]=" + missing), status: 200},
		{name: "match-id-mixed", attack: objs("?match[id]=" + u1 + "," + r0), twin: objs("?match[id]=" + missing + "," + r0), status: 200},
		{name: "match-id-target", attack: objs("?match[id]=" + u0 + "&match[version]=all"), twin: objs("?match[id]=" + missing + "&match[version]=all"), status: 200},
		{name: "manifest-match-id", attack: manifest("?match[id]=" + u1), twin: manifest("?match[id]=" + missing), status: 200},
		{name: "manifest-match-id-all-versions", attack: manifest("?match[id]=" + u1 + "&match[version]=all"), twin: manifest("?match[id]=" + missing + "&match[version]=all"), status: 200},
	})

	// Whole-collection reads return exactly the released prefix, whatever
	// the filter, the page size or the starting point.
	queries := []string{"", "?match[version]=all", "?match[version]=last", "?match[version]=first", "?match[type]=indicator",
		"?match[type]=relationship,indicator", "?match[spec_version]=2.1", "?added_after=1970-01-01T00:00:00Z",
		"?added_after=0001-01-01T00:00:00Z", "?limit=1", "?limit=99999999999", "?limit=0", "?limit=-1",
		"?match[version]=" + w.secondVersion, "?match[version]=" + firstVersion}
	for _, q := range queries {
		for _, endpoint := range []string{"objects", "manifest"} {
			t.Run("whole-"+endpoint+q, func(t *testing.T) {
				r := w.send(t, get(w.bravo, "/taxii2/"+w.ag+"/collections/"+w.alphaColl+"/"+endpoint+"/"+q))
				noLeak(t, endpoint+q, r, hidden)
				if r.Status == 400 && (strings.Contains(q, "limit=0") || strings.Contains(q, "limit=-1")) {
					return // a refused page size, named in the error; nothing came back
				}
				if r.Status != 200 {
					t.Fatalf("%s: %s", q, r)
				}
				var env struct {
					Objects []struct {
						ID string `json:"id"`
					} `json:"objects"`
				}
				if err := json.Unmarshal(r.Body, &env); err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, o := range env.Objects {
					if !slices.Contains(w.releasedIDs(), o.ID) {
						t.Errorf("%s %s returned %s, which was not released", endpoint, q, o.ID)
					}
					ids = append(ids, o.ID)
				}
				if (q == "" || strings.Contains(q, "added_after") || strings.Contains(q, "limit=9")) && !slices.Equal(ids, w.releasedIDs()) {
					t.Errorf("%s %s returned %v, want all that was released: %v", endpoint, q, ids, w.releasedIDs())
				}
			})
		}
	}

	// Paging one object at a time, with the next cursor and with
	// added_after set to the last date_added seen (TAXII 2.1 section 3.7),
	// reaches the end of the released prefix and stops there.
	t.Run("paging", func(t *testing.T) {
		if got := ReadAll(t, w.bravo, w.ag, w.alphaColl, 1); !slices.Equal(got, w.releasedIDs()) {
			t.Fatalf("limit=1 paging read %v, want %v", got, w.releasedIDs())
		}
		var seen []string
		after := ""
		for range 20 {
			q := "?limit=1"
			if after != "" {
				q += "&added_after=" + url.QueryEscape(after)
			}
			r := w.send(t, objs(q))
			noLeak(t, "added_after paging", r, hidden)
			var env struct {
				Objects []struct {
					ID string `json:"id"`
				} `json:"objects"`
			}
			if r.Status != 200 || json.Unmarshal(r.Body, &env) != nil {
				t.Fatalf("paging: %s", r)
			}
			if len(env.Objects) == 0 {
				break
			}
			seen = append(seen, env.Objects[0].ID)
			after = r.Header.Get("X-TAXII-Date-Added-Last")
		}
		if !slices.Equal(seen, w.releasedIDs()) {
			t.Fatalf("added_after paging read %v, want %v", seen, w.releasedIDs())
		}
	})
}
