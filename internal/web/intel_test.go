package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/exchange/exchangetest"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// intelWorld is the fixture plus three parties with broad agreements:
// X–Y (ratio 1:1, grace 2) and X–Z. X gives six objects to Y, of which Y,
// having given one, reads the first three; the last three are X's
// secrets. X gives Z an object Y must never see either.
type intelWorld struct {
	*fixture
	x, y, z          party.Principal
	tokX, tokY, tokZ string
	xy, xz           string
}

func stixID(typ string, n int) string {
	return fmt.Sprintf("%s--00000000-0000-4000-9000-%012d", typ, n)
}

var (
	x1, x2, x3 = stixID("indicator", 1), stixID("malware", 2), stixID("relationship", 3)
	x4, x5, x6 = stixID("malware", 4), stixID("relationship", 5), stixID("indicator", 6)
	y1         = stixID("indicator", 11)
	z1         = stixID("malware", 21)
)

func sdo(typ, id string, fields string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":%q,"spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z"%s}`, typ, id, fields))
}

func newIntelWorld(t *testing.T) *intelWorld {
	t.Helper()
	w := &intelWorld{fixture: newFixture(t)}
	x, y, z := w.pair.NewMember(t, "cert-x"), w.pair.NewMember(t, "hostile-y"), w.pair.NewMember(t, "partner-z")
	w.x, w.tokX, w.y, w.tokY, w.z, w.tokZ = x.P, x.Token, y.P, y.Token, z.P, z.Token
	// Agreements with a broad scope (indicators, malware, relationships up
	// to TLP:RED).
	broad := exchangetest.Terms{Types: []string{"indicator", "malware", "relationship"}, MaxTLP: "red", Ratio: "1:1", Grace: 2}
	w.xy = w.pair.Activate(t, x, y, broad)
	w.xz = w.pair.Activate(t, x, z, broad)
	ind := func(id, name, pattern, extra string) json.RawMessage {
		return sdo("indicator", id, fmt.Sprintf(`,"name":%q,"pattern":%q,"pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"%s`, name, pattern, extra))
	}
	w.put(t, w.x, w.xy,
		ind(x1, "Public beacon", "[ipv4-addr:value = '192.0.2.1']", `,"labels":["shared-label"],"object_marking_refs":["`+stix.TLPGreen+`"]`),
		sdo("malware", x2, `,"name":"Quietbot","is_family":true,"description":"A modular loader","labels":["shared-label","botnet"],"object_marking_refs":["`+stix.TLPAmber+`"]`),
		sdo("relationship", x3, `,"relationship_type":"indicates","source_ref":"`+x1+`","target_ref":"`+x2+`"`),
		sdo("malware", x4, `,"name":"Secretbot","is_family":true,"description":"hidden loader","labels":["hidden-label"],"object_marking_refs":["`+stix.TLPRed+`"]`),
		sdo("relationship", x5, `,"relationship_type":"variant-of","source_ref":"`+x4+`","target_ref":"`+x2+`"`),
		ind(x6, "Secret C2", "[domain-name:value = 'secret.example.net']", ""),
	)
	w.put(t, w.y, w.xy, ind(y1, "Y beacon", "[ipv4-addr:value = '198.51.100.7']", ""))
	w.put(t, w.x, w.xz, sdo("malware", z1, `,"name":"Zonly","is_family":false,"description":"for zed only, a loader too"`))
	// A second version of a released object is released with it.
	w.put(t, w.x, w.xy, json.RawMessage(strings.Replace(string(sdo("malware", x2, `,"name":"Quietbot v2","is_family":true,"description":"A modular loader","labels":["shared-label","botnet"],"object_marking_refs":["`+stix.TLPAmber+`"]`)),
		`"modified":"2026-01-01T00:00:00.000Z"`, `"modified":"2026-02-01T00:00:00.000Z"`, 1)))
	// The premise of every access test: over TAXII, Y reads X1–X3 and its
	// own Y1, and nothing else.
	if got := w.readable(t, w.y); !slices.Equal(got, sorted(x1, x2, x3, y1)) {
		t.Fatalf("over TAXII Y reads %v, want X1–X3 and Y1: the fixture's premise is broken", got)
	}
	return w
}

func sorted(ids ...string) []string { slices.Sort(ids); return ids }

// put contributes objs as p under agreement ag, over the same service
// TAXII writes through.
func (w *intelWorld) put(t *testing.T, p party.Principal, ag string, objs ...json.RawMessage) {
	t.Helper()
	ctx := context.Background()
	cs, err := w.ex.Collections(ctx, p, ag)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Write {
			res, err := w.ex.Ingest(ctx, p, ag, c.ID, objs)
			if err != nil || len(res.Status.Failures) > 0 {
				t.Fatalf("ingest: %+v, %v", res.Status.Failures, err)
			}
			return
		}
	}
	t.Fatalf("%s has no writable collection in %s", p.Name, ag)
}

// readable is every object id p reads over TAXII in any API root it sees:
// the ground truth the dashboard must never exceed.
func (w *intelWorld) readable(t *testing.T, p party.Principal) []string {
	t.Helper()
	ctx := context.Background()
	roots, err := w.ex.APIRoots(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, root := range roots {
		cs, err := w.ex.Collections(ctx, p, root)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if !c.Read {
				continue
			}
			pg, err := w.ex.Query(ctx, p, root, store.ObjectQuery{Collection: c.ID, Versions: store.VersionFilter{All: true}, Limit: 10000})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range pg.Objects {
				seen[o.ID] = true
			}
		}
	}
	var out []string
	for id := range seen {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

var rowRE = regexp.MustCompile(`<tr class="intel-row [a-z]+" data-id="([^"]+)">`)

// listed returns the ids of every row of /ui/intel with query q, following
// the pages, and the status of the first page.
func listed(t *testing.T, b *browser, q url.Values) ([]string, int, string) {
	t.Helper()
	path := "/ui/intel"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var ids []string
	status, first := 0, ""
	for range 100 {
		resp, page := b.do("GET", path, nil)
		if status == 0 && !strings.Contains(page, `<section id="intel-results">`) && resp.StatusCode == http.StatusOK {
			t.Fatalf("%s: no results section", path)
		}
		if status == 0 {
			status, first = resp.StatusCode, page
		}
		for _, m := range rowRE.FindAllStringSubmatch(page, -1) {
			ids = append(ids, m[1])
		}
		m := regexp.MustCompile(`<a rel="next" href="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			break
		}
		path = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	return ids, status, first
}

func TestIntelFilters(t *testing.T) {
	w := newIntelWorld(t)
	b := w.browser(t)
	b.signIn(w.tokX)
	day := time.Now().UTC()
	for _, tc := range []struct {
		name string
		q    url.Values
		want []string
	}{
		{"everything", nil, []string{z1, y1, x2, x6, x5, x4, x3, x1}},
		{"given", url.Values{"dir": {"given"}}, []string{z1, x2, x6, x5, x4, x3, x1}},
		{"received", url.Values{"dir": {"received"}}, []string{y1}},
		{"per agreement", url.Values{"agreement": {w.xz}}, []string{z1}},
		{"per counterpart", url.Values{"counterpart": {w.y.PartyID}}, []string{y1, x2, x6, x5, x4, x3, x1}},
		{"type", url.Values{"type": {"malware"}}, []string{z1, x2, x4}},
		{"label", url.Values{"label": {"shared-label"}}, []string{x2, x1}},
		{"label exactly", url.Values{"label": {"shared"}}, nil},
		{"TLP", url.Values{"tlp": {"red"}}, []string{x4}},
		{"TLP amber", url.Values{"tlp": {"amber"}}, []string{x2}},
		{"search a description", url.Values{"q": {"loader"}}, []string{z1, x4, x2}},
		{"search a pattern's IP", url.Values{"q": {"192.0.2.1"}}, []string{x1}},
		{"search a pattern's domain", url.Values{"q": {"secret.example.net"}}, []string{x6}},
		{"search a new version's name", url.Values{"q": {"v2"}}, []string{x2}},
		{"search with filters", url.Values{"q": {"loader"}, "type": {"malware"}, "dir": {"given"}, "agreement": {w.xy}}, []string{x4, x2}},
		{"added from tomorrow", url.Values{"from": {day.AddDate(0, 0, 1).Format("2006-01-02")}}, nil},
		{"added up to yesterday", url.Values{"to": {day.AddDate(0, 0, -1).Format("2006-01-02")}}, nil},
		{"added today", url.Values{"from": {day.Format("2006-01-02")}, "to": {day.Format("2006-01-02")}, "type": {"malware"}}, []string{z1, x2, x4}},
	} {
		got, status, _ := listed(t, b, tc.q)
		if status != http.StatusOK {
			t.Errorf("%s: status %d", tc.name, status)
		}
		// Order within one batch follows storage; compare as sets, and
		// check that the newest (z1, stored last) leads when present.
		if !slices.Equal(sorted(got...), sorted(tc.want...)) {
			t.Errorf("%s: listed %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, q := range []url.Values{{"type": {"Bad Type"}}, {"from": {"yesterday"}}, {"tlp": {"purple"}}, {"dir": {"sideways"}},
		{"before": {"x"}}, {"q": {strings.Repeat("a", 300)}}} {
		_, status, page := listed(t, b, q)
		if status != http.StatusBadRequest || !strings.Contains(page, `id="filter-problem"`) {
			t.Errorf("filter %v: status %d, want 400 with the problem named", q, status)
		}
	}
}

func TestIntelPaging(t *testing.T) {
	w := newIntelWorld(t)
	var many []json.RawMessage
	for i := range 120 {
		many = append(many, sdo("indicator", stixID("indicator", 1000+i), fmt.Sprintf(`,"name":"bulk %d","pattern":"[ipv4-addr:value = '10.9.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","labels":["bulk"]`, i, i/256, i%256)))
	}
	w.put(t, w.x, w.xz, many...)
	b := w.browser(t)
	b.signIn(w.tokX)
	for _, q := range []url.Values{nil, {"label": {"bulk"}}, {"q": {"bulk"}}, {"type": {"indicator"}}} {
		ids, _, first := listed(t, b, q)
		if n := len(rowRE.FindAllString(first, -1)); n != intelPageSize {
			t.Errorf("%v: first page has %d rows, want %d", q, n, intelPageSize)
		}
		uniq := slices.Compact(sorted(slices.Clone(ids)...))
		if len(uniq) != len(ids) {
			t.Errorf("%v: %d rows over the pages but %d distinct: a page repeated rows", q, len(ids), len(uniq))
		}
		want := 120
		if q == nil {
			want = 128
		} else if q.Get("type") != "" {
			want = 123
		}
		if len(ids) != want {
			t.Errorf("%v: %d rows over all pages, want %d", q, len(ids), want)
		}
	}
}

// TestIntelHostileCounterpart attacks the pages as Y would, with valid
// credentials: list, search, filters, object pages, graph and export must
// never show an object Y does not read over TAXII (X's unreleased
// contributions, another agreement's), and a hidden object's page must
// look exactly like a page of one that does not exist.
func TestIntelHostileCounterpart(t *testing.T) {
	w := newIntelWorld(t)
	b := w.browser(t)
	b.signIn(w.tokY)
	visible := w.readable(t, w.y)
	hidden := []string{x4, x5, x6, z1}
	for i := range 30 {
		hidden = append(hidden, fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)) // the fixture's agreement
	}
	// Every listing, filter and search: only what Y reads.
	for _, q := range []url.Values{nil, {"q": {"secretbot"}}, {"q": {"secret"}}, {"q": {"loader"}}, {"q": {"zonly"}}, {"q": {"c2"}},
		{"q": {"secret.example.net"}}, {"label": {"hidden-label"}}, {"tlp": {"red"}}, {"type": {"malware"}}, {"type": {"relationship"}},
		{"dir": {"received"}}, {"agreement": {w.xz}}, {"counterpart": {w.z.PartyID}}, {"agreement": {w.agreementID}},
		{"counterpart": {w.x.PartyID}, "q": {"variant"}}} {
		ids, status, page := listed(t, b, q)
		for _, id := range ids {
			if !slices.Contains(visible, id) {
				t.Errorf("Y's listing %v shows %s, which Y does not read over TAXII", q, id)
			}
		}
		for _, id := range hidden {
			if strings.Contains(page, id) {
				t.Errorf("Y's listing %v (status %d) carries hidden id %s", q, status, id)
			}
		}
		// The form repeats what Y typed; the rows must not.
		results := strings.Join(regexp.MustCompile(`(?s)<tbody>.*?</tbody>`).FindAllString(page, -1), "")
		for _, word := range []string{"Secretbot", "Zonly", "hidden-label", "secret.example.net"} {
			if strings.Contains(results, word) {
				t.Errorf("Y's listing %v carries %q", q, word)
			}
		}
	}
	if ids, _, _ := listed(t, b, nil); !slices.Equal(sorted(ids...), visible) {
		t.Errorf("Y's listing = %v, want all it reads: %v", sorted(ids...), visible)
	}
	if ids, _, _ := listed(t, b, url.Values{"q": {"loader"}}); !slices.Equal(ids, []string{x2}) {
		t.Errorf("Y's search for loader = %v, want only the released X2", ids)
	}

	// A hidden object's page is the page of an object that does not exist.
	_, missing := b.do("GET", "/ui/objects/"+stixID("malware", 999), nil)
	for _, id := range hidden {
		resp, page := b.do("GET", "/ui/objects/"+url.PathEscape(id), nil)
		if resp.StatusCode != http.StatusNotFound || page != missing {
			t.Errorf("Y's page of hidden %s: %s, and it differs from a missing object's: %v", id, resp.Status, page != missing)
		}
	}
	for _, id := range []string{"", "x", "../intel", strings.Repeat("z", 5000)} {
		resp, _ := b.do("GET", "/ui/objects/"+url.PathEscape(id), nil)
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMovedPermanently {
			t.Errorf("object page %q: %s", shorten(id, 20), resp.Status)
		}
	}

	// The graph of a released object leaves out the hidden relationship
	// that points at it (X5) and its hidden source (X4).
	resp, page := b.do("GET", "/ui/objects/"+url.PathEscape(x2), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Y's page of released X2: %s", resp.Status)
	}
	if !strings.Contains(page, `data-id="`+x1+`"`) || !strings.Contains(page, "indicates") {
		t.Errorf("Y's graph of X2 lacks the released X1 –indicates→ X2")
	}
	for _, s := range []string{x4, x5, "variant-of", "Secretbot"} {
		if strings.Contains(page, s) {
			t.Errorf("Y's page of X2 carries %q, which is in X's unreleased objects", s)
		}
	}

	// Export: everything, a filter that matches hidden objects, and ids
	// picked by hand among hidden ones.
	for _, q := range []url.Values{nil, {"q": {"secret"}}, {"label": {"hidden-label"}}, {"id": hidden},
		{"id": append([]string{x1}, hidden...)}, {"agreement": {w.xz}}} {
		got := exportIDs(t, b, q)
		for _, id := range got {
			if !slices.Contains(visible, id) {
				t.Errorf("Y's export %v holds %s, which Y does not read over TAXII", q, id)
			}
		}
		if q.Has("id") && slices.Contains(q["id"], x1) && !slices.Equal(got, []string{x1}) {
			t.Errorf("Y's export of picked ids = %v, want only X1", got)
		}
	}
	if got := exportIDs(t, b, nil); !slices.Equal(got, visible) {
		t.Errorf("Y's full export = %v, want %v", got, visible)
	}

	// A bystander in no agreement reads nothing.
	c := w.browser(t)
	c.signIn(w.tokC)
	if ids, _, _ := listed(t, c, nil); len(ids) != 0 {
		t.Errorf("a bystander's listing shows %v", ids)
	}
	if got := exportIDs(t, c, url.Values{"id": {x1, y1, z1}}); len(got) != 0 {
		t.Errorf("a bystander's export holds %v", got)
	}
	if resp, _ := c.do("GET", "/ui/objects/"+url.PathEscape(x1), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a bystander's page of X1: %s", resp.Status)
	}

	// Signed out, the pages lead to sign-in and the export gives nothing.
	anon := w.browser(t)
	for _, path := range []string{"/ui/intel", "/ui/intel/export", "/ui/objects/" + url.PathEscape(x1)} {
		resp, body := anon.do("GET", path, nil)
		if resp.StatusCode != http.StatusSeeOther || strings.Contains(body, x1) {
			t.Errorf("signed out %s: %s", path, resp.Status)
		}
	}
}

// exportIDs downloads /ui/intel/export?q and returns the bundle's object
// ids, sorted, after checking it is a download of a STIX bundle.
func exportIDs(t *testing.T, b *browser, q url.Values) []string {
	t.Helper()
	resp, body := b.do("GET", "/ui/intel/export?"+q.Encode(), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export %v: %s\n%s", q, resp.Status, shorten(body, 300))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/stix+json") {
		t.Errorf("export content type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
		t.Errorf("export disposition %q", cd)
	}
	var bundle struct {
		Type, ID string
		Objects  []struct {
			ID string `json:"id"`
		}
	}
	if err := json.Unmarshal([]byte(body), &bundle); err != nil || bundle.Type != "bundle" || !strings.HasPrefix(bundle.ID, "bundle--") {
		t.Fatalf("export %v is not a bundle (%v): %s", q, err, shorten(body, 200))
	}
	var ids []string
	for _, o := range bundle.Objects {
		ids = append(ids, o.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestObjectPage(t *testing.T) {
	w := newIntelWorld(t)
	b := w.browser(t)
	b.signIn(w.tokX)
	resp, page := b.do("GET", "/ui/objects/"+url.PathEscape(x2), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("X's page of X2: %s", resp.Status)
	}
	for _, want := range []string{"Quietbot v2", "TLP:AMBER", stix.TLPAmber, "shared-label", "A modular loader",
		"You gave it to hostile-y", `class="ledger-entry">no. `, "(feed.batch)", "contribution no. 2",
		`id="relationship-graph"`, `data-id="` + x1 + `"`, `data-id="` + x4 + `"`, "indicates", "variant-of",
		"2026-02-01 00:00:00 UTC", "2026-01-01 00:00:00 UTC", "<svg"} {
		if !strings.Contains(page, want) {
			t.Errorf("X's page of X2 lacks %q", want)
		}
	}
	if inlineScript(page) {
		t.Error("the object page carries an inline script")
	}
	// The agreement's id in full, in a field to copy it from, on the
	// object page and on the listing.
	field := `readonly value="` + w.xy + `"`
	if !strings.Contains(page, field) {
		t.Errorf("X's page of X2 does not show agreement %s in full", w.xy)
	}
	if _, list := b.do("GET", "/ui/intel", nil); !strings.Contains(list, field) {
		t.Errorf("the listing does not show agreement %s in full", w.xy)
	}
	// Y's object, received: released to X by a feed.released entry.
	_, page = b.do("GET", "/ui/objects/"+url.PathEscape(y1), nil)
	for _, want := range []string{"hostile-y's feed released it to you", "(feed.released)", "198.51.100.7"} {
		if !strings.Contains(page, want) {
			t.Errorf("X's page of Y1 lacks %q", want)
		}
	}
	// A relationship's page draws both its ends.
	_, page = b.do("GET", "/ui/objects/"+url.PathEscape(x3), nil)
	if !strings.Contains(page, `data-id="`+x1+`"`) || !strings.Contains(page, `data-id="`+x2+`"`) {
		t.Errorf("the page of relationship X3 does not draw both ends")
	}
	// An object referring to an id X does not read draws it unnamed.
	w.put(t, w.x, w.xy, sdo("relationship", stixID("relationship", 7), `,"relationship_type":"uses","source_ref":"`+x2+`","target_ref":"`+stixID("malware", 77)+`"`))
	_, page = b.do("GET", "/ui/objects/"+url.PathEscape(x2), nil)
	if !strings.Contains(page, "not among what you read") {
		t.Errorf("an unreadable neighbour is not drawn as such")
	}
	// The page's download is the object alone.
	if got := exportIDs(t, b, url.Values{"id": {x2}}); !slices.Equal(got, []string{x2}) {
		t.Errorf("the object's download holds %v", got)
	}
}

// TestIntelSourcesAreTAXIIs checks the premise of the pages: the sources
// exchange lists for a party are exactly the collections TAXII lists it
// as readable in its agreements' API roots.
func TestIntelSourcesAreTAXIIs(t *testing.T) {
	w := newIntelWorld(t)
	ctx := context.Background()
	for _, p := range []party.Principal{w.x, w.y, w.z, w.a, w.b} {
		srcs, err := w.ex.IntelSources(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, s := range srcs {
			got = append(got, s.Agreement+"/"+s.Collection+"/"+s.Direction)
		}
		roots, _ := w.ex.APIRoots(ctx, p)
		for _, root := range roots {
			cs, _ := w.ex.Collections(ctx, p, root)
			for _, c := range cs {
				if c.Read {
					dir := exchange.Received
					if c.Contributor == p.PartyID {
						dir = exchange.Given
					}
					want = append(want, root+"/"+c.ID+"/"+dir)
				}
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: sources %v, TAXII %v", p.Name, got, want)
		}
	}
}
