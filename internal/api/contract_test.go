package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/api"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange/exchangetest"
	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store/sqlite"
	"github.com/parley-cti/parley/internal/verification"
)

// apiFixture is the management API over real services on a SQLite store:
// A and B under an agreement in force, C in none.
type apiFixture struct {
	*exchangetest.Pair
	srv *httptest.Server
}

func newAPI(t *testing.T) *apiFixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := exchangetest.NewPair(t, db)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	api.New(api.Services{Exchange: p.Ex, Parties: p.Parties, Handovers: escrow.New(db, p.Ex), Requests: request.New(db, p.Ex),
		Matches: matching.New(db, p.Ex), Reports: report.New(p.Ex, db.Ledger(), p.Parties), Verifications: verification.New(db),
		Events: db.Events(), Log: log}).Register(mux)
	f := &apiFixture{Pair: p, srv: httptest.NewServer(mux)}
	t.Cleanup(f.srv.Close)
	return f
}

// answer is one response, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// code is the error code of an error body ("" when there is none).
func (a answer) code() string {
	var e struct {
		Code string `json:"error"`
	}
	json.Unmarshal(a.body, &e)
	return e.Code
}

func (f *apiFixture) do(t *testing.T, method, path, token, contentType string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func (f *apiFixture) json(t *testing.T, method, path, token string, v any) answer {
	t.Helper()
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	return f.do(t, method, path, token, "application/json", body)
}

// internalWords are what a store or Go error says and a client must never
// read.
var internalWords = []string{"sqlite", "sql:", "SQL", "database", "exchange:", "store:", "escrow:", "request:", "goroutine", "panic"}

func checkErrorBody(t *testing.T, name string, a answer) {
	t.Helper()
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: error Content-Type %q, want JSON", name, ct)
	}
	var e struct {
		Code    string `json:"error"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil || e.Code == "" || e.Message == "" {
		t.Errorf("%s: error body %q is not {error, message}", name, a.body)
	}
	for _, w := range internalWords {
		if strings.Contains(e.Message, w) {
			t.Errorf("%s: error message %q shows internal text %q", name, e.Message, w)
		}
	}
}

// TestAPIRefusesMalformedInput drives each kind of bad request through the
// real routes: every one is refused with its status and code, as JSON, and
// nothing internal reaches the client.
func TestAPIRefusesMalformedInput(t *testing.T) {
	f := newAPI(t)
	ag := f.Agreement
	huge := bytes.Repeat([]byte(" "), api.MaxBody+1)
	cases := []struct {
		name, method, path, token, ctype string
		body                             []byte
		status                           int
		code                             string
	}{
		{"no token", "GET", "/api/v1/me", "", "", nil, 401, "unauthenticated"},
		{"wrong token", "GET", "/api/v1/me", "not-a-token", "", nil, 401, "unauthenticated"},
		{"unknown endpoint", "GET", "/api/v1/nothing-here", f.TokA, "", nil, 404, "not_found"},
		{"not JSON", "POST", "/api/v1/requests", f.TokA, "application/json", []byte(`{"agreement":`), 400, "bad_json"},
		{"two JSON values", "POST", "/api/v1/requests", f.TokA, "application/json", []byte(`{} {}`), 400, "bad_json"},
		{"unknown field", "POST", "/api/v1/requests", f.TokA, "application/json", []byte(`{"agreement":"` + ag + `","subject":"x","reason":"y","sneaky":1}`), 400, "bad_json"},
		{"wrong media type", "POST", "/api/v1/requests", f.TokA, "text/plain", []byte(`{}`), 415, "unsupported_media_type"},
		{"body over the limit", "POST", "/api/v1/agreements", f.TokA, "application/json", huge, 413, "too_large"},
		{"request under no agreement", "POST", "/api/v1/requests", f.TokA, "application/json",
			[]byte(`{"agreement":"agreement--00000000-0000-4000-8000-000000000000","subject":"indicator--00000000-0000-4000-8000-000000000001","reason":"r"}`), 404, "not_found"},
		{"handover of an unknown case", "GET", "/api/v1/handovers/handover--00000000-0000-4000-8000-000000000000", f.TokA, "", nil, 404, "not_found"},
		{"request of an unknown case", "GET", "/api/v1/requests/request--00000000-0000-4000-8000-000000000000", f.TokA, "", nil, 404, "not_found"},
		{"balance by a bystander", "GET", "/api/v1/agreements/" + ag + "/balance", f.TokC, "", nil, 404, "not_found"},
		{"ledger opening of no entry", "GET", "/api/v1/ledger/openings/999999", f.TokA, "", nil, 404, "not_found"},
		{"ledger opening not a number, answered as one not to open", "GET", "/api/v1/ledger/openings/abc", f.TokA, "", nil, 404, "not_found"},
		{"event number not a number", "GET", "/api/v1/events?after=x&follow=false", f.TokA, "", nil, 400, "invalid"},
	}
	for _, c := range cases {
		a := f.do(t, c.method, c.path, c.token, c.ctype, c.body)
		if a.status != c.status || (c.code != "" && a.code() != c.code) {
			t.Errorf("%s: %s %s → %d %s, want %d %s (%s)", c.name, c.method, c.path, a.status, a.code(), c.status, c.code, a.body)
			continue
		}
		checkErrorBody(t, c.name, a)
		if c.status == 401 && a.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}
}

// TestAPIBystanderLearnsNothing: a party with a valid token that is in no
// agreement gets, for the agreement of others and every case under it,
// exactly the answer it gets for ids that do not exist, so it cannot even
// learn that they do.
func TestAPIBystanderLearnsNothing(t *testing.T) {
	f := newAPI(t)
	f.Ingest(t, f.A, f.Agreement, 0, 3)
	ho := f.json(t, "POST", "/api/v1/handovers", f.TokA, map[string]any{"agreement": f.Agreement, "delivers": "three indicators", "expects": "three back"})
	rq := f.json(t, "POST", "/api/v1/requests", f.TokA, map[string]any{"agreement": f.Agreement, "subject": "indicator--00000000-0000-4000-8000-000000000001", "reason": "more context"})
	if ho.status != 201 || rq.status != 201 {
		t.Fatalf("setup: handover %d %s, request %d %s", ho.status, ho.body, rq.status, rq.body)
	}
	var h, q struct {
		ID string `json:"id"`
	}
	json.Unmarshal(ho.body, &h)
	json.Unmarshal(rq.body, &q)
	missingAg := "agreement--00000000-0000-4000-8000-00000000dead"
	missingHo := "handover--00000000-0000-4000-8000-00000000dead"
	missingRq := "request--00000000-0000-4000-8000-00000000dead"
	// Each path has one %s: the real id, then one that does not exist.
	from, to := time.Now().UTC().AddDate(0, 0, -7).Format("2006-01-02"), time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	pairs := []struct{ method, path, real, missing string }{
		{"GET", "/api/v1/agreements/%s", f.Agreement, missingAg},
		{"GET", "/api/v1/agreements/%s/balance", f.Agreement, missingAg},
		{"GET", "/api/v1/agreements/%s/contests", f.Agreement, missingAg},
		{"GET", "/api/v1/agreements/%s/requests", f.Agreement, missingAg},
		{"GET", "/api/v1/agreements/%s/report?from=" + from + "&to=" + to, f.Agreement, missingAg},
		{"GET", "/api/v1/handovers/%s", h.ID, missingHo},
		{"POST", "/api/v1/handovers/%s/accept", h.ID, missingHo},
		{"POST", "/api/v1/handovers/%s/decline", h.ID, missingHo},
		{"GET", "/api/v1/handovers/%s/deposit", h.ID, missingHo},
		{"DELETE", "/api/v1/handovers/%s/deposit", h.ID, missingHo},
		{"GET", "/api/v1/requests/%s", q.ID, missingRq},
		{"POST", "/api/v1/requests/%s/ack", q.ID, missingRq},
	}
	for _, p := range pairs {
		realPath, missingPath := fmt.Sprintf(p.path, p.real), fmt.Sprintf(p.path, p.missing)
		real := f.do(t, p.method, realPath, f.TokC, "application/json", []byte(`{}`))
		missing := f.do(t, p.method, missingPath, f.TokC, "application/json", []byte(`{}`))
		if real.status != 404 {
			t.Errorf("bystander %s %s → %d %s, want 404", p.method, realPath, real.status, real.body)
		}
		norm := func(b []byte, id string) string { return strings.ReplaceAll(string(b), id, "ID") }
		if real.status != missing.status || norm(real.body, p.real) != norm(missing.body, p.missing) {
			t.Errorf("bystander %s %s → %d %s; for a missing id → %d %s: they must not differ", p.method, realPath, real.status, real.body, missing.status, missing.body)
		}
	}
	// Nor do its listings show the others' cases.
	for _, path := range []string{"/api/v1/agreements", "/api/v1/handovers", "/api/v1/requests", "/api/v1/matches", "/api/v1/events?follow=false"} {
		a := f.do(t, "GET", path, f.TokC, "", nil)
		if a.status != 200 {
			t.Errorf("bystander GET %s → %d %s", path, a.status, a.body)
			continue
		}
		for _, id := range []string{f.Agreement, h.ID, q.ID} {
			if bytes.Contains(a.body, []byte(id)) {
				t.Errorf("bystander GET %s shows %s: %s", path, id, a.body)
			}
		}
	}
}

// TestAPICounterpartStepsAreItsOwn: within the agreement, each step
// belongs to one side. The proposer cannot accept its own handover nor
// acknowledge its own request; the other side can; a step repeated is a
// conflict, not a second ledger entry.
func TestAPICounterpartStepsAreItsOwn(t *testing.T) {
	f := newAPI(t)
	ho := f.json(t, "POST", "/api/v1/handovers", f.TokA, map[string]any{"agreement": f.Agreement, "delivers": "names", "expects": "names back"})
	var h struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if ho.status != 201 || json.Unmarshal(ho.body, &h) != nil {
		t.Fatalf("propose: %d %s", ho.status, ho.body)
	}
	if a := f.json(t, "POST", "/api/v1/handovers/"+h.ID+"/accept", f.TokA, nil); a.status != 403 && a.status != 409 {
		t.Errorf("the proposer accepting its own handover → %d %s, want 403 or 409", a.status, a.body)
	} else {
		checkErrorBody(t, "self-accept", a)
	}
	a := f.json(t, "POST", "/api/v1/handovers/"+h.ID+"/accept", f.TokB, nil)
	if a.status != 200 || a.header.Get("X-Parley-Ledger-Index") == "" {
		t.Fatalf("the counterpart accepting → %d %s (ledger index %q)", a.status, a.body, a.header.Get("X-Parley-Ledger-Index"))
	}
	if again := f.json(t, "POST", "/api/v1/handovers/"+h.ID+"/accept", f.TokB, nil); again.status != 409 {
		t.Errorf("accepting twice → %d %s, want 409", again.status, again.body)
	} else if again.header.Get("X-Parley-Ledger-Index") != "" {
		t.Errorf("a refused step got a ledger receipt %s", again.header.Get("X-Parley-Ledger-Index"))
	}

	rq := f.json(t, "POST", "/api/v1/requests", f.TokA, map[string]any{"agreement": f.Agreement, "subject": "indicator--00000000-0000-4000-8000-000000000001", "reason": "context"})
	var q struct {
		ID string `json:"id"`
	}
	if rq.status != 201 || json.Unmarshal(rq.body, &q) != nil {
		t.Fatalf("file: %d %s", rq.status, rq.body)
	}
	if a := f.json(t, "POST", "/api/v1/requests/"+q.ID+"/ack", f.TokA, nil); a.status != 403 && a.status != 409 {
		t.Errorf("the requester acknowledging its own request → %d %s, want 403 or 409", a.status, a.body)
	}
	if a := f.json(t, "POST", "/api/v1/requests/"+q.ID+"/refuse", f.TokB, map[string]any{"code": "no-such-code"}); a.status != 400 {
		t.Errorf("refusing with an unknown code → %d %s, want 400", a.status, a.body)
	} else {
		checkErrorBody(t, "unknown refusal code", a)
	}
	if a := f.json(t, "POST", "/api/v1/requests/"+q.ID+"/ack", f.TokB, nil); a.status != 200 {
		t.Errorf("the counterpart acknowledging → %d %s", a.status, a.body)
	}
}

// TestAPIDepositLimits: a deposit announcing more than the limit is
// refused before a byte of it is read.
func TestAPIDepositLimits(t *testing.T) {
	f := newAPI(t)
	ho := f.json(t, "POST", "/api/v1/handovers", f.TokA, map[string]any{"agreement": f.Agreement, "delivers": "d", "expects": "e",
		"deadline": time.Now().Add(time.Hour).UTC()})
	var h struct {
		ID string `json:"id"`
	}
	if ho.status != 201 || json.Unmarshal(ho.body, &h) != nil {
		t.Fatalf("propose: %d %s", ho.status, ho.body)
	}
	// Announce one byte over the limit and send none of it: the answer
	// must come at once, from the header alone.
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "PUT /api/v1/handovers/%s/deposit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		h.ID, f.TokA, escrow.MaxDeposit+1)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a deposit announcing %d bytes: %v", escrow.MaxDeposit+1, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 {
		t.Errorf("deposit announcing %d bytes → %d %s, want 413", escrow.MaxDeposit+1, resp.StatusCode, b)
	}
	checkErrorBody(t, "deposit over the limit", answer{resp.StatusCode, resp.Header, b})
}
