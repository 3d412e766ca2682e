package taxii_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/taxii"
)

// This file is the black-box TAXII 2.1 conformance suite: each test starts
// the real server on a loopback port and speaks plain HTTP to it. Section
// numbers refer to the OASIS TAXII 2.1 specification.

// world is the cast most tests need: a collection "feed" that alpha reads
// and writes, bravo only reads and charlie only writes; a collection "other"
// that only bravo has; and outsider, who has nothing.
type world struct {
	*env
	alpha, bravo, charlie, outsider member
	feed, other                     string
}

func newWorld(t *testing.T) *world {
	e := newEnv(t)
	w := &world{env: e, alpha: e.party("alpha"), bravo: e.party("bravo"), charlie: e.party("charlie"), outsider: e.party("outsider")}
	w.feed = e.collection("feed", []member{w.alpha, w.bravo}, []member{w.alpha, w.charlie})
	w.other = e.collection("other", []member{w.bravo}, []member{w.bravo})
	return w
}

func TestDiscoveryListsOnlyVisibleRoots(t *testing.T) {
	w := newWorld(t)
	root := w.base + taxii.Prefix + exchange.OperatorRoot + "/"
	for _, tc := range []struct {
		who   member
		roots []string
	}{
		{w.alpha, []string{root}},
		{w.charlie, []string{root}},
		{w.outsider, []string{}},
	} {
		t.Run(tc.who.name, func(t *testing.T) {
			r := w.get(tc.who.token, w.base+"/taxii2/")
			if r.status != http.StatusOK || r.header.Get("Content-Type") != mediaTAXII {
				t.Fatalf("status %d, Content-Type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
			}
			var d struct {
				Title    string    `json:"title"`
				Default  string    `json:"default"`
				APIRoots *[]string `json:"api_roots"`
			}
			r.json(t, &d)
			if d.Title == "" {
				t.Fatalf("discovery without title: %s", r.body)
			}
			// No API root is no api_roots key: TAXII 2.1 forbids empty lists.
			if len(tc.roots) == 0 {
				if d.APIRoots != nil {
					t.Errorf("api_roots present for a party with none: %s", r.body)
				}
			} else if d.APIRoots == nil || !slices.Equal(*d.APIRoots, tc.roots) {
				t.Errorf("api_roots in %s, want %q", r.body, tc.roots)
			}
			if len(tc.roots) > 0 && d.Default != tc.roots[0] {
				t.Errorf("default %q, want %q", d.Default, tc.roots[0])
			}
			if len(tc.roots) == 0 && d.Default != "" {
				t.Errorf("default %q for a party with no API root", d.Default)
			}
		})
	}
}

func TestAPIRootInformation(t *testing.T) {
	e := newEnvMax(t, 123456)
	a, o := e.party("alpha"), e.party("outsider")
	e.collection("feed", []member{a}, nil)
	url := e.base + taxii.Prefix + exchange.OperatorRoot + "/"
	r := e.get(a.token, url)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var info struct {
		Title            string   `json:"title"`
		Versions         []string `json:"versions"`
		MaxContentLength int64    `json:"max_content_length"`
	}
	r.json(t, &info)
	if info.Title == "" || !slices.Equal(info.Versions, []string{mediaTAXII}) || info.MaxContentLength != 123456 {
		t.Errorf("API root information %s", r.body)
	}
	// Without the trailing slash clients often drop.
	if r := e.get(a.token, strings.TrimSuffix(url, "/")); r.status != http.StatusOK {
		t.Errorf("without trailing slash: %d", r.status)
	}
	errorResource(t, e.get(o.token, url), http.StatusNotFound)
	errorResource(t, e.get(a.token, e.base+taxii.Prefix+"nosuchroot/"), http.StatusNotFound)
}

func TestCollectionsAccessFlags(t *testing.T) {
	w := newWorld(t)
	type coll struct {
		ID         string   `json:"id"`
		Title      string   `json:"title"`
		CanRead    bool     `json:"can_read"`
		CanWrite   bool     `json:"can_write"`
		MediaTypes []string `json:"media_types"`
	}
	for _, tc := range []struct {
		who         member
		ids         []string
		read, write bool // on feed
	}{
		{w.alpha, []string{w.feed}, true, true},
		{w.bravo, []string{w.feed, w.other}, true, false},
		{w.charlie, []string{w.feed}, false, true},
	} {
		t.Run(tc.who.name, func(t *testing.T) {
			r := w.get(tc.who.token, w.base+taxii.Prefix+exchange.OperatorRoot+"/collections/")
			var list struct {
				Collections []coll `json:"collections"`
			}
			r.json(t, &list)
			var ids []string
			for _, c := range list.Collections {
				ids = append(ids, c.ID)
				if c.ID == w.feed && (c.CanRead != tc.read || c.CanWrite != tc.write) {
					t.Errorf("feed in list: can_read %v can_write %v, want %v %v", c.CanRead, c.CanWrite, tc.read, tc.write)
				}
			}
			if !slices.Equal(ids, tc.ids) {
				t.Errorf("collections %q, want %q", ids, tc.ids)
			}
			var one coll
			r = w.get(tc.who.token, w.collURL(w.feed, ""))
			r.json(t, &one)
			if r.status != http.StatusOK || one.ID != w.feed || one.Title != "feed" || one.CanRead != tc.read || one.CanWrite != tc.write ||
				!slices.Equal(one.MediaTypes, []string{"application/stix+json;version=2.1"}) {
				t.Errorf("collection: %d %s", r.status, r.body)
			}
		})
	}
	// A party that sees the root but not this collection gets a 404.
	errorResource(t, w.get(w.alpha.token, w.collURL(w.other, "")), http.StatusNotFound)
	errorResource(t, w.get(w.outsider.token, w.base+taxii.Prefix+exchange.OperatorRoot+"/collections/"), http.StatusNotFound)
}

// manifestRecord is one entry of a manifest resource (section 5.3).
type manifestRecord struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type"`
}

type manifest struct {
	More    bool             `json:"more"`
	Next    string           `json:"next"`
	Objects []manifestRecord `json:"objects"`
}

// keys turns an envelope's objects into "id@modified" strings.
func keys(t *testing.T, objs []json.RawMessage) []string {
	t.Helper()
	var out []string
	for _, o := range objs {
		var h struct{ ID, Modified string }
		if err := json.Unmarshal(o, &h); err != nil {
			t.Fatal(err)
		}
		out = append(out, h.ID+"@"+h.Modified)
	}
	return out
}

func (e *env) objects(token, coll, query string) (envelope, resp) {
	e.t.Helper()
	r := e.get(token, e.collURL(coll, "objects/")+query)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET objects/%s: %d %s", query, r.status, r.body)
	}
	var env envelope
	r.json(e.t, &env)
	return env, r
}

// versioned fills feed with, in date_added order:
//
//	t0: identity 1 @ v1, indicator 2 @ v1
//	t1: identity 1 @ v3, indicator 3 @ v1
//	t2: identity 1 @ v2 (an older version arriving late), indicator 2 @ v2
//
// It returns the three date_added times.
func (w *world) versioned(t *testing.T) [3]time.Time {
	t.Helper()
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var ts [3]time.Time
	batches := [][]string{
		{identity(1, "2021-01-01T00:00:00.000Z"), indicator(2, "2021-01-01T00:00:00.000Z")},
		{identity(1, "2023-01-01T00:00:00.000Z"), indicator(3, "2021-01-01T00:00:00.000Z")},
		{identity(1, "2022-01-01T00:00:00.000Z"), indicator(2, "2022-06-01T00:00:00.123Z")},
	}
	for i, b := range batches {
		ts[i] = base.Add(time.Duration(i) * time.Hour)
		w.setClock(ts[i])
		w.mustPost(w.alpha.token, w.feed, b...)
	}
	w.setClock(time.Time{})
	return ts
}

func TestObjectFilters(t *testing.T) {
	w := newWorld(t)
	ts := w.versioned(t)
	id1 := "identity--" + uuid(1)
	ind2, ind3 := "indicator--"+uuid(2), "indicator--"+uuid(3)
	stamp := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000000Z") }
	for _, tc := range []struct {
		query string
		want  []string // id@modified in date_added order
	}{
		// Section 3.4.2: without match[version] only the latest version.
		{"", []string{id1 + "@2023-01-01T00:00:00.000Z", ind3 + "@2021-01-01T00:00:00.000Z", ind2 + "@2022-06-01T00:00:00.123Z"}},
		{"?match[version]=last", []string{id1 + "@2023-01-01T00:00:00.000Z", ind3 + "@2021-01-01T00:00:00.000Z", ind2 + "@2022-06-01T00:00:00.123Z"}},
		{"?match[version]=first", []string{id1 + "@2021-01-01T00:00:00.000Z", ind2 + "@2021-01-01T00:00:00.000Z", ind3 + "@2021-01-01T00:00:00.000Z"}},
		{"?match[version]=all", []string{id1 + "@2021-01-01T00:00:00.000Z", ind2 + "@2021-01-01T00:00:00.000Z", id1 + "@2023-01-01T00:00:00.000Z",
			ind3 + "@2021-01-01T00:00:00.000Z", id1 + "@2022-01-01T00:00:00.000Z", ind2 + "@2022-06-01T00:00:00.123Z"}},
		{"?match[version]=2022-01-01T00:00:00.000Z", []string{id1 + "@2022-01-01T00:00:00.000Z"}},
		{"?match[version]=2022-06-01T00:00:00.123Z", []string{ind2 + "@2022-06-01T00:00:00.123Z"}},
		{"?match[version]=2022-01-01T00:00:00Z,first", []string{id1 + "@2021-01-01T00:00:00.000Z", ind2 + "@2021-01-01T00:00:00.000Z",
			ind3 + "@2021-01-01T00:00:00.000Z", id1 + "@2022-01-01T00:00:00.000Z"}},
		{"?match[version]=first,last&match[type]=identity", []string{id1 + "@2021-01-01T00:00:00.000Z", id1 + "@2023-01-01T00:00:00.000Z"}},
		{"?match[version]=1999-01-01T00:00:00.000Z", nil},
		{"?match[type]=indicator", []string{ind3 + "@2021-01-01T00:00:00.000Z", ind2 + "@2022-06-01T00:00:00.123Z"}},
		{"?match[type]=indicator,identity", []string{id1 + "@2023-01-01T00:00:00.000Z", ind3 + "@2021-01-01T00:00:00.000Z", ind2 + "@2022-06-01T00:00:00.123Z"}},
		{"?match[type]=malware", nil},
		{"?match[id]=" + ind2, []string{ind2 + "@2022-06-01T00:00:00.123Z"}},
		{"?match[id]=" + ind2 + "," + id1 + "&match[version]=first", []string{id1 + "@2021-01-01T00:00:00.000Z", ind2 + "@2021-01-01T00:00:00.000Z"}},
		{"?match[id]=" + ind2 + "&match[type]=identity", nil},
		{"?match[spec_version]=2.1&match[type]=indicator", []string{ind3 + "@2021-01-01T00:00:00.000Z", ind2 + "@2022-06-01T00:00:00.123Z"}},
		{"?match[spec_version]=2.0", nil},
		// added_after is exclusive: objects added at exactly that time are not after it.
		// Each object of a batch is added one microsecond after the one
		// before it, so ind3 (second of batch 1) is after ts[1].
		{"?added_after=" + stamp(ts[1]) + "&match[version]=all", []string{ind3 + "@2021-01-01T00:00:00.000Z", id1 + "@2022-01-01T00:00:00.000Z", ind2 + "@2022-06-01T00:00:00.123Z"}},
		{"?added_after=" + stamp(ts[1].Add(-time.Microsecond)) + "&match[version]=all", []string{id1 + "@2023-01-01T00:00:00.000Z",
			ind3 + "@2021-01-01T00:00:00.000Z", id1 + "@2022-01-01T00:00:00.000Z", ind2 + "@2022-06-01T00:00:00.123Z"}},
		{"?added_after=" + stamp(ts[2]), []string{ind2 + "@2022-06-01T00:00:00.123Z"}},
		{"?added_after=" + stamp(ts[2].Add(time.Microsecond)), nil},
		// The latest version added after t0 is chosen among all versions, not only the later ones.
		{"?added_after=" + stamp(ts[0]), []string{id1 + "@2023-01-01T00:00:00.000Z", ind3 + "@2021-01-01T00:00:00.000Z", ind2 + "@2022-06-01T00:00:00.123Z"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			env, r := w.objects(w.alpha.token, w.feed, tc.query)
			if got := keys(t, env.Objects); !slices.Equal(got, tc.want) {
				t.Errorf("objects\n got %q\nwant %q", got, tc.want)
			}
			if env.More || env.Next != "" {
				t.Errorf("more %v next %q on the only page", env.More, env.Next)
			}
			first, last := r.header.Get("X-TAXII-Date-Added-First"), r.header.Get("X-TAXII-Date-Added-Last")
			if len(tc.want) == 0 {
				if first != "" || last != "" {
					t.Errorf("date headers %q %q on an empty page", first, last)
				}
				return
			}
			// The manifest with the same filters gives the same records, and its
			// first and last date_added are the headers' values.
			r = w.get(w.alpha.token, w.collURL(w.feed, "manifest/")+tc.query)
			var m manifest
			r.json(t, &m)
			var mk []string
			for _, rec := range m.Objects {
				mk = append(mk, rec.ID+"@"+rec.Version)
				if rec.MediaType != "application/stix+json;version=2.1" {
					t.Errorf("manifest media_type %q", rec.MediaType)
				}
			}
			if !slices.Equal(mk, tc.want) {
				t.Errorf("manifest\n got %q\nwant %q", mk, tc.want)
			}
			if first != m.Objects[0].DateAdded || last != m.Objects[len(m.Objects)-1].DateAdded {
				t.Errorf("X-TAXII-Date-Added-First/Last %q %q, manifest says %q %q", first, last, m.Objects[0].DateAdded, m.Objects[len(m.Objects)-1].DateAdded)
			}
			if r.header.Get("X-TAXII-Date-Added-First") != first || r.header.Get("X-TAXII-Date-Added-Last") != last {
				t.Errorf("manifest date headers differ from objects'")
			}
		})
	}
}

func TestBadFilters(t *testing.T) {
	w := newWorld(t)
	for _, q := range []string{
		"?match[type]=Indicator", "?match[type]=", "?match[type]=a", "?match[id]=indicator", "?match[id]=indicator--xyz",
		"?match[version]=yesterday", "?match[version]=2021-01-01T00:00:00+01:00", "?match[version]=2021-01-01",
		"?added_after=2021-01-01", "?added_after=now", "?match[spec_version]=two", "?match[spec_version]=2.1.0",
		"?limit=abc", "?limit=0", "?limit=-1", "?limit=1.5", "?limit=", "?limit=%2B", "?limit=0x10", "?limit=%201",
		"?match[type]=indicator&match[type]=identity", "?next=", "?foo=bar",
		"?match[type]=%zz", "?match[type]=indicator;match[id]=x",
	} {
		t.Run(q, func(t *testing.T) {
			desc := errorResource(t, w.get(w.alpha.token, w.collURL(w.feed, "objects/")+q), http.StatusBadRequest)
			if strings.Contains(desc, "exchange:") || strings.Contains(desc, "store:") || strings.Contains(desc, "sqlite") {
				t.Errorf("internal error text in %q", desc)
			}
		})
	}
	// Parameters that an endpoint does not take are refused, not ignored.
	errorResource(t, w.get(w.alpha.token, w.collURL(w.feed, "objects/indicator--"+uuid(2)+"/versions/")+"?match[version]=all"), http.StatusBadRequest)
	errorResource(t, w.do(req{method: http.MethodDelete, url: w.collURL(w.feed, "objects/indicator--"+uuid(2)+"/") + "?limit=1", token: w.alpha.token}), http.StatusBadRequest)
}

func TestLimitClamp(t *testing.T) {
	w := newWorld(t)
	var objs []string
	for i := range 5 {
		objs = append(objs, indicator(100+i, "2021-01-01T00:00:00.000Z"))
	}
	w.mustPost(w.alpha.token, w.feed, objs...)
	// A limit above the server's maximum is lowered, not refused (section 3.7).
	for _, l := range []string{"1000000", fmt.Sprint(taxii.MaxLimit + 1), "%2B5", "0005", "99999999999999999999999999"} {
		env, _ := w.objects(w.alpha.token, w.feed, "?limit="+l)
		if len(env.Objects) != 5 || env.More {
			t.Errorf("limit=%s: %d objects, more %v", l, len(env.Objects), env.More)
		}
	}
}

// walk follows next from the first page to the last and returns every page.
func (e *env) walk(token, url, query string) []envelope {
	e.t.Helper()
	var pages []envelope
	q := query
	for i := 0; ; i++ {
		if i > 1000 {
			e.t.Fatal("pagination does not end")
		}
		r := e.get(token, url+q)
		if r.status != http.StatusOK {
			e.t.Fatalf("page %d: %d %s", i, r.status, r.body)
		}
		var env envelope
		r.json(e.t, &env)
		pages = append(pages, env)
		if !env.More {
			if env.Next != "" {
				e.t.Errorf("next %q on the last page", env.Next)
			}
			return pages
		}
		if env.Next == "" {
			e.t.Fatalf("page %d: more without next", i)
		}
		sep := "?"
		if query != "" {
			sep = query + "&"
		}
		q = sep + "next=" + url2(env.Next)
	}
}

func url2(s string) string { return url.QueryEscape(s) }

func TestPaginationBoundaries(t *testing.T) {
	w := newWorld(t)
	var all []string
	w.setClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	for i := range 6 {
		// Two POSTs at one instant: six objects share one date_added.
		o := indicator(200+i, "2021-01-01T00:00:00.000Z")
		all = append(all, "indicator--"+uuid(200+i)+"@2021-01-01T00:00:00.000Z")
		w.mustPost(w.alpha.token, w.feed, o)
	}
	w.setClock(time.Time{})
	for _, tc := range []struct {
		limit int
		sizes []int
	}{
		{1, []int{1, 1, 1, 1, 1, 1}},
		{2, []int{2, 2, 2}},
		{3, []int{3, 3}},
		{4, []int{4, 2}},
		{5, []int{5, 1}},
		{6, []int{6}},
		{7, []int{6}},
	} {
		t.Run(fmt.Sprint("limit=", tc.limit), func(t *testing.T) {
			for _, ep := range []string{"objects/", "manifest/"} {
				pages := w.walk(w.alpha.token, w.collURL(w.feed, ep), fmt.Sprintf("?limit=%d", tc.limit))
				var sizes []int
				var got []string
				for _, p := range pages {
					sizes = append(sizes, len(p.Objects))
					if ep == "objects/" {
						got = append(got, keys(t, p.Objects)...)
					}
				}
				if !slices.Equal(sizes, tc.sizes) {
					t.Errorf("%s page sizes %v, want %v", ep, sizes, tc.sizes)
				}
				if ep == "objects/" && !slices.Equal(got, all) {
					t.Errorf("objects across pages\n got %q\nwant %q", got, all)
				}
			}
		})
	}
}

func TestPaginationVersionsAcrossPages(t *testing.T) {
	w := newWorld(t)
	id := "identity--" + uuid(7)
	var want []string
	for i := range 7 {
		v := fmt.Sprintf("202%d-01-01T00:00:00.000Z", i)
		w.mustPost(w.alpha.token, w.feed, identity(7, v))
		want = append(want, v)
	}
	w.mustPost(w.alpha.token, w.feed, indicator(8, "2021-01-01T00:00:00.000Z"))
	for _, limit := range []int{1, 2, 3, 7} {
		// One object's versions, through the object endpoint…
		pages := w.walk(w.alpha.token, w.collURL(w.feed, "objects/"+id+"/"), fmt.Sprintf("?match[version]=all&limit=%d", limit))
		var got []string
		for _, p := range pages {
			for _, k := range keys(t, p.Objects) {
				got = append(got, strings.TrimPrefix(k, id+"@"))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: object versions %q, want %q", limit, got, want)
		}
		// …and through the versions endpoint (section 5.7).
		got = nil
		url := w.collURL(w.feed, "objects/"+id+"/versions/")
		q := fmt.Sprintf("?limit=%d", limit)
		for {
			r := w.get(w.alpha.token, url+q)
			var vs struct {
				More     bool     `json:"more"`
				Next     string   `json:"next"`
				Versions []string `json:"versions"`
			}
			r.json(t, &vs)
			got = append(got, vs.Versions...)
			if !vs.More {
				break
			}
			q = fmt.Sprintf("?limit=%d&next=%s", limit, url2(vs.Next))
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: versions %q, want %q", limit, got, want)
		}
	}
}

func TestCursorBinding(t *testing.T) {
	w := newWorld(t)
	var objs []string
	for i := range 4 {
		objs = append(objs, indicator(300+i, "2021-01-01T00:00:00.000Z"))
	}
	w.mustPost(w.alpha.token, w.feed, objs...)
	w.mustPost(w.bravo.token, w.other, objs...)
	first, _ := w.objects(w.alpha.token, w.feed, "?limit=2")
	if !first.More || first.Next == "" {
		t.Fatalf("first page: %+v", first)
	}
	second, _ := w.objects(w.alpha.token, w.feed, "?limit=2&next="+url2(first.Next))
	wantSecond := keys(t, second.Objects)
	if len(wantSecond) != 2 {
		t.Fatalf("second page has %d objects", len(wantSecond))
	}

	// The same cursor works after a restart: it is stateless and its key
	// is kept in the database.
	w.restart()
	again, _ := w.objects(w.alpha.token, w.feed, "?limit=2&next="+url2(first.Next))
	if !slices.Equal(keys(t, again.Objects), wantSecond) {
		t.Errorf("after restart: %q, want %q", keys(t, again.Objects), wantSecond)
	}
	// A different page size with the same cursor is allowed.
	if env, _ := w.objects(w.alpha.token, w.feed, "?limit=1&next="+url2(first.Next)); len(env.Objects) != 1 {
		t.Errorf("limit=1 with the cursor: %d objects", len(env.Objects))
	}

	// Any one-character edit of the cursor is refused.
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range first.Next {
		b := []byte(first.Next)
		b[i] = alphabet[(strings.IndexByte(alphabet, b[i])+1)%len(alphabet)]
		r := w.get(w.alpha.token, w.collURL(w.feed, "objects/")+"?limit=2&next="+url2(string(b)))
		errorResource(t, r, http.StatusBadRequest)
		if strings.Contains(string(r.body), "indicator--") {
			t.Fatalf("edited cursor returned data: %s", r.body)
		}
	}
	// Truncated, extended and re-encoded cursors too.
	for _, c := range []string{first.Next[:len(first.Next)-1], first.Next + "A", first.Next + "=", first.Next[1:], strings.Repeat("A", 100), "%00"} {
		errorResource(t, w.get(w.alpha.token, w.collURL(w.feed, "objects/")+"?limit=2&next="+url2(c)), http.StatusBadRequest)
	}

	// A cursor is bound to its collection, filters, endpoint and party.
	for name, r := range map[string]req{
		"other collection": {url: w.collURL(w.other, "objects/") + "?limit=2&next=" + url2(first.Next), token: w.bravo.token},
		"other filter":     {url: w.collURL(w.feed, "objects/") + "?limit=2&match[type]=indicator&next=" + url2(first.Next), token: w.alpha.token},
		"other version":    {url: w.collURL(w.feed, "objects/") + "?limit=2&match[version]=all&next=" + url2(first.Next), token: w.alpha.token},
		"other endpoint":   {url: w.collURL(w.feed, "manifest/") + "?limit=2&next=" + url2(first.Next), token: w.alpha.token},
		"other party":      {url: w.collURL(w.feed, "objects/") + "?limit=2&next=" + url2(first.Next), token: w.bravo.token},
	} {
		t.Run(name, func(t *testing.T) {
			r.header = map[string]string{}
			res := w.do(r)
			errorResource(t, res, http.StatusBadRequest)
			if strings.Contains(string(res.body), "indicator--") {
				t.Errorf("data in the refusal: %s", res.body)
			}
		})
	}
	// Equivalent spellings of one filter share cursors.
	typed, _ := w.objects(w.alpha.token, w.feed, "?limit=2&match[type]=indicator")
	if _, r := w.objects(w.alpha.token, w.feed, "?limit=2&match[type]=%20indicator&next="+url2(typed.Next)); r.status != http.StatusOK {
		t.Errorf("equivalent filter spelling refused the cursor")
	}
}

func TestMediaTypes(t *testing.T) {
	w := newWorld(t)
	w.mustPost(w.alpha.token, w.feed, indicator(1, "2021-01-01T00:00:00.000Z"))
	for _, tc := range []struct {
		accept string
		path   string // relative to the collection
		status int
	}{
		{"application/taxii+json;version=2.1", "", http.StatusOK},
		{"application/taxii+json", "", http.StatusOK},
		{"application/taxii+json; version=2.1", "", http.StatusOK},
		{"application/taxii+json;version=2.0", "", http.StatusNotAcceptable},
		{"application/taxii+json;version=2.0, application/taxii+json;version=2.1;q=0.5", "", http.StatusOK},
		{"application/taxii+json;q=0", "", http.StatusNotAcceptable},
		{"application/stix+json;version=2.1", "", http.StatusNotAcceptable},
		{"application/stix+json;version=2.1", "objects/", http.StatusOK},
		{"application/stix+json;version=2.0", "objects/", http.StatusNotAcceptable},
		{"*/*", "", http.StatusOK},
		{"application/*", "objects/", http.StatusOK},
		{"", "", http.StatusOK},
		{"application/json", "manifest/", http.StatusOK},
		{"text/html", "", http.StatusNotAcceptable},
		{"text/html", "objects/", http.StatusNotAcceptable},
		{"garbage;;;", "", http.StatusNotAcceptable},
	} {
		t.Run(tc.accept+" "+tc.path, func(t *testing.T) {
			r := w.do(req{url: w.collURL(w.feed, tc.path), token: w.alpha.token, header: map[string]string{"Accept": tc.accept}})
			if tc.status != http.StatusOK {
				errorResource(t, r, tc.status)
				return
			}
			if r.status != tc.status || r.header.Get("Content-Type") != mediaTAXII {
				t.Errorf("status %d Content-Type %q, want %d %q", r.status, r.header.Get("Content-Type"), tc.status, mediaTAXII)
			}
		})
	}
}

func TestPostContentType(t *testing.T) {
	w := newWorld(t)
	for i, tc := range []struct {
		ct     string
		status int
	}{
		{"application/taxii+json;version=2.1", http.StatusAccepted},
		{"application/taxii+json", http.StatusAccepted},
		{"application/taxii+json; version=2.1; charset=utf-8", http.StatusAccepted},
		{"application/taxii+json;version=2.0", http.StatusUnsupportedMediaType},
		{"application/stix+json;version=2.1", http.StatusUnsupportedMediaType},
		{"application/json", http.StatusUnsupportedMediaType},
		{"text/plain", http.StatusUnsupportedMediaType},
		{"", http.StatusUnsupportedMediaType},
		{";;", http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.ct, func(t *testing.T) {
			r := w.do(req{method: http.MethodPost, url: w.collURL(w.feed, "objects/"), token: w.alpha.token,
				header: map[string]string{"Content-Type": tc.ct}, body: envelopeOf(indicator(400+i, "2021-01-01T00:00:00.000Z"))})
			if tc.status == http.StatusAccepted {
				if r.status != tc.status || r.header.Get("Content-Type") != mediaTAXII {
					t.Errorf("status %d %q: %s", r.status, r.header.Get("Content-Type"), r.body)
				}
				return
			}
			errorResource(t, r, tc.status)
		})
	}
}

func TestMaxContentLength(t *testing.T) {
	const max = 4096
	e := newEnvMax(t, max)
	a := e.party("alpha")
	c := e.collection("feed", []member{a}, []member{a})
	small := envelopeOf(indicator(1, "2021-01-01T00:00:00.000Z"))
	pad := func(n int) []byte { // a valid envelope of exactly n bytes
		b := append([]byte{}, small[:len(small)-1]...)
		b = append(b, strings.Repeat(" ", n-len(small))...)
		return append(b, '}')
	}
	if r := e.do(req{method: http.MethodPost, url: e.collURL(c, "objects/"), token: a.token, body: pad(max)}); r.status != http.StatusAccepted {
		t.Errorf("exactly max_content_length: %d %s", r.status, r.body)
	}
	errorResource(t, e.do(req{method: http.MethodPost, url: e.collURL(c, "objects/"), token: a.token, body: pad(max + 1)}), http.StatusRequestEntityTooLarge)
	errorResource(t, e.do(req{method: http.MethodPost, url: e.collURL(c, "objects/"), token: a.token, body: pad(10 * max)}), http.StatusRequestEntityTooLarge)
}

func TestAuthentication(t *testing.T) {
	w := newWorld(t)
	url := w.collURL(w.feed, "")
	basic := func(user, pw string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
	}
	revoked := w.party("revoked")
	if err := w.srv.Parties.RevokeToken(t.Context(), revoked.tokenID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"none", "", http.StatusUnauthorized},
		{"bearer", "Bearer " + w.alpha.token, http.StatusOK},
		{"bearer lower case", "bearer " + w.alpha.token, http.StatusOK},
		{"basic with token as password", basic("anyone", w.alpha.token), http.StatusOK},
		{"basic with token as user", basic(w.alpha.token, ""), http.StatusUnauthorized},
		{"bad token", "Bearer " + party0(w.alpha.token), http.StatusUnauthorized},
		{"short token", "Bearer parley_x", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"revoked token", "Bearer " + revoked.token, http.StatusUnauthorized},
		{"revoked token in basic", basic("x", revoked.token), http.StatusUnauthorized},
		{"bad basic", "Basic !!!", http.StatusUnauthorized},
		{"other scheme", "Digest " + w.alpha.token, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.do(req{url: url, header: map[string]string{"Authorization": tc.auth}})
			if tc.status == http.StatusOK {
				if r.status != http.StatusOK {
					t.Errorf("status %d: %s", r.status, r.body)
				}
				return
			}
			errorResource(t, r, tc.status)
			if !strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: %v", r.header)
			}
		})
	}
	// Authentication comes first: an unauthenticated client learns nothing
	// about paths, methods or collections.
	for _, u := range []string{w.base + "/taxii2/", w.base + "/taxii2/nope/", url, w.base + "/taxii2/a/b/c/d/e/f/"} {
		errorResource(t, w.do(req{method: http.MethodPut, url: u}), http.StatusUnauthorized)
	}
}

// party0 changes the last character of a token.
func party0(tok string) string {
	last := tok[len(tok)-1]
	if last == 'A' {
		return tok[:len(tok)-1] + "B"
	}
	return tok[:len(tok)-1] + "A"
}

func TestMethodNotAllowed(t *testing.T) {
	w := newWorld(t)
	obj := "objects/indicator--" + uuid(1) + "/"
	for _, tc := range []struct {
		method, url, allow string
	}{
		{http.MethodPost, w.base + "/taxii2/", "GET"},
		{http.MethodDelete, w.base + taxii.Prefix + exchange.OperatorRoot + "/", "GET"},
		{http.MethodPut, w.base + taxii.Prefix + exchange.OperatorRoot + "/collections/", "GET"},
		{http.MethodPost, w.collURL(w.feed, ""), "GET"},
		{http.MethodPut, w.collURL(w.feed, "objects/"), "GET, POST"},
		{http.MethodDelete, w.collURL(w.feed, "objects/"), "GET, POST"},
		{http.MethodPost, w.collURL(w.feed, obj), "DELETE, GET"},
		{http.MethodPatch, w.collURL(w.feed, obj+"versions/"), "GET"},
		{http.MethodPost, w.collURL(w.feed, "manifest/"), "GET"},
		{http.MethodHead, w.collURL(w.feed, "manifest/"), "GET"},
		{http.MethodDelete, w.base + taxii.Prefix + exchange.OperatorRoot + "/status/" + uuid(1) + "/", "GET"},
	} {
		t.Run(tc.method+" "+tc.url, func(t *testing.T) {
			r := w.do(req{method: tc.method, url: tc.url, token: w.alpha.token})
			if tc.method == http.MethodHead {
				if r.status != http.StatusMethodNotAllowed {
					t.Errorf("status %d", r.status)
				}
			} else {
				errorResource(t, r, http.StatusMethodNotAllowed)
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestUnknownPathsAreTAXII404(t *testing.T) {
	w := newWorld(t)
	for _, p := range []string{
		"/taxii2/" + exchange.OperatorRoot + "/nothing/",
		"/taxii2/" + exchange.OperatorRoot + "/collections/" + w.feed + "/objects/indicator--" + uuid(1) + "/versions/extra/",
		"/taxii2/" + exchange.OperatorRoot + "/collections/" + w.feed + "/objects/not-an-id/",
		"/taxii2/" + exchange.OperatorRoot + "/collections/" + w.feed + "/objects/not-an-id/versions/",
		"/taxii2/" + exchange.OperatorRoot + "/collections/" + w.feed + "/objects/indicator--" + uuid(99) + "/",
		"/taxii2/" + exchange.OperatorRoot + "/collections/" + w.feed + "/objects/indicator--" + uuid(99) + "/versions/",
		"/taxii2/" + exchange.OperatorRoot + "/status/" + uuid(5) + "/",
		"/taxii2/" + exchange.OperatorRoot + "/status/not-a-uuid/",
		"/taxii2/" + exchange.OperatorRoot + "/collections/not-a-uuid/",
		"/taxii2/x/y/z/",
	} {
		t.Run(p, func(t *testing.T) {
			errorResource(t, w.get(w.alpha.token, w.base+p), http.StatusNotFound)
		})
	}
}

func TestGetAndDeleteObject(t *testing.T) {
	w := newWorld(t)
	w.versioned(t)
	id1 := "identity--" + uuid(1)
	objURL := w.collURL(w.feed, "objects/"+id1+"/")
	r := w.get(w.alpha.token, objURL)
	var one envelope
	r.json(t, &one)
	if got := keys(t, one.Objects); !slices.Equal(got, []string{id1 + "@2023-01-01T00:00:00.000Z"}) {
		t.Errorf("default version %q", got)
	}
	r = w.get(w.alpha.token, objURL+"?match[version]=all")
	r.json(t, &one)
	if len(one.Objects) != 3 {
		t.Errorf("all versions: %s", r.body)
	}
	// An object that exists but has no version matching gives an empty
	// envelope, not a 404 (the object is there).
	r = w.get(w.alpha.token, objURL+"?match[version]=1999-01-01T00:00:00Z")
	if r.status != http.StatusOK {
		t.Errorf("no matching version: %d %s", r.status, r.body)
	}
	// Versions are listed in date_added order (section 5.7: the response
	// carries X-TAXII-Date-Added-First/Last, which presume that order).
	r = w.get(w.alpha.token, objURL+"versions/")
	var vs struct {
		More     bool     `json:"more"`
		Versions []string `json:"versions"`
	}
	r.json(t, &vs)
	if !slices.Equal(vs.Versions, []string{"2021-01-01T00:00:00.000Z", "2023-01-01T00:00:00.000Z", "2022-01-01T00:00:00.000Z"}) || vs.More {
		t.Errorf("versions %s", r.body)
	}

	del := func(who member, query string) resp {
		return w.do(req{method: http.MethodDelete, url: objURL + query, token: who.token})
	}
	// Deleting needs reading and writing (TAXII 2.1 section 5.6): neither
	// the reader bravo nor the write-only charlie may (ownership_test.go
	// has the rest).
	errorResource(t, del(w.bravo, ""), http.StatusForbidden)
	errorResource(t, del(w.charlie, ""), http.StatusForbidden)
	errorResource(t, del(w.outsider, ""), http.StatusNotFound)
	// match[version] deletes only the versions it selects.
	if r := del(w.alpha, "?match[version]=first"); r.status != http.StatusOK {
		t.Fatalf("delete first: %d %s", r.status, r.body)
	}
	r = w.get(w.alpha.token, objURL+"versions/")
	r.json(t, &vs)
	if !slices.Equal(vs.Versions, []string{"2023-01-01T00:00:00.000Z", "2022-01-01T00:00:00.000Z"}) {
		t.Errorf("after deleting the first version: %s", r.body)
	}
	// "first" is re-elected among what remains.
	r = w.get(w.alpha.token, objURL+"?match[version]=first")
	r.json(t, &one)
	if got := keys(t, one.Objects); !slices.Equal(got, []string{id1 + "@2022-01-01T00:00:00.000Z"}) {
		t.Errorf("first after delete %q", got)
	}
	errorResource(t, del(w.alpha, "?match[version]=1999-01-01T00:00:00Z"), http.StatusNotFound)
	// Without match[version] every version goes (section 5.6 deletes "the
	// object"; leaving older versions behind would resurrect one as latest).
	if r := del(w.alpha, ""); r.status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	errorResource(t, w.get(w.alpha.token, objURL), http.StatusNotFound)
	errorResource(t, w.get(w.alpha.token, objURL+"versions/"), http.StatusNotFound)
	errorResource(t, del(w.alpha, ""), http.StatusNotFound)
	// Other objects are untouched.
	all, _ := w.objects(w.alpha.token, w.feed, "?match[version]=all")
	if len(all.Objects) != 3 {
		t.Errorf("after delete, %d versions remain, want 3", len(all.Objects))
	}
}

// TestFixtureManifest replays the OASIS reference server's fixture: each
// object posted at its fixture date_added gives back the fixture's manifest.
func TestFixtureManifest(t *testing.T) {
	dir := sharedTestdata(t, "taxii")
	var fx map[string]json.RawMessage
	readJSON(t, dir+"/default_data.json", &fx)
	var root struct {
		Collections []struct {
			ID       string            `json:"id"`
			Objects  []json.RawMessage `json:"objects"`
			Manifest []manifestRecord  `json:"manifest"`
		} `json:"collections"`
	}
	if err := json.Unmarshal(fx["trustgroup1"], &root); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	a := e.party("alpha")
	coll := e.collection("fixture", []member{a}, []member{a})
	var want []manifestRecord
	n := 0
	for _, c := range root.Collections {
		for _, m := range c.Manifest {
			var raw json.RawMessage
			for _, o := range c.Objects {
				var h struct{ ID, Modified, Created, SpecVersion string }
				json.Unmarshal(o, &h)
				v := h.Modified
				if v == "" {
					v = h.Created
				}
				if h.ID == m.ID && v == m.Version {
					raw = o
				}
			}
			if raw == nil {
				continue
			}
			n++
			added, err := time.Parse(time.RFC3339Nano, m.DateAdded)
			if err != nil {
				t.Fatal(err)
			}
			e.setClock(added)
			r := e.post(a.token, coll, string(raw))
			var st status
			r.json(t, &st)
			if m.MediaType != "application/stix+json;version=2.1" {
				// The fixture's STIX 2.0 object is refused, with a reason.
				if st.FailureCount != 1 || st.Failures[0].ID != m.ID || !strings.Contains(st.Failures[0].Message, "spec_version") {
					t.Errorf("STIX 2.0 object: %s", r.body)
				}
				continue
			}
			if st.SuccessCount != 1 {
				t.Fatalf("fixture object %s refused: %s", m.ID, r.body)
			}
			want = append(want, m)
		}
	}
	if n != 8 {
		t.Fatalf("found %d fixture objects, want 8", n)
	}
	r := e.get(a.token, e.collURL(coll, "manifest/")+"?match[version]=all")
	var got manifest
	r.json(t, &got)
	if !slices.Equal(got.Objects, want) {
		t.Errorf("manifest\n got %+v\nwant %+v", got.Objects, want)
	}
}

// TestAddedAfterPagingKeepsTies pages with added_after set to the previous
// page's X-TAXII-Date-Added-Last, the other way TAXII 2.1 section 3.7 lets
// clients page. Objects sharing a date_added must not be split across pages,
// or the rest of the run would be skipped.
func TestAddedAfterPagingKeepsTies(t *testing.T) {
	w := newWorld(t)
	base := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	var want []string
	n := 0
	for batch, size := range []int{3, 1, 3, 2, 4} {
		w.setClock(base.Add(time.Duration(batch) * time.Second))
		var objs []string
		for range size {
			n++
			objs = append(objs, indicator(500+n, "2021-01-01T00:00:00.000Z"))
			want = append(want, "indicator--"+uuid(500+n)+"@2021-01-01T00:00:00.000Z")
		}
		w.mustPost(w.alpha.token, w.feed, objs...)
	}
	w.setClock(time.Time{})
	for _, limit := range []int{4, 5, 6} {
		var got []string
		q := fmt.Sprintf("?limit=%d", limit)
		for range 20 {
			env, r := w.objects(w.alpha.token, w.feed, q)
			got = append(got, keys(t, env.Objects)...)
			if len(env.Objects) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(env.Objects))
			}
			if !env.More {
				break
			}
			q = fmt.Sprintf("?limit=%d&added_after=%s", limit, r.header.Get("X-TAXII-Date-Added-Last"))
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: paging by added_after\n got %q\nwant %q", limit, got, want)
		}
	}
}
