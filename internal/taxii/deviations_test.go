package taxii_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/taxii"
)

// Conformance tests for points where parley once deviated from the TAXII 2.1
// OASIS Standard in ways existing clients notice (issue 16). Each failed on
// the code before the fix.

// keysOf returns the top-level member names of a JSON object.
func keysOf(t *testing.T, r resp) []string {
	t.Helper()
	var m map[string]json.RawMessage
	r.json(t, &m)
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestDeleteAnswersWithTAXIIMediaType: section 5.7 (Delete An Object)
// answers 200 with Content-Type application/taxii+json;version=2.1, which
// the OASIS Python client checks on every response (section 3.1).
func TestDeleteAnswersWithTAXIIMediaType(t *testing.T) {
	w := newWorld(t)
	w.mustPost(w.alpha.token, w.feed, identity(1, "2021-01-01T00:00:00.000Z"))
	r := w.do(req{method: http.MethodDelete, url: w.collURL(w.feed, "objects/identity--"+uuid(1)+"/"), token: w.alpha.token})
	if r.status != http.StatusOK {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != mediaTAXII {
		t.Errorf("DELETE answered Content-Type %q, want %q", ct, mediaTAXII)
	}
}

// TestEmptyListsAreOmitted: TAXII 2.1 forbids empty lists in its resources;
// an empty result leaves the key out (an envelope with no objects is
// {"more": false}).
func TestEmptyListsAreOmitted(t *testing.T) {
	w := newWorld(t)
	w.mustPost(w.alpha.token, w.feed, identity(1, "2021-01-01T00:00:00.000Z"))
	later := "?added_after=" + time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
	obj := "objects/identity--" + uuid(1) + "/"
	for _, tc := range []struct {
		name, url string
		token     string
		want      []string // the keys of the response
	}{
		{"objects", w.collURL(w.feed, "objects/") + later, w.alpha.token, []string{"more"}},
		{"objects by type", w.collURL(w.feed, "objects/") + "?match[type]=malware", w.alpha.token, []string{"more"}},
		{"manifest", w.collURL(w.feed, "manifest/") + later, w.alpha.token, []string{"more"}},
		{"object, no version matching", w.collURL(w.feed, obj) + "?match[version]=1999-01-01T00:00:00Z", w.alpha.token, []string{"more"}},
		{"versions", w.collURL(w.feed, obj+"versions/") + later, w.alpha.token, []string{"more"}},
		{"discovery with no API root", w.base + "/taxii2/", w.outsider.token, []string{"title"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.get(tc.token, tc.url)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if got := keysOf(t, r); !slices.Equal(got, tc.want) {
				t.Errorf("keys %q, want %q: %s", got, tc.want, r.body)
			}
			if strings.Contains(string(r.body), "[]") {
				t.Errorf("an empty list in %s", r.body)
			}
		})
	}
	// A non-empty result still carries its list.
	if got := keysOf(t, w.get(w.alpha.token, w.collURL(w.feed, "objects/"))); !slices.Equal(got, []string{"more", "objects"}) {
		t.Errorf("a non-empty envelope has keys %q", got)
	}
}

// TestFailedObjectStatusNamesItsVersion: a status resource's failures give
// each object's version, its modified (section 4.3.1), as successes do, both
// in the POST response and when the status is read back.
func TestFailedObjectStatusNamesItsVersion(t *testing.T) {
	w := newWorld(t)
	bad := strings.Replace(indicator(2, "2022-03-04T05:06:07.890Z"), `"pattern":"[ipv4-addr:value = '10.0.0.2']"`, `"pattern":"[nope"`, 1)
	noModified := `{"type":"identity","spec_version":"2.1","id":"identity--` + uuid(3) + `","created":"2020-05-06T07:08:09.000Z","name":"x"}`
	stix20 := `{"type":"identity","id":"identity--` + uuid(4) + `","created":"2016-08-08T15:50:10.983Z","modified":"2016-08-09T15:50:10.983Z","name":"Franistan","identity_class":"organization"}`
	r := w.post(w.alpha.token, w.feed, identity(1, "2021-01-01T00:00:00.000Z"), bad, noModified, stix20, `42`)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	var posted status
	r.json(t, &posted)
	want := map[string]string{
		"indicator--" + uuid(2): "2022-03-04T05:06:07.890Z",
		"identity--" + uuid(3):  "2020-05-06T07:08:09.000Z", // no modified: its created
		"identity--" + uuid(4):  "2016-08-09T15:50:10.983Z",
		"":                      "1970-01-01T00:00:00.000Z", // not an object: the version of timeless objects
	}
	check := func(where string, st status) {
		t.Helper()
		if st.FailureCount != 4 || len(st.Failures) != 4 {
			t.Fatalf("%s: %d failures, want 4: %+v", where, st.FailureCount, st.Failures)
		}
		for _, f := range st.Failures {
			if f.Version != want[f.ID] {
				t.Errorf("%s: failure %s has version %q, want %q", where, f.ID, f.Version, want[f.ID])
			}
		}
	}
	check("POST response", posted)
	var read status
	rs := w.get(w.alpha.token, w.base+taxii.Prefix+exchange.OperatorRoot+"/status/"+posted.ID+"/")
	rs.json(t, &read)
	check("status resource", read)
}

// TestNotAnEnvelopeIs422: JSON that is not a TAXII envelope could not be
// processed; section 5.5 lists 422 for that. A body that is not JSON at
// all stays a 400.
func TestNotAnEnvelopeIs422(t *testing.T) {
	w := newWorld(t)
	post := func(body string) resp {
		return w.do(req{method: http.MethodPost, url: w.collURL(w.feed, "objects/"), token: w.alpha.token, body: []byte(body)})
	}
	for _, body := range []string{
		`[` + identity(1, "2021-01-01T00:00:00.000Z") + `]`,
		`{"type":"bundle","id":"bundle--` + uuid(9) + `","objects":[` + identity(1, "2021-01-01T00:00:00.000Z") + `]}`,
		`{"more":false}`,
		`{"objects":"x"}`,
	} {
		errorResource(t, post(body), http.StatusUnprocessableEntity)
	}
	errorResource(t, post(`{"objects":[`), http.StatusBadRequest)
}

// TestUnknownFiltersAreIgnored: section 3.4 lets a server ignore a filter it
// does not support, so a client that sends match[foo] gets the same answer
// as without it, not a 400. Defined parameters an endpoint does not take
// are still refused.
func TestUnknownFiltersAreIgnored(t *testing.T) {
	w := newWorld(t)
	w.mustPost(w.alpha.token, w.feed, identity(1, "2021-01-01T00:00:00.000Z"), indicator(2, "2021-01-01T00:00:00.000Z"))
	obj := "objects/indicator--" + uuid(2) + "/"
	for _, ep := range []string{"objects/", "manifest/", obj, obj + "versions/"} {
		t.Run(ep, func(t *testing.T) {
			plain := w.get(w.alpha.token, w.collURL(w.feed, ep))
			for _, q := range []string{"?match[foo]=bar", "?match[relationships]=x&match[foo]=1&match[foo]=2", "?match[type]=indicator&match[foo]=bar"} {
				if ep != "objects/" && ep != "manifest/" && strings.Contains(q, "match[type]") {
					continue
				}
				r := w.get(w.alpha.token, w.collURL(w.feed, ep)+q)
				if r.status != http.StatusOK {
					t.Fatalf("%s: status %d: %s", q, r.status, r.body)
				}
				if !strings.Contains(q, "match[type]") && string(r.body) != string(plain.body) {
					t.Errorf("%s changed the answer:\n%s\nwithout it:\n%s", q, r.body, plain.body)
				}
			}
		})
	}
	// The filter is ignored, the one it came with is not.
	var env envelope
	w.get(w.alpha.token, w.collURL(w.feed, "objects/")+"?match[type]=indicator&match[foo]=bar").json(t, &env)
	if got := keys(t, env.Objects); len(got) != 1 || !strings.HasPrefix(got[0], "indicator--") {
		t.Errorf("match[type] beside match[foo] gave %q", got)
	}
	errorResource(t, w.get(w.alpha.token, w.collURL(w.feed, obj+"versions/")+"?match[version]=all"), http.StatusBadRequest)
	errorResource(t, w.get(w.alpha.token, w.collURL(w.feed, "objects/")+"?foo=bar"), http.StatusBadRequest)
}

// TestTokenAuthorizationScheme: the OASIS Python client's TokenAuth sends
// "Authorization: Token <token>"; it is a synonym of Bearer.
func TestTokenAuthorizationScheme(t *testing.T) {
	w := newWorld(t)
	for _, u := range []string{w.base + "/taxii2/", w.collURL(w.feed, ""), w.collURL(w.feed, "objects/")} {
		r := w.do(req{url: u, header: map[string]string{"Authorization": "Token " + w.alpha.token}})
		if r.status != http.StatusOK {
			t.Errorf("GET %s with Token auth: %d %s", u, r.status, r.body)
		}
	}
	errorResource(t, w.do(req{url: w.collURL(w.feed, ""), header: map[string]string{"Authorization": "Token " + party0(w.alpha.token)}}), http.StatusUnauthorized)
}
