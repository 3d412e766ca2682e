// Package taxii is parley's TAXII 2.1 HTTP surface: discovery, API roots,
// collections, objects, manifests, versions and status resources, with the
// media types, filters, stateless pagination cursors and error message
// resources of the OASIS TAXII 2.1 specification.
//
// It translates HTTP into calls on package exchange, which makes every
// access decision; this package never reads the store for intelligence on
// its own and never decides who may see what. Error text from lower layers
// reaches clients only through the sentinel mapping in errors.go.
package taxii

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/wire"
)

// Config describes the server to clients.
type Config struct {
	Title            string
	Description      string
	Contact          string
	MaxContentLength int64 // bytes accepted in one POST; default 16 MiB
}

// Handler serves TAXII 2.1 under /taxii2/.
type Handler struct {
	cfg     Config
	ex      *exchange.Service
	parties *party.Service
	cursors cursorCodec
	log     *slog.Logger
}

// LedgerIndexHeader carries, on every state-changing response, the index of
// the ledger entry that records the change.
const LedgerIndexHeader = wire.LedgerIndexHeader

// Prefix is the path under which discovery and the API roots live.
const Prefix = "/taxii2/"

// CursorKeySetting is the settings key holding the cursor HMAC key, shared
// by every instance on one database.
const CursorKeySetting = "taxii.cursor-key"

// New returns a TAXII server. cursorKey must be the same on every instance
// sharing a database (see CursorKeySetting).
func New(cfg Config, ex *exchange.Service, parties *party.Service, cursorKey []byte, log *slog.Logger) *Handler {
	if cfg.MaxContentLength <= 0 {
		cfg.MaxContentLength = 16 << 20
	}
	if cfg.Title == "" {
		cfg.Title = "parley"
	}
	return &Handler{cfg: cfg, ex: ex, parties: parties, cursors: cursorCodec{key: cursorKey}, log: log}
}

type route struct {
	pattern  string
	methods  map[string]handlerFunc
	stixToo  bool // the endpoint may also answer Accept: application/stix+json
	postOnly bool
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p party.Principal) error

// Register adds every TAXII route to mux.
func (s *Handler) Register(mux *http.ServeMux) {
	routes := []route{
		{pattern: "/taxii2/", methods: map[string]handlerFunc{"GET": s.discovery}},
		{pattern: "/taxii2/{root}/", methods: map[string]handlerFunc{"GET": s.apiRoot}},
		{pattern: "/taxii2/{root}/status/{status}/", methods: map[string]handlerFunc{"GET": s.status}},
		{pattern: "/taxii2/{root}/collections/", methods: map[string]handlerFunc{"GET": s.collections}},
		{pattern: "/taxii2/{root}/collections/{coll}/", methods: map[string]handlerFunc{"GET": s.collection}},
		{pattern: "/taxii2/{root}/collections/{coll}/manifest/", methods: map[string]handlerFunc{"GET": s.manifest}},
		{pattern: "/taxii2/{root}/collections/{coll}/objects/", stixToo: true, methods: map[string]handlerFunc{"GET": s.getObjects, "POST": s.addObjects}},
		{pattern: "/taxii2/{root}/collections/{coll}/objects/{obj}/", stixToo: true, methods: map[string]handlerFunc{"GET": s.getObject, "DELETE": s.deleteObject}},
		{pattern: "/taxii2/{root}/collections/{coll}/objects/{obj}/versions/", methods: map[string]handlerFunc{"GET": s.versions}},
	}
	for _, rt := range routes {
		h := s.wrap(rt)
		mux.Handle(rt.pattern+"{$}", h)
		if rt.pattern != "/taxii2/" {
			// TAXII URLs end in "/", but clients often drop it.
			mux.Handle(strings.TrimSuffix(rt.pattern, "/"), h)
		}
	}
	// Anything else under the prefix is a TAXII 404, not the mux's text one.
	mux.Handle("/taxii2/", s.wrap(route{methods: map[string]handlerFunc{}}))
}

// wrap applies, in order: method check, authentication, content
// negotiation, and the error mapping.
func (s *Handler) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		p, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if len(rt.methods) == 0 {
			s.writeError(w, r, notFound())
			return
		}
		h, ok := rt.methods[r.Method]
		if !ok {
			allowed := make([]string, 0, len(rt.methods))
			for m := range rt.methods {
				allowed = append(allowed, m)
			}
			slices.Sort(allowed) // one Allow header for one route, whatever the map order
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			s.writeError(w, r, problem(http.StatusMethodNotAllowed, "method-not-allowed", fmt.Sprintf("%s is not supported here; use %s", r.Method, strings.Join(allowed, " or "))))
			return
		}
		if !acceptable(r.Header.Get("Accept"), rt.stixToo) {
			s.writeError(w, r, problem(http.StatusNotAcceptable, "not-acceptable",
				fmt.Sprintf("Accept %q admits no media type this server sends; use Accept: %s", r.Header.Get("Accept"), MediaTAXII)))
			return
		}
		if err := h(w, r, p); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authenticate accepts "Authorization: Bearer TOKEN" and HTTP Basic with any
// user name and the token as password, which existing TAXII clients send.
func (s *Handler) authenticate(r *http.Request) (party.Principal, error) {
	token := party.TokenFromAuthorization(r.Header.Get("Authorization"))
	if token == "" {
		return party.Principal{}, party.ErrUnauthenticated
	}
	return s.parties.Authenticate(r.Context(), token)
}

// baseURL is the scheme and host clients used to reach us, for the absolute
// URLs discovery returns.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Handler) discovery(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	roots, err := s.ex.APIRoots(r.Context(), p)
	if err != nil {
		return err
	}
	urls := make([]string, 0, len(roots))
	for _, root := range roots {
		urls = append(urls, baseURL(r)+Prefix+root+"/")
	}
	d := struct {
		Title       string   `json:"title"`
		Description string   `json:"description,omitempty"`
		Contact     string   `json:"contact,omitempty"`
		Default     string   `json:"default,omitempty"`
		APIRoots    []string `json:"api_roots,omitempty"` // TAXII 2.1 forbids empty lists: none is no key
	}{Title: s.cfg.Title, Description: s.cfg.Description, Contact: s.cfg.Contact, APIRoots: urls}
	if len(urls) > 0 {
		d.Default = urls[0]
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// root checks the API root exists for the caller.
func (s *Handler) root(ctx context.Context, r *http.Request, p party.Principal) (string, error) {
	root := r.PathValue("root")
	ok, err := s.ex.HasAPIRoot(ctx, p, root)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", notFound()
	}
	return root, nil
}

func (s *Handler) apiRoot(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	root, err := s.root(r.Context(), r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Title            string   `json:"title"`
		Description      string   `json:"description,omitempty"`
		Versions         []string `json:"versions"`
		MaxContentLength int64    `json:"max_content_length"`
	}{Title: s.cfg.Title + " / " + root, Versions: []string{MediaTAXII}, MaxContentLength: s.cfg.MaxContentLength})
	return nil
}

type collectionResource struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	CanRead     bool     `json:"can_read"`
	CanWrite    bool     `json:"can_write"`
	MediaTypes  []string `json:"media_types"`
}

func resource(c exchange.CollectionView) collectionResource {
	return collectionResource{ID: c.ID, Title: c.Title, Description: c.Description, CanRead: c.Read, CanWrite: c.Write,
		MediaTypes: []string{MediaSTIX}}
}

func (s *Handler) collections(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	root, err := s.root(r.Context(), r, p)
	if err != nil {
		return err
	}
	cs, err := s.ex.Collections(r.Context(), p, root)
	if err != nil {
		return err
	}
	out := struct {
		Collections []collectionResource `json:"collections,omitempty"` // no collections: no key, as TAXII 2.1 forbids empty lists
	}{}
	for _, c := range cs {
		out.Collections = append(out.Collections, resource(c))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Handler) collection(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	c, a, err := s.ex.Collection(r.Context(), p, r.PathValue("root"), r.PathValue("coll"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resource(exchange.CollectionView{Collection: c, Access: a}))
	return nil
}

// page runs a paginated query for an endpoint: it checks and decodes the
// cursor against the query's binding, and returns the page and the next
// cursor.
func (s *Handler) page(r *http.Request, p party.Principal, kind string, f filter) (store.Page, string, error) {
	root, coll := r.PathValue("root"), r.PathValue("coll")
	binding := strings.Join([]string{kind, p.PartyID, root, coll, r.PathValue("obj"), f.canon}, "\x00")
	if f.next != "" {
		pos, err := s.cursors.decode(f.next, binding)
		if err != nil {
			return store.Page{}, "", badParam("next: this cursor is not valid for this request; cursors are bound to the collection, filters and token that produced them")
		}
		f.q.After = pos
	}
	f.q.Collection = coll
	limit := f.q.Limit
	f.q.Limit++ // one object beyond the page shows whether a date_added tie spans its end
	pg, err := s.ex.Query(r.Context(), p, root, f.q)
	if err != nil {
		return store.Page{}, "", err
	}
	if len(pg.Objects) > limit {
		pg.Objects = endBeforeTie(pg.Objects, limit)
		pg.More = true
	}
	next := ""
	if pg.More && len(pg.Objects) > 0 {
		last := pg.Objects[len(pg.Objects)-1]
		next = s.cursors.encode(store.Position{DateAdded: last.DateAdded, Seq: last.Seq}, binding)
	}
	return pg, next, nil
}

// endBeforeTie returns the page of at most limit objects from objs (which
// holds limit+1), ending it before a run of objects sharing one date_added
// that the limit would split. A client resuming with added_after set to
// X-TAXII-Date-Added-Last, as TAXII 2.1 section 3.7 allows instead of next,
// would otherwise never see the rest of the run. A run longer than a whole
// page cannot be kept together; next still resumes inside it exactly.
func endBeforeTie(objs []store.Object, limit int) []store.Object {
	boundary := objs[limit].DateAdded
	if !objs[limit-1].DateAdded.Equal(boundary) {
		return objs[:limit]
	}
	k := limit - 1
	for k > 0 && objs[k-1].DateAdded.Equal(boundary) {
		k--
	}
	if k == 0 {
		return objs[:limit]
	}
	return objs[:k]
}

// setDateHeaders sets the TAXII 2.1 headers X-TAXII-Date-Added-First/Last
// from the page, which clients use to resume with added_after (section 3.7);
// an empty page has no dates to report.
func setDateHeaders(w http.ResponseWriter, pg store.Page) {
	if len(pg.Objects) == 0 {
		return
	}
	w.Header().Set("X-TAXII-Date-Added-First", formatAdded(pg.Objects[0].DateAdded))
	w.Header().Set("X-TAXII-Date-Added-Last", formatAdded(pg.Objects[len(pg.Objects)-1].DateAdded))
}

// writeEnvelope streams an envelope, copying each object's stored bytes
// as they are instead of re-encoding them. An empty page has no "objects"
// key at all: TAXII 2.1 forbids empty lists (section 3.1.1's "MUST NOT be
// empty"), so the empty envelope is {"more":false}.
// envelopeWriters keeps the envelopes' 64 KiB buffers between responses:
// allocating and clearing one per request was ~9 % of the server's CPU on
// a GET by id.
var envelopeWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

func writeEnvelope(w http.ResponseWriter, pg store.Page, next string) {
	setDateHeaders(w, pg)
	w.Header().Set("Content-Type", MediaTAXII)
	w.WriteHeader(http.StatusOK)
	bw := envelopeWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil) // holds no response writer while pooled
		envelopeWriters.Put(bw)
	}()
	fmt.Fprintf(bw, `{"more":%t`, pg.More)
	if next != "" {
		fmt.Fprintf(bw, `,"next":%q`, next)
	}
	if len(pg.Objects) > 0 {
		bw.WriteString(`,"objects":[`)
		for i, o := range pg.Objects {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.Write(o.Raw)
		}
		bw.WriteString("]")
	}
	bw.WriteString("}")
	bw.Flush()
}

func (s *Handler) getObjects(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	f, err := parseFilter(r.URL.RawQuery, objectsParams)
	if err != nil {
		return err
	}
	f.q.RawOnly = true // the envelope copies the stored bytes
	pg, next, err := s.page(r, p, "objects", f)
	if err != nil {
		return err
	}
	writeEnvelope(w, pg, next)
	return nil
}

func (s *Handler) manifest(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	f, err := parseFilter(r.URL.RawQuery, objectsParams)
	if err != nil {
		return err
	}
	pg, next, err := s.page(r, p, "manifest", f)
	if err != nil {
		return err
	}
	type record struct {
		ID        string `json:"id"`
		DateAdded string `json:"date_added"`
		Version   string `json:"version"`
		MediaType string `json:"media_type"`
	}
	out := struct {
		More    bool     `json:"more"`
		Next    string   `json:"next,omitempty"`
		Objects []record `json:"objects,omitempty"` // an empty list is no key (TAXII 2.1)
	}{More: pg.More, Next: next}
	for _, o := range pg.Objects {
		out.Objects = append(out.Objects, record{o.ID, formatAdded(o.DateAdded), stix.FormatTime(o.Version), MediaSTIX})
	}
	setDateHeaders(w, pg)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// objectExists tells an object with no version matching the filters apart
// from one that is not there at all (404).
func (s *Handler) objectExists(r *http.Request, p party.Principal) error {
	pg, err := s.ex.Query(r.Context(), p, r.PathValue("root"), store.ObjectQuery{
		Collection: r.PathValue("coll"), IDs: []string{r.PathValue("obj")}, Versions: store.VersionFilter{All: true}, Limit: 1})
	if err != nil {
		return err
	}
	if len(pg.Objects) == 0 {
		return notFound()
	}
	return nil
}

func (s *Handler) getObject(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	if !idRE.MatchString(r.PathValue("obj")) {
		return notFound()
	}
	f, err := parseFilter(r.URL.RawQuery, objectParams)
	if err != nil {
		return err
	}
	f.q.IDs = []string{r.PathValue("obj")}
	f.q.RawOnly = true
	pg, next, err := s.page(r, p, "object", f)
	if err != nil {
		return err
	}
	if len(pg.Objects) == 0 && f.next == "" {
		if err := s.objectExists(r, p); err != nil {
			return err
		}
	}
	writeEnvelope(w, pg, next)
	return nil
}

func (s *Handler) versions(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	if !idRE.MatchString(r.PathValue("obj")) {
		return notFound()
	}
	f, err := parseFilter(r.URL.RawQuery, versionsParams)
	if err != nil {
		return err
	}
	f.q.IDs = []string{r.PathValue("obj")}
	// Every version, in date_added order like every other list here: TAXII
	// 2.1 section 5.7 gives this endpoint the X-TAXII-Date-Added-First/Last
	// headers and limit/next paging, which presume that order.
	f.q.Versions = store.VersionFilter{All: true}
	pg, next, err := s.page(r, p, "versions", f)
	if err != nil {
		return err
	}
	if len(pg.Objects) == 0 && f.next == "" {
		if err := s.objectExists(r, p); err != nil {
			return err
		}
	}
	out := struct {
		More     bool     `json:"more"`
		Next     string   `json:"next,omitempty"`
		Versions []string `json:"versions,omitempty"` // an empty list is no key (TAXII 2.1)
	}{More: pg.More, Next: next}
	for _, o := range pg.Objects {
		out.Versions = append(out.Versions, stix.FormatTime(o.Version))
	}
	setDateHeaders(w, pg)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Handler) deleteObject(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	if !idRE.MatchString(r.PathValue("obj")) {
		return notFound()
	}
	f, err := parseFilter(r.URL.RawQuery, deleteParams)
	if err != nil {
		return err
	}
	v := f.q.Versions
	if v.IsZero() {
		// TAXII 2.1 section 5.6 deletes "the object" unless match[version]
		// narrows it to some versions; deleting only the latest would
		// silently promote an older version to latest.
		v.All = true
	}
	if err := s.ex.Delete(r.Context(), p, r.PathValue("root"), r.PathValue("coll"), r.PathValue("obj"), v, f.q.SpecVersions); err != nil {
		return err
	}
	// Section 5.7 answers 200 with the TAXII media type and no body; the
	// OASIS Python client checks the Content-Type of every response.
	w.Header().Set("Content-Type", MediaTAXII)
	w.WriteHeader(http.StatusOK)
	return nil
}

// addObjects accepts an envelope, stores the valid objects and answers 202
// with the status resource, which names each failed object and why.
func (s *Handler) addObjects(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	values, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	for k := range values {
		return badParam("unknown query parameter %q; adding objects takes none", k)
	}
	if !postable(r.Header.Get("Content-Type")) {
		return problem(http.StatusUnsupportedMediaType, "unsupported-media-type",
			fmt.Sprintf("Content-Type %q is not accepted; send Content-Type: %s", r.Header.Get("Content-Type"), MediaTAXII))
	}
	// Existence and write access are checked before the body is read, so an
	// outsider learns nothing from how its body is judged.
	// The decision is made here once and passed on: Ingest re-reads only
	// the agreement's state, under its lock.
	grant, err := s.ex.Writable(r.Context(), p, r.PathValue("root"), r.PathValue("coll"))
	if err != nil {
		return err
	}
	if r.ContentLength > s.cfg.MaxContentLength {
		return tooLarge(s.cfg.MaxContentLength)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxContentLength))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(s.cfg.MaxContentLength)
		}
		return problem(http.StatusBadRequest, "bad-body", "the request body could not be read")
	}
	objs, err := parseEnvelope(body)
	if err != nil {
		return err
	}
	res, err := s.ex.IngestGranted(r.Context(), p, grant, objs)
	if err != nil {
		return err
	}
	// The receipt: the ledger entry recording this batch, for `parley verify`.
	w.Header().Set(LedgerIndexHeader, strconv.FormatInt(res.LedgerIndex, 10))
	writeJSON(w, http.StatusAccepted, statusResource(res.Status))
	return nil
}

func tooLarge(limit int64) error {
	return problem(http.StatusRequestEntityTooLarge, "too-large",
		fmt.Sprintf("the request body is larger than max_content_length (%d bytes); send fewer objects per request", limit))
}

// parseEnvelope splits a TAXII envelope into its objects without decoding
// them; each is validated on its own so that one bad object does not sink
// the others.
func parseEnvelope(body []byte) ([]json.RawMessage, error) {
	if objs, ok := splitEnvelope(body); ok {
		return objs, nil
	}
	return parseEnvelopeCarefully(body)
}

// parseEnvelopeCarefully decodes the envelope with encoding/json and says
// precisely what is wrong with one that is not acceptable. A body that is not
// JSON is a 400 (the request was not understood); JSON that is not a usable
// envelope is a 422, the status TAXII 2.1 section 5.5 lists for content the
// server could not process.
func parseEnvelopeCarefully(body []byte) ([]json.RawMessage, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, problem(http.StatusBadRequest, "not-json", fmt.Sprintf("the request body is not valid JSON (at byte %d: %v)", se.Offset, se))
		}
		return nil, problem(http.StatusUnprocessableEntity, "not-envelope", "the request body must be a TAXII envelope: a JSON object with an \"objects\" array")
	}
	if t, ok := env["type"]; ok && string(t) == `"bundle"` {
		return nil, problem(http.StatusUnprocessableEntity, "bundle-not-envelope",
			`the request body is a STIX bundle; TAXII 2.1 takes an envelope: {"objects": [...]} (move the bundle's objects into it)`)
	}
	raw, ok := env["objects"]
	if !ok {
		return nil, problem(http.StatusUnprocessableEntity, "not-envelope", "the envelope has no \"objects\" array")
	}
	var objs []json.RawMessage
	if err := json.Unmarshal(raw, &objs); err != nil {
		return nil, problem(http.StatusUnprocessableEntity, "not-envelope", "\"objects\" must be an array of STIX objects")
	}
	if len(objs) == 0 {
		return nil, problem(http.StatusUnprocessableEntity, "empty-envelope", "the envelope's \"objects\" array is empty")
	}
	for k := range env {
		if k != "objects" && k != "more" && k != "next" {
			return nil, problem(http.StatusUnprocessableEntity, "not-envelope", fmt.Sprintf("unknown envelope property %q; an envelope has objects, more and next", k))
		}
	}
	return objs, nil
}

type statusJSON struct {
	ID               string               `json:"id"`
	Status           string               `json:"status"`
	RequestTimestamp string               `json:"request_timestamp"`
	TotalCount       int                  `json:"total_count"`
	SuccessCount     int                  `json:"success_count"`
	Successes        []store.StatusDetail `json:"successes,omitempty"`
	FailureCount     int                  `json:"failure_count"`
	Failures         []store.StatusDetail `json:"failures,omitempty"`
	PendingCount     int                  `json:"pending_count"`
	Pendings         []store.StatusDetail `json:"pendings,omitempty"`
}

func statusResource(st store.Status) statusJSON {
	return statusJSON{ID: st.ID, Status: st.Status, RequestTimestamp: formatAdded(st.RequestTimestamp), TotalCount: st.TotalCount,
		SuccessCount: len(st.Successes), Successes: st.Successes, FailureCount: len(st.Failures), Failures: st.Failures,
		PendingCount: len(st.Pendings), Pendings: st.Pendings}
}

func (s *Handler) status(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	st, err := s.ex.Status(r.Context(), p, r.PathValue("root"), r.PathValue("status"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, statusResource(st))
	return nil
}
