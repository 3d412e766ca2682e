package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client/taxiitest"
)

// testdataDir returns <repo root>/../shared/testdata or skips the test.
func testdataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root not found")
		}
		dir = parent
	}
	td := filepath.Join(dir, "..", "shared", "testdata")
	if _, err := os.Stat(td); err != nil {
		t.Skip("shared testdata absent: " + td)
	}
	return td
}

func newClient(t testing.TB, srv *taxiitest.Server, opts ...Option) *Client {
	t.Helper()
	c, err := New(srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// indicators makes n distinct minimal STIX indicators.
func indicators(n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range out {
		out[i] = json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.0.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, i, i/256, i%256))
	}
	return out
}

func objectIDOf(t testing.TB, o json.RawMessage) string {
	t.Helper()
	id := objectID(o)
	if id == "without id" {
		t.Fatalf("object without id: %s", o)
	}
	return id
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x/", "http://", "::"} {
		if _, err := New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

func TestAuthAndHeaders(t *testing.T) {
	tests := []struct {
		name     string
		opts     []Option
		wantAuth string
		wantErr  error
	}{
		{"bearer", []Option{WithToken("s3cret")}, "Bearer s3cret", nil},
		{"basic", []Option{WithBasicAuth("alice", "s3cret")}, "Basic YWxpY2U6czNjcmV0", nil},
		{"wrong token", []Option{WithToken("nope")}, "Bearer nope", ErrUnauthorized},
		{"wrong basic password", []Option{WithBasicAuth("alice", "nope")}, "Basic YWxpY2U6bm9wZQ==", ErrUnauthorized},
		{"none", nil, "", ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := taxiitest.NewServer(t, taxiitest.Config{Token: "s3cret"})
			c := newClient(t, srv, append(tt.opts, WithUserAgent("parley-test/9"))...)
			_, err := c.Discovery(context.Background())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Discovery error = %v, want %v", err, tt.wantErr)
			}
			h := srv.LastHeaders()
			if got := h.Get("Authorization"); got != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tt.wantAuth)
			}
			if got := h.Get("Accept"); got != MediaTypeTAXII {
				t.Errorf("Accept = %q", got)
			}
			if got := h.Get("User-Agent"); got != "parley-test/9" {
				t.Errorf("User-Agent = %q", got)
			}
		})
	}
}

func TestDiscoveryRootsAndCollections(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{MaxContentLength: 12345})
	c := newClient(t, srv)
	ctx := context.Background()
	d, err := c.Discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.APIRoots) != 1 {
		t.Fatalf("api_roots = %v", d.APIRoots)
	}
	// A root given as discovery's absolute URL and as a bare name must agree.
	for _, root := range []string{d.APIRoots[0], taxiitest.Root, "/" + taxiitest.Root + "/"} {
		info, err := c.APIRoot(ctx, root)
		if err != nil {
			t.Fatalf("APIRoot(%q): %v", root, err)
		}
		if info.MaxContentLength != 12345 {
			t.Errorf("APIRoot(%q).MaxContentLength = %d", root, info.MaxContentLength)
		}
	}
	cols, err := c.Collections(ctx, taxiitest.Root)
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != 2 {
		t.Fatalf("collections = %+v", cols)
	}
	col, err := c.Collection(ctx, taxiitest.Root, taxiitest.Collection)
	if err != nil {
		t.Fatal(err)
	}
	if !col.CanRead || !col.CanWrite || col.ID != taxiitest.Collection {
		t.Errorf("collection = %+v", col)
	}
	if _, err := c.Collection(ctx, taxiitest.Root, "no-such"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown collection: %v, want ErrNotFound", err)
	}
	if _, err := c.APIRoot(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown root: %v, want ErrNotFound", err)
	}
}

func TestObjectLifecycle(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{})
	c := newClient(t, srv)
	ctx := context.Background()
	objs := indicators(5)
	v2 := bytes.Replace(objs[0], []byte(`"modified":"2026-01-01T00:00:00.000Z"`), []byte(`"modified":"2026-02-01T00:00:00.000Z"`), 1)
	st, err := c.AddObjects(ctx, taxiitest.Root, taxiitest.Collection, append(objs, v2))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Complete() || st.SuccessCount != 6 || st.TotalCount != 6 {
		t.Fatalf("status = %+v", st)
	}
	if h := srv.LastHeaders(); h.Get("Content-Type") != MediaTypeTAXII {
		t.Errorf("POST Content-Type = %q", h.Get("Content-Type"))
	}
	again, err := c.Status(ctx, taxiitest.Root, st.ID)
	if err != nil || again.SuccessCount != 6 {
		t.Fatalf("Status = %+v, %v", again, err)
	}

	id := objectIDOf(t, objs[0])
	env, err := c.GetObject(ctx, taxiitest.Root, taxiitest.Collection, id, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Objects) != 1 || !bytes.Contains(env.Objects[0], []byte("2026-02-01")) {
		t.Fatalf("GetObject latest = %s", env.Objects)
	}
	env, err = c.GetObject(ctx, taxiitest.Root, taxiitest.Collection, id, Filter{Versions: []string{"all"}})
	if err != nil || len(env.Objects) != 2 {
		t.Fatalf("GetObject all versions = %d objects, %v", len(env.Objects), err)
	}
	vs, err := c.Versions(ctx, taxiitest.Root, taxiitest.Collection, id, Filter{})
	if err != nil || len(vs.Versions) != 2 {
		t.Fatalf("Versions = %+v, %v", vs, err)
	}
	m, err := c.Manifest(ctx, taxiitest.Root, taxiitest.Collection, Filter{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Objects) != 2 || !m.More || m.Next == "" || m.DateAddedFirst.IsZero() {
		t.Errorf("Manifest page = %+v", m)
	}
	page, err := c.GetObjects(ctx, taxiitest.Root, taxiitest.Collection, Filter{IDs: []string{objectIDOf(t, objs[3]), objectIDOf(t, objs[4])}})
	if err != nil || len(page.Objects) != 2 || page.More {
		t.Fatalf("GetObjects by id = %+v, %v", page, err)
	}
	if err := c.DeleteObject(ctx, taxiitest.Root, taxiitest.Collection, id, Filter{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetObject(ctx, taxiitest.Root, taxiitest.Collection, id, Filter{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetObject after delete: %v, want ErrNotFound", err)
	}
	if err := c.DeleteObject(ctx, taxiitest.Root, taxiitest.Collection, id, Filter{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	if _, err := c.AddObjects(ctx, taxiitest.Root, taxiitest.ReadOnlyCollection, objs[:1]); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("write to read-only collection: %v, want ErrUnauthorized", err)
	}
	if _, err := c.AddObjects(ctx, taxiitest.Root, taxiitest.Collection, []json.RawMessage{json.RawMessage(`[1]`)}); err == nil {
		t.Error("AddObjects accepted a non-object")
	}
}

func TestAllObjectsPagination(t *testing.T) {
	tests := []struct {
		name        string
		cfg         taxiitest.Config
		n, limit    int
		wantPages   int
		filterTypes []string
	}{
		{"next exact pages", taxiitest.Config{}, 300, 100, 3, nil},
		{"next ragged", taxiitest.Config{}, 301, 100, 4, nil},
		{"server caps limit", taxiitest.Config{MaxPageSize: 50}, 120, 1000, 3, nil},
		{"added_after paging without next", taxiitest.Config{NoNext: true}, 250, 100, 3, nil},
		{"empty collection", taxiitest.Config{}, 0, 100, 1, nil},
		{"filtered to nothing", taxiitest.Config{}, 10, 100, 1, []string{"malware"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := taxiitest.NewServer(t, tt.cfg)
			c := newClient(t, srv)
			ctx := context.Background()
			want := indicators(tt.n)
			for i := 0; i < len(want); i += 100 {
				if _, err := c.AddObjects(ctx, taxiitest.Root, taxiitest.Collection, want[i:min(i+100, len(want))]); err != nil {
					t.Fatal(err)
				}
			}
			before := srv.Requests()
			var got []string
			for o, err := range c.AllObjects(ctx, taxiitest.Root, taxiitest.Collection, Filter{Limit: tt.limit, Types: tt.filterTypes}) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, objectIDOf(t, o))
			}
			if tt.filterTypes != nil {
				want = nil
			}
			if len(got) != len(want) {
				t.Fatalf("got %d objects, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != objectIDOf(t, want[i]) {
					t.Fatalf("object %d = %s, want %s", i, got[i], objectIDOf(t, want[i]))
				}
			}
			if pages := srv.Requests() - before; pages != int64(tt.wantPages) {
				t.Errorf("pages = %d, want %d", pages, tt.wantPages)
			}
		})
	}
}

func TestAllObjectsStopsEarly(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{})
	c := newClient(t, srv)
	ctx := context.Background()
	if _, err := c.AddObjects(ctx, taxiitest.Root, taxiitest.Collection, indicators(250)); err != nil {
		t.Fatal(err)
	}
	before := srv.Requests()
	n := 0
	for _, err := range c.AllObjects(ctx, taxiitest.Root, taxiitest.Collection, Filter{Limit: 100}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 150 {
			break
		}
	}
	if n != 150 {
		t.Fatalf("consumed %d", n)
	}
	// Pages 1 and 2, and at most the one page read ahead of page 2, which
	// the break cancels (it may not have reached the server yet).
	if got := srv.Requests() - before; got < 2 || got > 3 {
		t.Errorf("requests after break = %d, want 2 or 3", got)
	}
}

// While the caller is still on page 1, the next page is already being
// fetched: the server sees its request before the caller moves on.
func TestAllObjectsReadsAhead(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{})
	c := newClient(t, srv)
	ctx := context.Background()
	if _, err := c.AddObjects(ctx, taxiitest.Root, taxiitest.Collection, indicators(250)); err != nil {
		t.Fatal(err)
	}
	before := srv.Requests()
	n := 0
	for _, err := range c.AllObjects(ctx, taxiitest.Root, taxiitest.Collection, Filter{Limit: 100}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 1 {
			deadline := time.Now().Add(10 * time.Second)
			for srv.Requests()-before < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("page 2 was not requested while the caller held page 1 (%d requests)", srv.Requests()-before)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	if n != 250 {
		t.Fatalf("read %d objects, want 250", n)
	}
	if got := srv.Requests() - before; got != 3 {
		t.Errorf("requests = %d, want 3 (no page read beyond the last)", got)
	}
}

// fixedServer answers every request with one canned response.
func fixedServer(t *testing.T, status int, contentType, body string, header map[string]string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestErrorResponses(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		ct, body  string
		sentinel  error
		wantTitle string
		wantCode  string
		wantHTTP  string
	}{
		{"404 resource", 404, MediaTypeTAXII, `{"title":"Collection not found","error_code":"C404","http_status":"404"}`, ErrNotFound, "Collection not found", "C404", "404"},
		{"401", 401, MediaTypeTAXII, `{"title":"Unauthorized"}`, ErrUnauthorized, "Unauthorized", "", ""},
		{"403 numeric http_status", 403, MediaTypeTAXII, `{"title":"Forbidden","http_status":403}`, ErrUnauthorized, "Forbidden", "", "403"},
		{"413", 413, MediaTypeTAXII, `{"title":"Too big","description":"max 10"}`, ErrTooLarge, "Too big", "", ""},
		{"415", 415, MediaTypeTAXII, `{"title":"Bad media"}`, ErrUnsupportedMedia, "Bad media", "", ""},
		{"406", 406, "application/json", `{"title":"Not acceptable"}`, ErrUnsupportedMedia, "Not acceptable", "", ""},
		{"502 html from a proxy", 502, "text/html", `<html>bad gateway</html>`, nil, "", "", ""},
		{"500 empty", 500, "", ``, nil, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fixedServer(t, tt.status, tt.ct, tt.body, nil)
			_, err := c.GetObjects(context.Background(), "r", "c", Filter{})
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not *Error", err)
			}
			if te.StatusCode != tt.status || te.Title != tt.wantTitle || te.ErrorCode != tt.wantCode || te.HTTPStatus != tt.wantHTTP {
				t.Errorf("Error = %+v", te)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
			for _, s := range []error{ErrNotFound, ErrUnauthorized, ErrTooLarge, ErrUnsupportedMedia} {
				if s != tt.sentinel && errors.Is(err, s) {
					t.Errorf("error also matches %v", s)
				}
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tt.status)) {
				t.Errorf("message %q lacks the status", err)
			}
		})
	}
}

func TestProtocolViolations(t *testing.T) {
	tests := []struct {
		name, ct, body string
	}{
		{"json not taxii", "application/json", `{"objects":[]}`},
		{"taxii 2.0", "application/vnd.oasis.taxii+json; version=2.0", `{"objects":[]}`},
		{"taxii other version", "application/taxii+json;version=2.0", `{"objects":[]}`},
		{"truncated", MediaTypeTAXII, `{"objects":[{"id":"x"}`},
		{"objects not array", MediaTypeTAXII, `{"objects":{"id":"x"}}`},
		{"object not object", MediaTypeTAXII, `{"objects":[1]}`},
		{"more not bool", MediaTypeTAXII, `{"more":"yes"}`},
		{"trailing data", MediaTypeTAXII, `{"objects":[]} {}`},
		{"array envelope", MediaTypeTAXII, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fixedServer(t, 200, tt.ct, tt.body, nil)
			_, err := c.GetObjects(context.Background(), "r", "c", Filter{})
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error = %v, want ErrProtocol", err)
			}
		})
	}
	t.Run("more without next or header loops no further", func(t *testing.T) {
		c := fixedServer(t, 200, MediaTypeTAXII, `{"more":true,"objects":[{"id":"a"}]}`, nil)
		var err error
		n := 0
		for _, e := range c.AllObjects(context.Background(), "r", "c", Filter{}) {
			if e != nil {
				err = e
				break
			}
			n++
		}
		if n != 1 || !errors.Is(err, ErrProtocol) {
			t.Fatalf("n=%d err=%v, want 1 object then ErrProtocol", n, err)
		}
	})
	t.Run("repeated next without objects", func(t *testing.T) {
		c := fixedServer(t, 200, MediaTypeTAXII, `{"more":true,"next":"n1"}`, nil)
		var err error
		for _, e := range c.AllObjects(context.Background(), "r", "c", Filter{}) {
			if e != nil {
				err = e
				break
			}
		}
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("err=%v, want ErrProtocol", err)
		}
	})
	t.Run("envelope over the size bound", func(t *testing.T) {
		c := fixedServer(t, 200, MediaTypeTAXII, `{"objects":[{"id":"`+strings.Repeat("a", 1000)+`"}]}`, nil)
		WithMaxEnvelopeBytes(100)(c)
		if _, err := c.GetObjects(context.Background(), "r", "c", Filter{}); !errors.Is(err, ErrProtocol) {
			t.Fatalf("err=%v, want ErrProtocol", err)
		}
	})
}

func TestFilterQuery(t *testing.T) {
	tests := []struct {
		f    Filter
		want string
	}{
		{Filter{}, ""},
		{Filter{IDs: []string{"a--1", "b--2"}}, "match%5Bid%5D=a--1%2Cb--2"},
		{Filter{Types: []string{"indicator"}, Limit: 5}, "limit=5&match%5Btype%5D=indicator"},
		{Filter{Versions: []string{"all"}, SpecVersions: []string{"2.1"}}, "match%5Bspec_version%5D=2.1&match%5Bversion%5D=all"},
		{Filter{AddedAfter: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600)), Next: "abc"}, "added_after=2026-01-02T02%3A04%3A05.000006Z&next=abc"},
	}
	for _, tt := range tests {
		if got := tt.f.Query().Encode(); got != tt.want {
			t.Errorf("%+v.Query() = %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestPathEscaping(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.EscapedPath()
		w.WriteHeader(404)
	}))
	defer srv.Close()
	c, err := New(srv.URL + "/base")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.GetObject(context.Background(), "root", "coll", "a/../b", Filter{})
	if want := "/base/root/collections/coll/objects/a%2F..%2Fb/"; got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
	_, _ = c.Discovery(context.Background())
	if want := "/base/taxii2/"; got != want {
		t.Errorf("discovery path = %q, want %q", got, want)
	}
}

func TestRootOnOtherHostRefused(t *testing.T) {
	c, err := New("http://127.0.0.1:1/", WithToken("t"))
	if err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"http://example.com/api1/", "https://127.0.0.1:1/api1/", "//evil.example/api1/"} {
		if _, err := c.APIRoot(context.Background(), root); err == nil || !strings.Contains(err.Error(), "is not on") {
			t.Errorf("APIRoot(%q) = %v, want refusal", root, err)
		}
	}
}

func TestRequireLoopback(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:5000/", true},
		{"http://127.8.9.10/", true},
		{"https://localhost:8443/x", true},
		{"http://[::1]:80/", true},
		{"http://example.com/", false},
		{"http://10.0.0.1/", false},
		{"http://localhost.example.com/", false},
		{"http://127.0.0.1.nip.io/", false},
		{"::", false},
	}
	for _, tt := range tests {
		err := RequireLoopback(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("RequireLoopback(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && tt.url != "::" && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("RequireLoopback(%q) = %v, want ErrNotLoopback", tt.url, err)
		}
	}
}
