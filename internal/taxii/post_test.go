package taxii_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/taxii"
)

// snapshot is everything a party can read from a collection, every version,
// as raw bytes in date_added order.
func (e *env) snapshot(token, coll string) []byte {
	e.t.Helper()
	var all [][]byte
	for _, p := range e.walk(token, e.collURL(coll, "objects/"), "?match[version]=all&limit=1000") {
		for _, o := range p.Objects {
			all = append(all, o)
		}
	}
	return bytes.Join(all, []byte("\n"))
}

func TestPostPartialFailure(t *testing.T) {
	w := newWorld(t)
	valid := identity(1, "2021-01-01T00:00:00.000Z")
	noPattern := `{"type":"indicator","spec_version":"2.1","id":"indicator--` + uuid(2) + `","created":"2020-01-01T00:00:00.000Z","modified":"2020-01-01T00:00:00.000Z","pattern_type":"stix","valid_from":"2020-01-01T00:00:00Z"}`
	modifiedBeforeCreated := identity(3, "2019-01-01T00:00:00.000Z")
	stix20 := `{"type":"identity","id":"identity--` + uuid(4) + `","created":"2016-08-08T15:50:10.983Z","modified":"2016-08-08T15:50:10.983Z","name":"Franistan","identity_class":"organization"}`
	customNoX := strings.Replace(identity(5, "2021-01-01T00:00:00.000Z"), `"name"`, `"secret_sauce":1,"name"`, 1)
	badPattern := strings.Replace(indicator(6, "2021-01-01T00:00:00.000Z"), `[ipv4-addr:value = '10.0.0.6']`, `[ipv4-addr:value = `, 1)
	r := w.post(w.alpha.token, w.feed, valid, noPattern, modifiedBeforeCreated, stix20, `42`, `null`, customNoX, badPattern)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var st status
	r.json(t, &st)
	if st.Status != "complete" || st.TotalCount != 8 || st.SuccessCount != 1 || st.FailureCount != 7 || st.PendingCount != 0 {
		t.Fatalf("counts: %s", r.body)
	}
	if st.Successes[0].ID != "identity--"+uuid(1) || st.Successes[0].Version != "2021-01-01T00:00:00.000Z" {
		t.Errorf("success %+v", st.Successes[0])
	}
	// Each failure names the object (by id, or by position when it has
	// none) and the specific reason.
	want := []struct{ id, reason string }{
		{"indicator--" + uuid(2), "pattern"},
		{"identity--" + uuid(3), "modified"},
		{"identity--" + uuid(4), "spec_version"},
		{"", "objects[4]"},
		{"", "objects[5]"},
		{"identity--" + uuid(5), "secret_sauce"},
		{"indicator--" + uuid(6), "pattern"},
	}
	for i, f := range st.Failures {
		if f.ID != want[i].id || !strings.Contains(f.Message, want[i].reason) {
			t.Errorf("failure %d: %+v, want id %q and a message about %q", i, f, want[i].id, want[i].reason)
		}
		for _, leak := range []string{"exchange:", "store:", "sqlite", "goroutine"} {
			if strings.Contains(f.Message, leak) {
				t.Errorf("failure %d leaks internals: %q", i, f.Message)
			}
		}
	}
	env, _ := w.objects(w.alpha.token, w.feed, "?match[version]=all")
	if got := keys(t, env.Objects); !slices.Equal(got, []string{"identity--" + uuid(1) + "@2021-01-01T00:00:00.000Z"}) {
		t.Errorf("stored %q", got)
	}
}

func TestPostIdempotentAndDuplicates(t *testing.T) {
	w := newWorld(t)
	a := identity(1, "2021-01-01T00:00:00.000Z")
	w.mustPost(w.alpha.token, w.feed, a)
	before := w.snapshot(w.alpha.token, w.feed)
	r := w.post(w.alpha.token, w.feed, a)
	var st status
	r.json(t, &st)
	if r.status != http.StatusAccepted || st.SuccessCount != 1 || st.FailureCount != 0 || st.Successes[0].Message == "" {
		t.Errorf("re-post: %d %s", r.status, r.body)
	}
	if after := w.snapshot(w.alpha.token, w.feed); !bytes.Equal(before, after) {
		t.Errorf("re-posting an id and modified already stored changed the collection")
	}
	// The same object twice in one envelope is stored once; two versions
	// of one id in one envelope are both stored.
	b := identity(2, "2021-01-01T00:00:00.000Z")
	b2 := identity(2, "2022-01-01T00:00:00.000Z")
	r = w.post(w.alpha.token, w.feed, b, b, b2)
	r.json(t, &st)
	if st.SuccessCount != 3 || st.FailureCount != 0 {
		t.Errorf("duplicates in one envelope: %s", r.body)
	}
	r = w.get(w.alpha.token, w.collURL(w.feed, "objects/identity--"+uuid(2)+"/versions/"))
	var vs struct{ Versions []string }
	r.json(t, &vs)
	if !slices.Equal(vs.Versions, []string{"2021-01-01T00:00:00.000Z", "2022-01-01T00:00:00.000Z"}) {
		t.Errorf("versions %s", r.body)
	}
}

func TestFailedPostLeavesStoreIntact(t *testing.T) {
	w := newWorld(t)
	w.mustPost(w.alpha.token, w.feed, identity(1, "2021-01-01T00:00:00.000Z"), indicator(2, "2021-01-01T00:00:00.000Z"))
	before := w.snapshot(w.alpha.token, w.feed)
	replace := identity(1, "2021-01-01T00:00:00.000Z") // same id, version, other bytes would be a tamper
	replace = strings.Replace(replace, "party 1", "tampered", 1)
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	// A body that is not JSON was not understood (400); JSON that is not a
	// usable envelope could not be processed (422, TAXII 2.1 section 5.5).
	const bad, unprocessable = http.StatusBadRequest, http.StatusUnprocessableEntity
	for _, tc := range []struct {
		name, body, reason string
		status             int
	}{
		{"not JSON", `{"objects":[`, "not valid JSON", bad},
		{"trailing garbage", string(envelopeOf(replace)) + "x", "JSON", bad},
		{"bundle", `{"type":"bundle","id":"bundle--` + uuid(9) + `","objects":[` + replace + `]}`, "bundle", unprocessable},
		{"array", `[` + replace + `]`, "envelope", unprocessable},
		{"string", `"objects"`, "envelope", unprocessable},
		{"no objects", `{"more":false}`, "objects", unprocessable},
		{"objects not array", `{"objects":{"a":1}}`, "array", unprocessable},
		{"objects null", `{"objects":null}`, "empty", unprocessable},
		{"empty objects", `{"objects":[]}`, "empty", unprocessable},
		{"unknown envelope key", `{"objects":[` + replace + `],"spec_version":"2.1"}`, "spec_version", unprocessable},
		{"deeply nested envelope", `{"objects":` + deep + `}`, "depth", bad},
		{"deeply nested body", deep, "depth", bad},
		{"empty body", ``, "JSON", bad},
		{"invalid UTF-8", "{\"objects\":[\"\xff\"]}", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.do(req{method: http.MethodPost, url: w.collURL(w.feed, "objects/"), token: w.alpha.token, body: []byte(tc.body)})
			if tc.name == "invalid UTF-8" {
				// A JSON-valid envelope with a bad object: 202 and a failure.
				if r.status != http.StatusAccepted && r.status != http.StatusBadRequest {
					t.Errorf("status %d: %s", r.status, r.body)
				}
				return
			}
			desc := errorResource(t, r, tc.status)
			if !strings.Contains(desc, tc.reason) {
				t.Errorf("description %q does not mention %q", desc, tc.reason)
			}
		})
	}
	if after := w.snapshot(w.alpha.token, w.feed); !bytes.Equal(before, after) {
		t.Errorf("failed requests changed the collection:\n%s\n%s", before, after)
	}
	// A valid object with the stored id and version but other bytes is
	// acknowledged as already stored and does not replace the stored bytes.
	w.mustPost(w.alpha.token, w.feed, replace)
	if after := w.snapshot(w.alpha.token, w.feed); !bytes.Equal(before, after) {
		t.Errorf("a re-post with other bytes replaced the stored version")
	}
}

func TestPostLargeAndNested(t *testing.T) {
	w := newWorld(t)
	big := strings.Replace(identity(1, "2021-01-01T00:00:00.000Z"), `"name":"party 1"`, `"name":"party 1","description":"`+strings.Repeat("x", 2<<20)+`"`, 1)
	nested := strings.Replace(identity(2, "2021-01-01T00:00:00.000Z"), `"name"`, `"x_deep":`+strings.Repeat(`{"a":`, 500)+`1`+strings.Repeat(`}`, 500)+`,"name"`, 1)
	unicode := strings.Replace(identity(3, "2021-01-01T00:00:00.000Z"), "party 3", `\u00e9t\u00e9 – 夏 \ud83d\ude00`, 1)
	r := w.post(w.alpha.token, w.feed, big, nested, unicode)
	var st status
	r.json(t, &st)
	if r.status != http.StatusAccepted || st.SuccessCount != 2 || st.FailureCount != 1 || st.Failures[0].ID != "identity--"+uuid(2) ||
		!strings.Contains(st.Failures[0].Message, "nest") {
		t.Fatalf("%d %.600s", r.status, r.body)
	}
	for _, tc := range []struct{ id, raw string }{{"identity--" + uuid(1), big}, {"identity--" + uuid(3), unicode}} {
		r := w.get(w.alpha.token, w.collURL(w.feed, "objects/"+tc.id+"/"))
		if want := `{"more":false,"objects":[` + tc.raw + `]}`; string(r.body) != want {
			t.Errorf("%s does not come back byte-identical (%d bytes, want %d)", tc.id, len(r.body), len(want))
		}
	}
}

func TestPostAccess(t *testing.T) {
	w := newWorld(t)
	// Writing without reading is allowed; reading without writing is not.
	if r := w.post(w.charlie.token, w.feed, identity(1, "2021-01-01T00:00:00.000Z")); r.status != http.StatusAccepted {
		t.Errorf("writer-only: %d %s", r.status, r.body)
	}
	errorResource(t, w.post(w.bravo.token, w.feed, identity(2, "2021-01-01T00:00:00.000Z")), http.StatusForbidden)
	errorResource(t, w.get(w.charlie.token, w.collURL(w.feed, "objects/")), http.StatusForbidden)
	errorResource(t, w.post(w.outsider.token, w.feed, identity(3, "2021-01-01T00:00:00.000Z")), http.StatusNotFound)
	if env, _ := w.objects(w.alpha.token, w.feed, ""); len(env.Objects) != 1 {
		t.Errorf("%d objects stored, want 1", len(env.Objects))
	}
}

func TestStatusResource(t *testing.T) {
	w := newWorld(t)
	w.setClock(time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC))
	r := w.post(w.alpha.token, w.feed, identity(1, "2021-01-01T00:00:00.000Z"), `{"type":"identity"}`)
	w.setClock(time.Time{})
	var posted status
	r.json(t, &posted)
	if posted.RequestTimestamp != "2026-05-01T12:00:00.123456Z" || posted.ID == "" {
		t.Fatalf("status %s", r.body)
	}
	check := func() {
		t.Helper()
		// The port changes on restart.
		statusURL := w.base + taxii.Prefix + exchange.OperatorRoot + "/status/" + posted.ID + "/"
		r := w.get(w.alpha.token, statusURL)
		if r.status != http.StatusOK {
			t.Fatalf("status resource: %d %s", r.status, r.body)
		}
		var got status
		r.json(t, &got)
		if fmt.Sprint(got) != fmt.Sprint(posted) {
			t.Errorf("status resource\n got %+v\nwant %+v", got, posted)
		}
		// Only the party that made the request sees it — not another reader
		// of the collection, not an outsider; they get the missing-status 404.
		missing := w.get(w.bravo.token, w.base+taxii.Prefix+exchange.OperatorRoot+"/status/"+uuid(77)+"/")
		for _, who := range []member{w.bravo, w.charlie} {
			r := w.get(who.token, statusURL)
			errorResource(t, r, http.StatusNotFound)
			if !bytes.Equal(r.body, missing.body) {
				t.Errorf("%s: %s differs from a missing status's %s", who.name, r.body, missing.body)
			}
		}
		errorResource(t, w.get(w.outsider.token, statusURL), http.StatusNotFound)
	}
	check()
	w.restart()
	check()
}
