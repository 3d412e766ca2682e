package taxii_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/sqlite"
	"github.com/parley-cti/parley/internal/taxii"
)

// env is one real parley server on a loopback port over a fresh SQLite
// store. restart stops it and opens the same data directory again, as an
// operator's restart would.
type env struct {
	t       *testing.T
	dir     string
	maxLen  int64
	srv     *server.Server
	db      *sqlite.DB
	base    string
	stop    context.CancelFunc
	done    chan error
	clockMu sync.Mutex
	clock   time.Time    // zero: the real clock
	errLog  lockedBuffer // what the server logged at level ERROR
}

// lockedBuffer collects log output from the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const mediaTAXII = "application/taxii+json;version=2.1"

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvMax(t, 0)
}

func newEnvMax(t *testing.T, maxLen int64) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), maxLen: maxLen}
	e.start()
	t.Cleanup(e.shutdown)
	return e
}

func (e *env) start() {
	t := e.t
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, e.dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(&e.errLog, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := server.New(ctx, server.Config{Data: e.dir, Listen: "127.0.0.1:0", Logger: log, MaxContentLength: e.maxLen}, db)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	srv.Ex.SetClock(e.now)
	ln, err := srv.Listen()
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	e.srv, e.db, e.stop, e.done = srv, db, cancel, done
	e.base = srv.URL(ln)
}

func (e *env) shutdown() {
	if e.stop == nil {
		return
	}
	e.stop()
	if err := <-e.done; err != nil {
		e.t.Errorf("serve: %v", err)
	}
	if err := e.db.Close(); err != nil {
		e.t.Errorf("closing store: %v", err)
	}
	e.stop = nil
}

// restart stops the server, closes the store and starts again on the same
// data directory.
func (e *env) restart() {
	e.t.Helper()
	e.shutdown()
	e.start()
}

// setClock fixes the time the exchange stamps as date_added; the zero time
// restores the real clock.
func (e *env) setClock(t time.Time) {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	e.clock = t
}

func (e *env) now() time.Time {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	if e.clock.IsZero() {
		return time.Now().UTC()
	}
	return e.clock
}

// member is a party with a token.
type member struct {
	id, name, token, tokenID string
}

func (e *env) party(name string) member {
	e.t.Helper()
	ctx := context.Background()
	p, _, err := e.srv.Parties.Create(ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, id, err := e.srv.Parties.AddToken(ctx, p.ID, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return member{id: p.ID, name: name, token: tok, tokenID: id}
}

func (e *env) collection(title string, readers, writers []member) string {
	e.t.Helper()
	ids := func(ms []member) []string {
		out := []string{}
		for _, m := range ms {
			out = append(out, m.id)
		}
		return out
	}
	c, err := e.srv.Ex.CreateCollection(context.Background(), title, "for "+title, ids(readers), ids(writers))
	if err != nil {
		e.t.Fatal(err)
	}
	return c.ID
}

// collURL is the URL of a collection in the operator root, plus suffix.
func (e *env) collURL(coll, suffix string) string {
	return e.base + taxii.Prefix + exchange.OperatorRoot + "/collections/" + coll + "/" + suffix
}

// resp is a response read whole.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d, body %q: %v", r.status, r.body, err)
	}
}

// req is one HTTP request; headers with an empty value are left out.
type req struct {
	method, url string
	token       string
	header      map[string]string
	body        []byte
}

var client = &http.Client{Timeout: 60 * time.Second}

func (e *env) do(r req) resp {
	e.t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, r.url, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if _, ok := r.header["Accept"]; !ok {
		hr.Header.Set("Accept", mediaTAXII)
	}
	if r.body != nil {
		if _, ok := r.header["Content-Type"]; !ok {
			hr.Header.Set("Content-Type", mediaTAXII)
		}
	}
	for k, v := range r.header {
		if v != "" {
			hr.Header.Set(k, v)
		} else {
			hr.Header.Del(k)
		}
	}
	res, err := client.Do(hr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, r.url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", r.method, r.url, err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) get(token, url string) resp {
	e.t.Helper()
	return e.do(req{url: url, token: token})
}

// errorResource checks r is a TAXII error message resource (TAXII 2.1
// section 3.6.1) with the status given, and returns its description.
func errorResource(t *testing.T, r resp, status int) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != mediaTAXII {
		t.Errorf("error Content-Type %q, want %q", ct, mediaTAXII)
	}
	var er struct {
		Title       *string `json:"title"`
		Description *string `json:"description"`
		HTTPStatus  *string `json:"http_status"`
	}
	r.json(t, &er)
	if er.Title == nil || *er.Title == "" {
		t.Errorf("error resource without title: %s", r.body)
	}
	if er.Description == nil || *er.Description == "" {
		t.Errorf("error resource without description: %s", r.body)
	}
	if er.HTTPStatus == nil || *er.HTTPStatus != fmt.Sprint(status) {
		t.Errorf("error resource http_status %v, want the string %q: %s", er.HTTPStatus, fmt.Sprint(status), r.body)
	}
	if er.Description == nil {
		return ""
	}
	return *er.Description
}

// envelope is a TAXII envelope as a client reads it.
type envelope struct {
	More    bool              `json:"more"`
	Next    string            `json:"next"`
	Objects []json.RawMessage `json:"objects"`
}

// status is a TAXII status resource.
type status struct {
	ID               string `json:"id"`
	Status           string `json:"status"`
	RequestTimestamp string `json:"request_timestamp"`
	TotalCount       int    `json:"total_count"`
	SuccessCount     int    `json:"success_count"`
	FailureCount     int    `json:"failure_count"`
	PendingCount     int    `json:"pending_count"`
	Successes        []struct {
		ID, Version, Message string
	} `json:"successes"`
	Failures []struct {
		ID, Version, Message string
	} `json:"failures"`
}

func (e *env) post(token, coll string, objs ...string) resp {
	e.t.Helper()
	return e.do(req{method: http.MethodPost, url: e.collURL(coll, "objects/"), token: token, body: envelopeOf(objs...)})
}

// mustPost posts objects and requires every one to succeed.
func (e *env) mustPost(token, coll string, objs ...string) status {
	e.t.Helper()
	r := e.post(token, coll, objs...)
	if r.status != http.StatusAccepted {
		e.t.Fatalf("POST: status %d: %s", r.status, r.body)
	}
	var st status
	r.json(e.t, &st)
	if st.FailureCount != 0 || st.SuccessCount != len(objs) {
		e.t.Fatalf("POST: %s", r.body)
	}
	return st
}

func envelopeOf(objs ...string) []byte {
	return []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
}

// uuid returns a fixed, valid UUIDv4 for n, so that tests can name objects.
func uuid(n int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n)
}

func identity(n int, modified string) string {
	return fmt.Sprintf(`{"type":"identity","spec_version":"2.1","id":"identity--%s","created":"2020-01-01T00:00:00.000Z","modified":%q,"name":"party %d"}`,
		uuid(n), modified, n)
}

func indicator(n int, modified string) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--%s","created":"2020-01-01T00:00:00.000Z","modified":%q,"name":"ip %d","pattern":"[ipv4-addr:value = '10.0.0.%d']","pattern_type":"stix","valid_from":"2020-01-01T00:00:00Z"}`,
		uuid(n), modified, n, n%250)
}

// sharedTestdata returns <repo root>/../shared/testdata/sub, or skips.
func sharedTestdata(t *testing.T, sub string) string {
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
			t.Skip("repository root not found; shared test data unavailable")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "testdata", sub)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared test data %s absent: %v", p, err)
	}
	return p
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
