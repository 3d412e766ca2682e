package taxii_test

import (
	"bytes"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/taxii"
)

// sameResponse fails unless a and b are byte-identical in status, headers
// (except Date) and body.
func sameResponse(t *testing.T, what string, a, b resp) {
	t.Helper()
	if a.status != b.status || !bytes.Equal(a.body, b.body) {
		t.Errorf("%s: %d %s\n  vs %d %s", what, a.status, a.body, b.status, b.body)
	}
	ha, hb := a.header.Clone(), b.header.Clone()
	ha.Del("Date")
	hb.Del("Date")
	if !maps.EqualFunc(ha, hb, slices.Equal) {
		t.Errorf("%s: headers differ:\n  %v\n  %v", what, ha, hb)
	}
}

// TestNotAllowedLooksLikeMissing checks the design invariant that a party
// without access to a collection cannot tell it from one that does not
// exist, whatever endpoint, method, filter or body it tries.
func TestNotAllowedLooksLikeMissing(t *testing.T) {
	w := newWorld(t)
	obj := "indicator--" + uuid(1)
	w.mustPost(w.alpha.token, w.feed, indicator(1, "2021-01-01T00:00:00.000Z"))
	w.mustPost(w.bravo.token, w.other, indicator(1, "2021-01-01T00:00:00.000Z"))
	missing := uuid(0xdead)
	body := envelopeOf(indicator(2, "2021-01-01T00:00:00.000Z"))
	type probe struct {
		method, suffix string
		header         map[string]string
		body           []byte
	}
	probes := []probe{
		{method: http.MethodGet, suffix: ""},
		{method: http.MethodGet, suffix: "objects/"},
		{method: http.MethodGet, suffix: "objects/?match[type]=indicator&limit=1"},
		{method: http.MethodGet, suffix: "objects/?match[version]=all&added_after=2020-01-01T00:00:00Z"},
		{method: http.MethodGet, suffix: "objects/?next=AAAA"},
		{method: http.MethodGet, suffix: "objects/?match[type]=BAD"},
		{method: http.MethodGet, suffix: "objects/", header: map[string]string{"Accept": "application/stix+json;version=2.1"}},
		{method: http.MethodGet, suffix: "objects/", header: map[string]string{"Accept": "application/taxii+json;version=2.0"}},
		{method: http.MethodGet, suffix: "manifest/"},
		{method: http.MethodGet, suffix: "manifest/?match[id]=" + obj},
		{method: http.MethodGet, suffix: "objects/" + obj + "/"},
		{method: http.MethodGet, suffix: "objects/" + obj + "/?match[version]=all"},
		{method: http.MethodGet, suffix: "objects/" + obj + "/versions/"},
		{method: http.MethodGet, suffix: "objects/not-an-id/"},
		{method: http.MethodDelete, suffix: "objects/" + obj + "/"},
		{method: http.MethodDelete, suffix: "objects/" + obj + "/?match[version]=first"},
		{method: http.MethodPost, suffix: "objects/", body: body},
		{method: http.MethodPost, suffix: "objects/", body: []byte("not json")},
		{method: http.MethodPost, suffix: "objects/", body: body, header: map[string]string{"Content-Type": "application/json"}},
		{method: http.MethodPost, suffix: "objects/?x=1", body: body},
		{method: http.MethodPut, suffix: "objects/", body: body},
		{method: http.MethodPost, suffix: "", body: body},
		{method: http.MethodGet, suffix: "nothing/"},
		{method: http.MethodGet, suffix: "collections"},
	}
	for _, who := range []member{w.outsider, w.alpha} {
		// alpha sees the API root but not "other"; the outsider sees nothing.
		hidden := w.feed
		if who == w.alpha {
			hidden = w.other
		}
		for _, p := range probes {
			t.Run(who.name+" "+p.method+" "+p.suffix, func(t *testing.T) {
				do := func(coll string) resp {
					return w.do(req{method: p.method, url: w.collURL(coll, p.suffix), token: who.token, header: p.header, body: p.body})
				}
				a, b := do(hidden), do(missing)
				if a.status < 400 {
					t.Fatalf("hidden collection answered %d: %s", a.status, a.body)
				}
				sameResponse(t, "hidden vs missing collection", a, b)
			})
		}
	}
	// An API root the party has nothing in looks like one that does not exist.
	for _, suffix := range []string{"", "collections/", "status/" + uuid(3) + "/", "collections/" + w.feed + "/objects/"} {
		a := w.get(w.outsider.token, w.base+taxii.Prefix+exchange.OperatorRoot+"/"+suffix)
		b := w.get(w.outsider.token, w.base+taxii.Prefix+"nosuchroot/"+suffix)
		sameResponse(t, "hidden vs missing root "+suffix, a, b)
	}
	// Nothing was written through any of this.
	if env, _ := w.objects(w.alpha.token, w.feed, "?match[version]=all"); len(env.Objects) != 1 {
		t.Errorf("feed holds %d objects, want 1", len(env.Objects))
	}
	if env, _ := w.objects(w.bravo.token, w.other, "?match[version]=all"); len(env.Objects) != 1 {
		t.Errorf("other holds %d objects, want 1", len(env.Objects))
	}
}
