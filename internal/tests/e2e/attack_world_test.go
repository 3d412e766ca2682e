package e2e

// The authorization attack suite (issue 9, item 2): black-box attacks on a
// real server with three parties. alpha and bravo trade under an agreement
// in which bravo may read only part of what alpha contributed; charlie is
// outside it; the operator keeps collections with mixed access. Every case
// asserts that no byte of protected data comes back, and that a refusal is
// byte-for-byte the answer for a resource that does not exist at all.
//
// This file holds the world every family starts from and the two checks
// (noLeak, identical); the families live in attack_*_test.go.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/party"
)

// secret is a STIX object whose every identifying byte can be searched for.
type secret struct {
	ID, Name, Value string
	Raw             json.RawMessage
}

// newIndicator makes an indicator whose name and pattern value carry tag,
// so that searching a response for tag finds either.
func newIndicator(tag string, n int, modified string) secret {
	s := secret{ID: "indicator--" + party.NewID(""), Name: fmt.Sprintf("name-%s-%d", tag, n), Value: fmt.Sprintf("%s-%d.example.invalid", tag, n)}
	s.Raw = indicatorRaw(s, modified)
	return s
}

func indicatorRaw(s secret, modified string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":%q,"name":%q,"pattern":"[domain-name:value = '%s']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
		s.ID, modified, s.Name, s.Value))
}

const firstVersion = "2026-01-01T00:00:00.000Z"

// attackWorld is the scene of every family.
type attackWorld struct {
	s                     *Server
	alpha, bravo, charlie *Party
	doc                   *agreement.Document
	ag                    string // agreement id and TAXII API root
	alphaColl, bravoColl  string // each side's contributions
	// Alpha's contributions: bravo's allowance (grace 3 + 1 credit) covers
	// released (three indicators and rel), not unreleased.
	released   []secret
	rel        secret // released relationship whose target_ref is unreleased[0]
	unreleased []secret
	bravoObj   secret // bravo's one contribution
	// unreleased[1] has a second version, posted later.
	secondVersion string
	alphaStatus   string // status resource of alpha's first POST
	// Operator collections in the "shared" root: opAlpha is alpha's alone;
	// opShared is read by alpha and bravo, written by alpha.
	opAlpha, opShared string
	opSecret          []secret // in opAlpha
	opPublic          secret   // in opShared
	// Tags in names and pattern values, by who may see them.
	tagReleased, tagUnreleased, tagBravo, tagOp, tagShared string
	hc                                                     *http.Client
}

// newAttackWorld builds the scene through the real interfaces.
func newAttackWorld(t *testing.T) *attackWorld {
	t.Helper()
	w := &attackWorld{s: Start(t)}
	w.hc = &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	w.alpha, w.bravo, w.charlie = w.s.NewParty(t, "alpha"), w.s.NewParty(t, "bravo"), w.s.NewParty(t, "charlie")
	tag := func() string { return "t" + strings.ReplaceAll(party.NewID("")[:13], "-", "") }
	w.tagReleased, w.tagUnreleased, w.tagBravo, w.tagOp, w.tagShared = tag(), tag(), tag(), tag(), tag()

	w.doc = Document(t, w.alpha, w.bravo, func(m map[string]any) {
		m["scope"] = map[string]any{"types": []string{"indicator", "relationship"}, "max_tlp": "amber", "unmarked": "allow"}
		m["reciprocity"] = map[string]any{"ratio": "1:1", "grace": 3}
	})
	w.ag = Activate(t, w.alpha, w.bravo, w.doc).ID
	w.alphaColl, w.bravoColl = Collections(t, w.alpha, w.ag)

	for i := range 3 {
		w.released = append(w.released, newIndicator(w.tagReleased, i, firstVersion))
	}
	for i := range 4 {
		w.unreleased = append(w.unreleased, newIndicator(w.tagUnreleased, i, firstVersion))
	}
	w.rel = secret{ID: "relationship--" + party.NewID("")}
	w.rel.Raw = json.RawMessage(fmt.Sprintf(`{"type":"relationship","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"relationship_type":"related-to","source_ref":%q,"target_ref":%q}`,
		w.rel.ID, firstVersion, firstVersion, w.released[0].ID, w.unreleased[0].ID))
	batch := []json.RawMessage{}
	for _, s := range w.released {
		batch = append(batch, s.Raw)
	}
	batch = append(batch, w.rel.Raw)
	for _, s := range w.unreleased {
		batch = append(batch, s.Raw)
	}
	st, err := w.alpha.C.AddObjects(ctx, w.ag, w.alphaColl, batch)
	if err != nil || st.SuccessCount != len(batch) {
		t.Fatalf("alpha publishes: %+v, %v", st, err)
	}
	w.alphaStatus = st.ID
	w.secondVersion = "2026-02-01T00:00:00.000Z"
	if st, err := w.alpha.C.AddObjects(ctx, w.ag, w.alphaColl, []json.RawMessage{indicatorRaw(w.unreleased[1], w.secondVersion)}); err != nil || st.SuccessCount != 1 {
		t.Fatalf("alpha's second version: %+v, %v", st, err)
	}
	w.bravoObj = newIndicator(w.tagBravo, 0, firstVersion)
	if st, err := w.bravo.C.AddObjects(ctx, w.ag, w.bravoColl, []json.RawMessage{w.bravoObj.Raw}); err != nil || st.SuccessCount != 1 {
		t.Fatalf("bravo publishes: %+v, %v", st, err)
	}
	if got := ReadAll(t, w.bravo, w.ag, w.alphaColl, 2); !slices.Equal(got, w.releasedIDs()) {
		t.Fatalf("bravo reads %v, want the released %v", got, w.releasedIDs())
	}

	ex := w.s.Srv.Ex
	c, err := ex.CreateCollection(ctx, "Alpha's private notes", "", []string{w.alpha.ID}, []string{w.alpha.ID})
	if err != nil {
		t.Fatal(err)
	}
	w.opAlpha = c.ID
	if c, err = ex.CreateCollection(ctx, "Operator bulletin", "", []string{w.alpha.ID, w.bravo.ID}, []string{w.alpha.ID}); err != nil {
		t.Fatal(err)
	}
	w.opShared = c.ID
	for i := range 2 {
		w.opSecret = append(w.opSecret, newIndicator(w.tagOp, i, firstVersion))
	}
	if _, err := w.alpha.C.AddObjects(ctx, "shared", w.opAlpha, []json.RawMessage{w.opSecret[0].Raw, w.opSecret[1].Raw}); err != nil {
		t.Fatal(err)
	}
	w.opPublic = newIndicator(w.tagShared, 0, firstVersion)
	if _, err := w.alpha.C.AddObjects(ctx, "shared", w.opShared, []json.RawMessage{w.opPublic.Raw}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *attackWorld) releasedIDs() []string {
	ids := []string{}
	for _, s := range w.released {
		ids = append(ids, s.ID)
	}
	return append(ids, w.rel.ID)
}

// hiddenFromBravo is everything bravo must never receive. unreleased[0]'s
// id is not in it: the released relationship names it, legitimately.
func (w *attackWorld) hiddenFromBravo() []string {
	n := []string{w.tagUnreleased, w.tagOp}
	for _, s := range w.unreleased[1:] {
		n = append(n, s.ID)
	}
	for _, s := range w.opSecret {
		n = append(n, s.ID)
	}
	return n
}

// hiddenFromCharlie is every object of the world: charlie is in no
// agreement and in no operator collection.
func (w *attackWorld) hiddenFromCharlie() []string {
	n := []string{w.tagReleased, w.tagUnreleased, w.tagBravo, w.tagOp, w.tagShared, w.rel.ID, w.bravoObj.ID, w.opPublic.ID}
	for _, set := range [][]secret{w.released, w.unreleased, w.opSecret} {
		for _, s := range set {
			n = append(n, s.ID)
		}
	}
	return n
}

// reply is a response as the attacker saw it.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) String() string {
	return fmt.Sprintf("%d %v %.400s", r.Status, r.Header, r.Body)
}

// req describes one request; Auth is the whole Authorization header value.
type req struct {
	Method, Path, Auth string
	Body               []byte
	Header             map[string]string
}

func bearer(p *Party) string { return "Bearer " + p.Token }

// get is a TAXII GET as p.
func get(p *Party, path string) req { return req{Method: "GET", Path: path, Auth: bearer(p)} }

// send makes the request on the world's server without following
// redirects.
func (w *attackWorld) send(t *testing.T, q req) reply {
	t.Helper()
	method := q.Method
	if method == "" {
		method = "GET"
	}
	r, err := http.NewRequestWithContext(ctx, method, w.s.URL+q.Path, bytes.NewReader(q.Body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, q.Path, err)
	}
	if q.Auth != "" {
		r.Header.Set("Authorization", q.Auth)
	}
	if strings.HasPrefix(q.Path, "/taxii2/") {
		r.Header.Set("Accept", "application/taxii+json;version=2.1")
		if method == "POST" {
			r.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		}
	} else if len(q.Body) > 0 {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range q.Header {
		r.Header.Set(k, v)
	}
	resp, err := w.hc.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, q.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", method, q.Path, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// sendRaw writes bytes on a fresh connection, for requests a Go client
// refuses to make (control characters in headers).
func (w *attackWorld) sendRaw(t *testing.T, raw string) reply {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(w.s.URL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("raw request %q: %v", raw, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// noLeak fails when any needle appears in r's body or headers, or when the
// server failed (a 500 is never an acceptable answer to an attack).
func noLeak(t *testing.T, what string, r reply, needles []string) {
	t.Helper()
	if r.Status >= 500 {
		t.Errorf("%s: server error %s", what, r)
	}
	var hdr strings.Builder
	for k, vs := range r.Header {
		hdr.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
	}
	for _, n := range needles {
		if n == "" {
			continue
		}
		if bytes.Contains(r.Body, []byte(n)) {
			t.Errorf("%s: body carries protected %q: %s", what, n, r)
		}
		if strings.Contains(hdr.String(), n) {
			t.Errorf("%s: headers carry protected %q: %s", what, n, r)
		}
	}
}

// identical fails unless got and want have the same status, body and
// headers (Date aside, which only says when).
func identical(t *testing.T, what string, got, want reply) {
	t.Helper()
	if got.Status != want.Status || !bytes.Equal(got.Body, want.Body) {
		t.Errorf("%s: differs from the answer for a missing resource:\n got %s\nwant %s", what, got, want)
		return
	}
	g, wn := got.Header.Clone(), want.Header.Clone()
	g.Del("Date")
	wn.Del("Date")
	if len(g) != len(wn) {
		t.Errorf("%s: headers differ from a missing resource's:\n got %v\nwant %v", what, g, wn)
		return
	}
	for k, v := range g {
		if !slices.Equal(v, wn[k]) {
			t.Errorf("%s: header %s is %q, for a missing resource %q", what, k, v, wn[k])
		}
	}
}

// probe is one attack and the request for a truly missing resource of the
// same kind that it must be indistinguishable from.
type probe struct {
	name         string
	attack, twin req
	// status, when set, is the status both must have.
	status int
}

// run sends each probe and its twin and checks both answers.
func (w *attackWorld) run(t *testing.T, needles []string, probes []probe) {
	t.Helper()
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			got, want := w.send(t, p.attack), w.send(t, p.twin)
			t.Logf("%s %s → %d", p.attack.Method, p.attack.Path, got.Status)
			noLeak(t, "attack", got, needles)
			noLeak(t, "twin", want, needles)
			if p.status != 0 && got.Status != p.status {
				t.Errorf("status %d, want %d: %s", got.Status, p.status, got)
			}
			identical(t, p.name, got, want)
		})
	}
}

// Paths.
func objectsPath(root, coll string) string {
	return "/taxii2/" + root + "/collections/" + coll + "/objects/"
}
func objectPath(root, coll, id string) string {
	return objectsPath(root, coll) + id + "/"
}

// missing ids of each kind.
func missingCollection() string { return party.NewID("") }
func missingObject() string     { return "indicator--" + party.NewID("") }
func missingStatus() string     { return party.NewID("") }
func missingAgreement() string  { return agreement.NewID() }
