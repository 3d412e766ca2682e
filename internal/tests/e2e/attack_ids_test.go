package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// nextCursor reads the first page of path (which must ask for a small
// limit) as p and returns its next value.
func (w *attackWorld) nextCursor(t *testing.T, p *Party, path string) string {
	t.Helper()
	r := w.send(t, get(p, path))
	var env struct {
		More bool   `json:"more"`
		Next string `json:"next"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &env) != nil || !env.More || env.Next == "" {
		t.Fatalf("no next cursor from %s: %s", path, r)
	}
	return env.Next
}

// editCursor changes one character of c to another base64url character.
func editCursor(c string, i int) string {
	b := []byte(c)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestAttackCursors: a next cursor is bound to the party, collection,
// endpoint, object and filters that produced it. Replayed by anyone else
// or anywhere else, or edited in any byte, it is refused with the one 400
// every invalid cursor gets, and it never opens more than was released.
func TestAttackCursors(t *testing.T) {
	w := newAttackWorld(t)
	objs := objectsPath(w.ag, w.alphaColl)
	cur := w.nextCursor(t, w.bravo, objs+"?limit=1")
	// Alpha may read all of its collection; its cursor points past what
	// bravo may see.
	alphaCur := w.nextCursor(t, w.alpha, objs+"?limit=5")
	// A cursor of the right length that no server ever issued.
	forged := strings.Repeat("A", len(cur))
	q := func(c string) string { return "?limit=1&next=" + url.QueryEscape(c) }
	manifest := "/taxii2/" + w.ag + "/collections/" + w.alphaColl + "/manifest/"
	probes := []probe{
		{name: "other-party-outsider", attack: get(w.charlie, objs+q(cur)), twin: get(w.charlie, objs+q(forged)), status: 400},
		{name: "other-party-outsider-missing-collection", attack: get(w.charlie, objs+q(cur)), twin: get(w.charlie, objectsPath(w.ag, missingCollection())+q(cur)), status: 400},
		{name: "other-party-contributor", attack: get(w.alpha, objs+q(cur)), twin: get(w.alpha, objs+q(forged)), status: 400},
		{name: "contributors-cursor-to-reader", attack: get(w.bravo, objs+"?limit=5&next="+url.QueryEscape(alphaCur)), twin: get(w.bravo, objs+"?limit=5&next="+url.QueryEscape(forged)), status: 400},
		{name: "other-collection", attack: get(w.bravo, objectsPath(w.ag, w.bravoColl)+q(cur)), twin: get(w.bravo, objectsPath(w.ag, w.bravoColl)+q(forged)), status: 400},
		{name: "operator-collection", attack: get(w.bravo, objectsPath("shared", w.opShared)+q(cur)), twin: get(w.bravo, objectsPath("shared", w.opShared)+q(forged)), status: 400},
		{name: "other-filter", attack: get(w.bravo, objs+q(cur)+"&match[type]=indicator"), twin: get(w.bravo, objs+q(forged)+"&match[type]=indicator"), status: 400},
		{name: "other-version-filter", attack: get(w.bravo, objs+q(cur)+"&match[version]=all"), twin: get(w.bravo, objs+q(forged)+"&match[version]=all"), status: 400},
		{name: "other-added-after", attack: get(w.bravo, objs+q(cur)+"&added_after=1970-01-01T00:00:00Z"), twin: get(w.bravo, objs+q(forged)+"&added_after=1970-01-01T00:00:00Z"), status: 400},
		{name: "other-endpoint-manifest", attack: get(w.bravo, manifest+q(cur)), twin: get(w.bravo, manifest+q(forged)), status: 400},
		{name: "other-endpoint-object", attack: get(w.bravo, objectPath(w.ag, w.alphaColl, w.unreleased[1].ID)+q(cur)), twin: get(w.bravo, objectPath(w.ag, w.alphaColl, w.unreleased[1].ID)+q(forged)), status: 400},
		{name: "other-endpoint-versions", attack: get(w.bravo, objectPath(w.ag, w.alphaColl, w.unreleased[1].ID)+"versions/"+q(cur)), twin: get(w.bravo, objectPath(w.ag, w.alphaColl, w.unreleased[1].ID)+"versions/"+q(forged)), status: 400},
		{name: "other-api-root", attack: get(w.bravo, objectsPath("shared", w.alphaColl)+q(cur)), twin: get(w.bravo, objectsPath("shared", w.alphaColl)+q(forged)), status: 400},
		{name: "truncated", attack: get(w.bravo, objs+q(cur[:len(cur)-1])), twin: get(w.bravo, objs+q(forged)), status: 400},
		{name: "extended", attack: get(w.bravo, objs+q(cur+"A")), twin: get(w.bravo, objs+q(forged)), status: 400},
		{name: "line-break", attack: get(w.bravo, objs+q(cur[:10]+"\n"+cur[10:len(cur)-1])), twin: get(w.bravo, objs+q(forged)), status: 400},
		{name: "std-base64", attack: get(w.bravo, objs+q(strings.NewReplacer("-", "+", "_", "/").Replace(cur)+"=")), twin: get(w.bravo, objs+q(forged)), status: 400},
	}
	// Each region of the layout: version, date_added, seq, mac.
	for _, i := range []int{0, 1, 6, 12, 14, 20, 24, 30, len(cur) - 2} {
		probes = append(probes, probe{name: "edited-" + strconv.Itoa(i), attack: get(w.bravo, objs+q(editCursor(cur, i))), twin: get(w.bravo, objs+q(forged)), status: 400})
	}
	w.run(t, w.hiddenFromBravo(), probes)

	// The genuine cursor, by its owner, still works and still stops at
	// the allowance.
	r := w.send(t, get(w.bravo, objs+"?limit=10&next="+url.QueryEscape(cur)))
	noLeak(t, "genuine cursor", r, w.hiddenFromBravo())
	if r.Status != 200 || !strings.Contains(string(r.Body), w.rel.ID) {
		t.Fatalf("the genuine cursor: %s", r)
	}
}

// ledgerEntries reads every ledger entry as p.
func (w *attackWorld) ledgerEntries(t *testing.T, p *Party) []reply {
	t.Helper()
	var out []reply
	for i := 0; ; i++ {
		r := w.send(t, get(p, fmt.Sprintf("/ledger/entries/%d", i)))
		if r.Status == 404 {
			return out
		}
		if r.Status != 200 || i > 500 {
			t.Fatalf("ledger entry %d: %s", i, r)
		}
		out = append(out, r)
	}
}

// TestAttackGuessIDs: every id the ledger discloses to any party —
// agreement, collection and status ids — opens nothing to a party that
// is not entitled to what it names, and answers exactly as a random id of
// the same kind.
func TestAttackGuessIDs(t *testing.T) {
	w := newAttackWorld(t)
	// statuses maps each status id to the party whose POST made it.
	type seen struct {
		agreements, collections map[string]bool
		statuses                map[string]string
	}
	s := seen{map[string]bool{}, map[string]bool{}, map[string]string{}}
	for _, r := range w.ledgerEntries(t, w.charlie) {
		var e struct {
			Entry struct {
				Actor     string            `json:"actor"`
				Agreement string            `json:"agreement"`
				Subject   string            `json:"subject"`
				Attrs     map[string]string `json:"attrs"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(r.Body, &e); err != nil {
			t.Fatal(err)
		}
		if e.Entry.Agreement != "" {
			s.agreements[e.Entry.Agreement] = true
		}
		if c := e.Entry.Attrs["collection"]; c != "" {
			s.collections[c] = true
		}
		if id, ok := strings.CutPrefix(e.Entry.Subject, "status--"); ok {
			s.statuses[id] = e.Entry.Actor
		}
	}
	if !s.agreements[w.ag] || !s.collections[w.alphaColl] || s.statuses[w.alphaStatus] != w.alpha.ID {
		t.Fatalf("the ledger did not name the ids this test expects to probe: %+v", s)
	}
	var probes []probe
	for id := range s.agreements {
		probes = append(probes,
			probe{name: "agreement-root", attack: get(w.charlie, "/taxii2/"+id+"/"), twin: get(w.charlie, "/taxii2/"+missingAgreement()+"/"), status: 404},
			probe{name: "agreement-collections", attack: get(w.charlie, "/taxii2/"+id+"/collections/"), twin: get(w.charlie, "/taxii2/"+missingAgreement()+"/collections/"), status: 404},
			probe{name: "agreement-api", attack: get(w.charlie, "/api/v1/agreements/"+id), twin: get(w.charlie, "/api/v1/agreements/"+missingAgreement()), status: 404},
			probe{name: "agreement-balance", attack: get(w.charlie, "/api/v1/agreements/"+id+"/balance"), twin: get(w.charlie, "/api/v1/agreements/"+missingAgreement()+"/balance"), status: 404},
		)
	}
	for id := range s.collections {
		for _, root := range []string{w.ag, "shared"} {
			probes = append(probes,
				probe{name: "collection-" + root, attack: get(w.charlie, "/taxii2/"+root+"/collections/"+id+"/"), twin: get(w.charlie, "/taxii2/"+root+"/collections/"+missingCollection()+"/"), status: 404},
				probe{name: "collection-objects-" + root, attack: get(w.charlie, objectsPath(root, id)), twin: get(w.charlie, objectsPath(root, missingCollection())), status: 404},
			)
		}
	}
	for id, requester := range s.statuses {
		for _, p := range []*Party{w.alpha, w.bravo, w.charlie} {
			if p.ID == requester {
				continue
			}
			for _, root := range []string{w.ag, "shared"} {
				probes = append(probes, probe{name: "status-" + p.Name + "-" + root[:6],
					attack: get(p, "/taxii2/"+root+"/status/"+id+"/"), twin: get(p, "/taxii2/"+root+"/status/"+missingStatus()+"/"), status: 404})
			}
		}
	}
	// Object ids guessed outright.
	for _, id := range []string{w.released[0].ID, w.unreleased[2].ID, w.bravoObj.ID} {
		probes = append(probes, probe{name: "object-" + strings.SplitN(id, "--", 2)[0],
			attack: get(w.charlie, objectPath(w.ag, w.alphaColl, id)), twin: get(w.charlie, objectPath(w.ag, w.alphaColl, missingObject())), status: 404})
	}
	w.run(t, w.hiddenFromCharlie(), probes)
}

// TestAttackStatus: a status resource is its requester's alone. Another
// party asking for it, under any API root, gets the 404 of a status that
// never existed, and the status's object ids never come back.
func TestAttackStatus(t *testing.T) {
	w := newAttackWorld(t)
	if r := w.send(t, get(w.alpha, "/taxii2/"+w.ag+"/status/"+w.alphaStatus+"/")); r.Status != 200 || !strings.Contains(string(r.Body), w.unreleased[3].ID) {
		t.Fatalf("alpha cannot read its own status: %s", r)
	}
	st := func(p *Party, root, id string) req { return get(p, "/taxii2/"+root+"/status/"+id+"/") }
	var probes []probe
	for _, p := range []*Party{w.bravo, w.charlie} {
		for _, root := range []string{w.ag, "shared", missingAgreement()} {
			probes = append(probes, probe{name: p.Name + "-" + root[:6], attack: st(p, root, w.alphaStatus), twin: st(p, root, missingStatus()), status: 404})
		}
		probes = append(probes, probe{name: p.Name + "-uppercase", attack: st(p, w.ag, strings.ToUpper(w.alphaStatus)), twin: st(p, w.ag, strings.ToUpper(missingStatus())), status: 404})
	}
	// Alpha's own status asked for under the wrong API root.
	probes = append(probes, probe{name: "alpha-wrong-root", attack: st(w.alpha, "shared", w.alphaStatus), twin: st(w.alpha, "shared", missingStatus()), status: 404})
	w.run(t, w.hiddenFromCharlie(), probes)
}

// TestAttackAPIRoots: an API root exists for a party only if it holds a
// collection the party may use. Discovery lists no other, and every
// endpoint of another agreement's root answers as a root that does not
// exist.
func TestAttackAPIRoots(t *testing.T) {
	w := newAttackWorld(t)
	for _, c := range []struct {
		p         *Party
		want, not []string
	}{
		{w.alpha, []string{w.ag, "shared"}, nil},
		{w.bravo, []string{w.ag, "shared"}, nil},
		{w.charlie, nil, []string{w.ag, "shared"}},
	} {
		r := w.send(t, get(c.p, "/taxii2/"))
		var d struct {
			APIRoots []string `json:"api_roots"`
		}
		if r.Status != 200 || json.Unmarshal(r.Body, &d) != nil {
			t.Fatalf("%s's discovery: %s", c.p.Name, r)
		}
		if len(d.APIRoots) != len(c.want) {
			t.Errorf("%s's discovery lists %v, want %v", c.p.Name, d.APIRoots, c.want)
		}
		for _, root := range c.want {
			if !strings.Contains(string(r.Body), "/taxii2/"+root+"/") {
				t.Errorf("%s's discovery lacks %s: %s", c.p.Name, root, r)
			}
		}
		for _, root := range c.not {
			if strings.Contains(string(r.Body), root) {
				t.Errorf("%s's discovery names %s: %s", c.p.Name, root, r)
			}
		}
	}
	missing := missingAgreement()
	var probes []probe
	for _, root := range []string{w.ag, "shared"} {
		for _, suffix := range []string{"", "collections/", "status/" + w.alphaStatus + "/", "collections/" + w.alphaColl + "/objects/",
			"no-such-endpoint/"} {
			probes = append(probes, probe{name: root[:6] + "/" + suffix, attack: get(w.charlie, "/taxii2/"+root+"/"+suffix),
				twin: get(w.charlie, "/taxii2/"+missing+"/"+strings.ReplaceAll(suffix, w.alphaColl, missingCollection())), status: 404})
		}
	}
	w.run(t, w.hiddenFromCharlie(), probes)
	// Bravo's list of the agreement's collections names its own and
	// alpha's, and the operator root only the collections bravo may use.
	r := w.send(t, get(w.bravo, "/taxii2/shared/collections/"))
	noLeak(t, "bravo's operator collections", r, w.hiddenFromBravo())
	if r.Status != 200 || strings.Contains(string(r.Body), w.opAlpha) || !strings.Contains(string(r.Body), w.opShared) {
		t.Errorf("bravo's operator collections: %s", r)
	}
}
