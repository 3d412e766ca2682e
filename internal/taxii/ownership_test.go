package taxii_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDeleteNeedsReadAndWrite: TAXII 2.1 section 5.6 allows DELETE only to
// a party with can_read and can_write; anyone else gets 403, and the 403
// is the same bytes whether the object exists or not, so a writer that may
// not read learns nothing of which ids are there.
func TestDeleteNeedsReadAndWrite(t *testing.T) {
	w := newWorld(t)
	w.mustPost(w.alpha.token, w.feed, indicator(2, "2021-01-01T00:00:00.000Z"))
	del := func(who member, n int) resp {
		return w.do(req{method: http.MethodDelete, url: w.collURL(w.feed, "objects/indicator--"+uuid(n)+"/"), token: who.token})
	}
	for _, who := range []member{w.charlie, w.bravo} {
		t.Run(who.name, func(t *testing.T) {
			got, twin := del(who, 2), del(who, 99)
			errorResource(t, got, http.StatusForbidden)
			if got.status != twin.status || !bytes.Equal(got.body, twin.body) {
				t.Errorf("refusal for an existing object differs from a missing one's:\n%s\n%s", got.body, twin.body)
			}
		})
	}
	all, _ := w.objects(w.alpha.token, w.feed, "")
	if len(all.Objects) != 1 {
		t.Fatalf("after refused deletes the feed holds %d objects, want 1", len(all.Objects))
	}
	if r := del(w.alpha, 2); r.status != http.StatusOK {
		t.Fatalf("the owner, who reads and writes, deletes: %d %s", r.status, r.body)
	}
}

// TestObjectsBelongToFirstPoster: on a collection two parties read and
// write, an object is the party's that first posted it; the other can
// neither delete it nor add a version of it (one failure per object in
// the status resource, naming why), and the owner's later versions stay
// current. Objects dated more than exchange.MaxFutureTimestamp ahead are refused
// for everyone.
func TestObjectsBelongToFirstPoster(t *testing.T) {
	w := newWorld(t)
	both := w.collection("both", []member{w.alpha, w.charlie}, []member{w.alpha, w.charlie})
	w.mustPost(w.alpha.token, both, indicator(2, "2021-01-01T00:00:00.000Z"))
	url := w.collURL(both, "objects/indicator--"+uuid(2)+"/")

	r := w.do(req{method: http.MethodDelete, url: url, token: w.charlie.token})
	if desc := errorResource(t, r, http.StatusForbidden); !strings.Contains(desc, "first posted by another party") {
		t.Errorf("refusal does not say why: %q", desc)
	}

	r = w.post(w.charlie.token, both, indicator(2, "2022-01-01T00:00:00.000Z"), indicator(3, "2021-01-01T00:00:00.000Z"))
	var st status
	r.json(t, &st)
	if st.SuccessCount != 1 || st.FailureCount != 1 || st.Failures[0].ID != "indicator--"+uuid(2) ||
		!strings.Contains(st.Failures[0].Message, "another party first posted this object id") {
		t.Errorf("charlie versions alpha's object: %s", r.body)
	}

	st = status{}
	far := w.post(w.alpha.token, both, indicator(2, "9999-12-31T23:59:59.999Z"))
	far.json(t, &st)
	if st.SuccessCount != 0 || st.FailureCount != 1 || !strings.Contains(st.Failures[0].Message, "modified 9999-12-31T23:59:59.999Z is in the future") {
		t.Errorf("far-future version: %s", far.body)
	}
	// Within the allowed skew is fine: a client clock a minute fast.
	soon := time.Now().UTC().Add(time.Minute).Format("2006-01-02T15:04:05.000Z")
	w.mustPost(w.alpha.token, both, indicator(2, soon))

	r = w.get(w.alpha.token, url)
	var env envelope
	r.json(t, &env)
	if len(env.Objects) != 1 || !strings.Contains(string(env.Objects[0]), soon) {
		t.Errorf("alpha's latest version is not its own newest: %s", r.body)
	}
	r = w.get(w.alpha.token, url+"versions/")
	if !strings.Contains(string(r.body), "2021-01-01T00:00:00.000Z") || strings.Contains(string(r.body), "2022-01-01") || strings.Contains(string(r.body), "9999") {
		t.Errorf("versions after the attempts: %s", r.body)
	}
	if r := w.do(req{method: http.MethodDelete, url: url, token: w.alpha.token}); r.status != http.StatusOK {
		t.Fatalf("owner deletes: %d %s", r.status, r.body)
	}
	// Deleting every version does not free the id for someone else.
	st = status{}
	w.post(w.charlie.token, both, indicator(2, "2021-01-01T00:00:00.000Z")).json(t, &st)
	if st.FailureCount != 1 {
		t.Errorf("charlie takes over a deleted id: %+v", st)
	}
}
