// Package taxiitest runs an in-memory TAXII 2.1 server for tests of the
// client and of anything built on it (benchmarks, CLI flows).
//
// It implements the parts of TAXII 2.1 a client exercises — discovery, API
// root, collections, objects with match[id]/match[type]/match[version]/
// added_after/limit/next, single objects, versions, manifest, delete, status,
// media-type and size checks, Bearer or Basic authentication — and can behave
// like servers that page without `next` or answer with pending statuses. It
// must never be used outside tests: it keeps everything in memory and checks
// nothing about STIX beyond id and type.
package taxiitest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/wire"
)

// Names of the fixture: one API root with a read-write and a read-only collection.
const (
	Root               = "api1"
	Collection         = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
	ReadOnlyCollection = "52892447-4d7e-4f70-b94d-d7f22742ff63"
	MediaType          = wire.MediaTAXII
)

// Config selects the server's behaviour. The zero value is a well-behaved
// server with no authentication, pages of at most 100 and no size limit.
type Config struct {
	Token            string // if set, require "Bearer Token" or Basic with password Token
	MaxContentLength int64  // advertised and enforced; 0 means 10 MiB
	MaxPageSize      int    // cap on limit; 0 means 100
	NoNext           bool   // page with more + X-TAXII-Date-Added-Last, never next
	Async            bool   // POST answers pending; the first status GET completes it
	// PairPosts makes each POST of objects wait (up to 5 s) until another
	// is in flight before it is answered, so that a client meant to keep
	// two or more POSTs going shows it in MaxPostsInFlight, and one that
	// sends them one at a time shows 1.
	PairPosts bool
}

type stored struct {
	id, typ, version string
	added            time.Time
	raw              json.RawMessage
}

// Server is a running test server; URL is its base URL.
type Server struct {
	*httptest.Server
	cfg Config

	mu        sync.Mutex
	objects   map[string][]stored // collection id -> objects in date_added order
	statuses  map[string]map[string]any
	clock     time.Time
	nStatuses int

	requests atomic.Int64
	posts    atomic.Int64 // POSTs of objects in flight
	maxPosts atomic.Int64
	peers    sync.Map // remote addresses seen: one per client connection
	// LastHeaders holds the headers of the latest request, for header tests.
	lastHeaders atomic.Pointer[http.Header]
}

// NewServer starts a server and stops it when the test ends.
func NewServer(t testing.TB, cfg Config) *Server {
	if cfg.MaxContentLength == 0 {
		cfg.MaxContentLength = 10 << 20
	}
	if cfg.MaxPageSize == 0 {
		cfg.MaxPageSize = 100
	}
	s := &Server{
		cfg:      cfg,
		objects:  map[string][]stored{Collection: nil, ReadOnlyCollection: nil},
		statuses: map[string]map[string]any{},
		clock:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /taxii2/{$}", s.discovery)
	mux.HandleFunc("GET /{root}/{$}", s.apiRoot)
	mux.HandleFunc("GET /{root}/collections/{$}", s.collections)
	mux.HandleFunc("GET /{root}/collections/{coll}/{$}", s.collection)
	mux.HandleFunc("GET /{root}/collections/{coll}/objects/{$}", s.getObjects)
	mux.HandleFunc("POST /{root}/collections/{coll}/objects/{$}", s.addObjects)
	mux.HandleFunc("GET /{root}/collections/{coll}/objects/{id}/{$}", s.getObject)
	mux.HandleFunc("DELETE /{root}/collections/{coll}/objects/{id}/{$}", s.deleteObject)
	mux.HandleFunc("GET /{root}/collections/{coll}/objects/{id}/versions/{$}", s.versions)
	mux.HandleFunc("GET /{root}/collections/{coll}/manifest/{$}", s.manifest)
	mux.HandleFunc("GET /{root}/status/{id}/{$}", s.status)
	s.Server = httptest.NewServer(s.middleware(mux))
	t.Cleanup(s.Close)
	return s
}

// MaxPostsInFlight returns the most POSTs of objects the server has held
// at once.
func (s *Server) MaxPostsInFlight() int64 { return s.maxPosts.Load() }

// Requests returns how many requests the server has answered.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Conns returns how many client connections (remote addresses) the server
// has answered on.
func (s *Server) Conns() int {
	n := 0
	s.peers.Range(func(any, any) bool { n++; return true })
	return n
}

// LastHeaders returns the headers of the latest request.
func (s *Server) LastHeaders() http.Header {
	if h := s.lastHeaders.Load(); h != nil {
		return *h
	}
	return nil
}

// Count returns the number of stored object versions in a collection.
func (s *Server) Count(coll string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects[coll])
}

func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.peers.Store(r.RemoteAddr, true)
		h := r.Header.Clone()
		s.lastHeaders.Store(&h)
		if s.cfg.Token != "" && !s.authorized(r) {
			writeError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		if !acceptsTAXII(r.Header.Get("Accept")) {
			writeError(w, http.StatusNotAcceptable, "Accept must be "+MediaType)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	if _, pw, ok := r.BasicAuth(); ok {
		return pw == s.cfg.Token
	}
	return r.Header.Get("Authorization") == "Bearer "+s.cfg.Token
}

func acceptsTAXII(h string) bool {
	for _, part := range strings.Split(h, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == wire.MediaTypeTAXII && (params["version"] == "" || params["version"] == "2.1") {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, desc string) {
	writeJSON(w, status, map[string]any{
		"title":       http.StatusText(status),
		"description": desc,
		"error_code":  "E" + strconv.Itoa(status),
		"http_status": strconv.Itoa(status),
	})
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{
		"title":     "taxiitest",
		"default":   s.URL + "/" + Root + "/",
		"api_roots": []string{s.URL + "/" + Root + "/"},
	})
}

func (s *Server) rootOK(w http.ResponseWriter, r *http.Request) bool {
	if r.PathValue("root") != Root {
		writeError(w, 404, "no such API root")
		return false
	}
	return true
}

func (s *Server) apiRoot(w http.ResponseWriter, r *http.Request) {
	if !s.rootOK(w, r) {
		return
	}
	writeJSON(w, 200, map[string]any{
		"title":              "test root",
		"versions":           []string{MediaType},
		"max_content_length": s.cfg.MaxContentLength,
	})
}

func collectionResource(id string) map[string]any {
	return map[string]any{
		"id": id, "title": "collection " + id, "can_read": true, "can_write": id == Collection,
		"media_types": []string{wire.MediaSTIX},
	}
}

func (s *Server) collections(w http.ResponseWriter, r *http.Request) {
	if !s.rootOK(w, r) {
		return
	}
	writeJSON(w, 200, map[string]any{"collections": []any{collectionResource(Collection), collectionResource(ReadOnlyCollection)}})
}

// coll checks root and collection; it returns the collection id or "".
func (s *Server) coll(w http.ResponseWriter, r *http.Request) string {
	if !s.rootOK(w, r) {
		return ""
	}
	c := r.PathValue("coll")
	if c != Collection && c != ReadOnlyCollection {
		writeError(w, 404, "no such collection")
		return ""
	}
	return c
}

func (s *Server) collection(w http.ResponseWriter, r *http.Request) {
	if c := s.coll(w, r); c != "" {
		writeJSON(w, 200, collectionResource(c))
	}
}

func (s *Server) addObjects(w http.ResponseWriter, r *http.Request) {
	n := s.posts.Add(1)
	defer s.posts.Add(-1)
	for m := s.maxPosts.Load(); n > m && !s.maxPosts.CompareAndSwap(m, n); m = s.maxPosts.Load() {
	}
	if s.cfg.PairPosts {
		for give := time.Now().Add(5 * time.Second); s.posts.Load() < 2 && time.Now().Before(give); {
			time.Sleep(time.Millisecond)
		}
	}
	c := s.coll(w, r)
	if c == "" {
		return
	}
	if c != Collection {
		writeError(w, 403, "collection is read-only")
		return
	}
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != wire.MediaTypeTAXII || (params["version"] != "" && params["version"] != "2.1") {
		writeError(w, 415, "Content-Type must be "+MediaType)
		return
	}
	if r.ContentLength < 0 || r.ContentLength > s.cfg.MaxContentLength {
		writeError(w, 413, fmt.Sprintf("Content-Length %d exceeds %d", r.ContentLength, s.cfg.MaxContentLength))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxContentLength+1))
	if err != nil || int64(len(body)) > s.cfg.MaxContentLength {
		writeError(w, 413, "body too large")
		return
	}
	var env struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		writeError(w, 400, "envelope is not valid JSON")
		return
	}
	s.mu.Lock()
	var successes, failures []map[string]string
	for _, raw := range env.Objects {
		var o struct{ ID, Type, Modified, Created string }
		if json.Unmarshal(raw, &o) != nil || o.ID == "" || o.Type == "" || !strings.HasPrefix(o.ID, o.Type+"--") {
			failures = append(failures, map[string]string{"id": o.ID, "message": "object needs type and id"})
			continue
		}
		v := o.Modified
		if v == "" {
			v = o.Created
		}
		s.clock = s.clock.Add(time.Millisecond)
		s.objects[c] = append(s.objects[c], stored{id: o.ID, typ: o.Type, version: v, added: s.clock, raw: raw})
		successes = append(successes, map[string]string{"id": o.ID, "version": v})
	}
	s.nStatuses++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.nStatuses)
	complete := map[string]any{
		"id": id, "status": "complete", "total_count": len(env.Objects),
		"success_count": len(successes), "successes": successes,
		"failure_count": len(failures), "failures": failures, "pending_count": 0,
	}
	s.statuses[id] = complete
	s.mu.Unlock()
	if s.cfg.Async {
		writeJSON(w, 202, map[string]any{
			"id": id, "status": "pending", "total_count": len(env.Objects),
			"success_count": 0, "failure_count": 0, "pending_count": len(env.Objects),
		})
		return
	}
	writeJSON(w, 202, complete)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if !s.rootOK(w, r) {
		return
	}
	s.mu.Lock()
	st, ok := s.statuses[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		writeError(w, 404, "no such status")
		return
	}
	writeJSON(w, 200, st)
}

// selected applies the match filters and added_after; versions default to last.
func (s *Server) selected(c string, q map[string][]string, id string) ([]stored, error) {
	split := func(k string) []string {
		if v := q[k]; len(v) > 0 && v[0] != "" {
			return strings.Split(v[0], ",")
		}
		return nil
	}
	ids, types, versions := split("match[id]"), split("match[type]"), split("match[version]")
	if id != "" {
		ids = []string{id}
	}
	var after time.Time
	if v := q["added_after"]; len(v) > 0 {
		t, err := time.Parse(time.RFC3339Nano, v[0])
		if err != nil {
			return nil, fmt.Errorf("added_after: %v", err)
		}
		after = t
	}
	all := slices.Contains(versions, "all")
	latest := map[string]string{}
	for _, o := range s.objects[c] {
		if o.version > latest[o.id] {
			latest[o.id] = o.version
		}
	}
	var out []stored
	for _, o := range s.objects[c] {
		if len(ids) > 0 && !slices.Contains(ids, o.id) || len(types) > 0 && !slices.Contains(types, o.typ) {
			continue
		}
		if !o.added.After(after) {
			continue
		}
		if !all && len(versions) == 0 && o.version != latest[o.id] {
			continue
		}
		if len(versions) > 0 && !all && !slices.Contains(versions, o.version) && !(slices.Contains(versions, "last") && o.version == latest[o.id]) {
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

// page cuts sel by limit and next; next is the offset, opaque to clients.
func (s *Server) page(w http.ResponseWriter, r *http.Request, sel []stored) (page []stored, more bool, next string, ok bool) {
	q := r.URL.Query()
	limit := s.cfg.MaxPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeError(w, 400, "limit must be a positive integer")
			return nil, false, "", false
		}
		limit = min(n, limit)
	}
	off := 0
	if v := q.Get("next"); v != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(v, "off-"))
		if err != nil || n < 0 || !strings.HasPrefix(v, "off-") {
			writeError(w, 400, "next is not valid")
			return nil, false, "", false
		}
		off = min(n, len(sel))
	}
	end := min(off+limit, len(sel))
	page, more = sel[off:end], end < len(sel)
	if more && !s.cfg.NoNext {
		next = "off-" + strconv.Itoa(end)
	}
	if len(page) > 0 {
		w.Header().Set("X-TAXII-Date-Added-First", page[0].added.Format("2006-01-02T15:04:05.000000Z"))
		w.Header().Set("X-TAXII-Date-Added-Last", page[len(page)-1].added.Format("2006-01-02T15:04:05.000000Z"))
	}
	return page, more, next, true
}

func (s *Server) objectsPage(w http.ResponseWriter, r *http.Request, id string) {
	c := s.coll(w, r)
	if c == "" {
		return
	}
	s.mu.Lock()
	sel, err := s.selected(c, r.URL.Query(), id)
	s.mu.Unlock()
	if err != nil {
		writeError(w, 400, err.Error())
		return
	}
	if id != "" && len(sel) == 0 {
		writeError(w, 404, "no such object")
		return
	}
	page, more, next, ok := s.page(w, r, sel)
	if !ok {
		return
	}
	objs := make([]json.RawMessage, len(page))
	for i, o := range page {
		objs[i] = o.raw
	}
	env := map[string]any{"more": more}
	if next != "" {
		env["next"] = next
	}
	if len(objs) > 0 {
		env["objects"] = objs
	}
	writeJSON(w, 200, env)
}

func (s *Server) getObjects(w http.ResponseWriter, r *http.Request) { s.objectsPage(w, r, "") }

func (s *Server) getObject(w http.ResponseWriter, r *http.Request) {
	s.objectsPage(w, r, r.PathValue("id"))
}

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request) {
	c := s.coll(w, r)
	if c == "" {
		return
	}
	if c != Collection {
		writeError(w, 403, "collection is read-only")
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	before := len(s.objects[c])
	s.objects[c] = slices.DeleteFunc(s.objects[c], func(o stored) bool { return o.id == id })
	deleted := before - len(s.objects[c])
	s.mu.Unlock()
	if deleted == 0 {
		writeError(w, 404, "no such object")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	c := s.coll(w, r)
	if c == "" {
		return
	}
	q := r.URL.Query()
	q.Set("match[version]", "all")
	s.mu.Lock()
	sel, err := s.selected(c, q, r.PathValue("id"))
	s.mu.Unlock()
	if err != nil || len(sel) == 0 {
		writeError(w, 404, "no such object")
		return
	}
	page, more, next, ok := s.page(w, r, sel)
	if !ok {
		return
	}
	vs := make([]string, len(page))
	for i, o := range page {
		vs[i] = o.version
	}
	res := map[string]any{"more": more, "versions": vs}
	if next != "" {
		res["next"] = next
	}
	writeJSON(w, 200, res)
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	c := s.coll(w, r)
	if c == "" {
		return
	}
	s.mu.Lock()
	sel, err := s.selected(c, r.URL.Query(), "")
	s.mu.Unlock()
	if err != nil {
		writeError(w, 400, err.Error())
		return
	}
	page, more, next, ok := s.page(w, r, sel)
	if !ok {
		return
	}
	recs := make([]map[string]string, len(page))
	for i, o := range page {
		recs[i] = map[string]string{"id": o.id, "version": o.version, "date_added": o.added.Format(time.RFC3339Nano), "media_type": wire.MediaSTIX}
	}
	res := map[string]any{"more": more, "objects": recs}
	if next != "" {
		res["next"] = next
	}
	writeJSON(w, 200, res)
}
