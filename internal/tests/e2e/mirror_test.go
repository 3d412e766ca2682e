package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
)

// waitMirror polls p's mirror until done says it is where the test wants
// it, and fails with the last status after a generous deadline.
func waitMirror(t *testing.T, p *Party, id string, what string, done func(*client.Mirror) bool) *client.Mirror {
	t.Helper()
	var m *client.Mirror
	var err error
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		m, err = p.C.MirrorStatus(ctx, id)
		if err == nil && done(m) {
			return m
		}
	}
	t.Fatalf("mirror %s never %s: last status %+v, %v", id, what, m, err)
	return nil
}

// sourceFeed is an operator collection on a second parley server, written
// by its own party: the source a mirror pulls from.
func sourceFeed(t *testing.T) (src *Server, owner *Party, coll string) {
	t.Helper()
	src = Start(t)
	owner = src.NewParty(t, "source-owner")
	c, err := src.Srv.Ex.CreateCollection(ctx, "feed", "", []string{owner.ID}, []string{owner.ID})
	if err != nil {
		t.Fatal(err)
	}
	return src, owner, c.ID
}

func postAll(t *testing.T, p *Party, root, coll string, objs []json.RawMessage) {
	t.Helper()
	st, err := p.C.AddObjects(ctx, root, coll, objs)
	if err != nil || len(st.Failures) != 0 {
		t.Fatalf("posting %d objects: %+v, %v", len(objs), st, err)
	}
}

// tool is a valid STIX object outside the agreements' scope (types
// indicator, malware, threat-actor).
func tool(n int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"tool","spec_version":"2.1","id":"tool--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"tool %d"}`, n, n))
}

// A mirror from another parley's TAXII collection into an agreement: every
// in-scope object arrives in the party's contribution collection through
// the normal ingest (the counterpart's allowance grows with the credits),
// the out-of-scope one is refused and reported, the listing never shows
// the source's token, and the other party sees nothing of the mirror.
func TestMirrorFromParley(t *testing.T) {
	src, owner, feed := sourceFeed(t)
	objs := append(Indicators(1, 23), tool(1))
	postAll(t, owner, "shared", feed, objs)

	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "beta")
	d := Document(t, a, b, nil)
	Activate(t, a, b, d)
	own, _ := Collections(t, a, d.ID)

	m, err := a.C.AddMirror(ctx, client.MirrorSpec{Agreement: d.ID, SourceURL: src.URL + "/taxii2/shared/", Collection: feed,
		Token: owner.Token, PageLimit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if m.SourceToken != "[redacted]" || m.Collection != own {
		t.Fatalf("added mirror: token %q, collection %q (own %q)", m.SourceToken, m.Collection, own)
	}
	m = waitMirror(t, a, m.ID, "caught up", func(m *client.Mirror) bool { return m.Accepted+m.Refused == 24 && !m.Paging })
	if m.Accepted != 23 || m.Refused != 1 || !strings.Contains(m.LastRefusal, "tool") || m.Pages != 5 || m.LastSuccess == nil || m.Failures != 0 {
		t.Fatalf("after the pull: %+v", m)
	}
	if got := ReadAll(t, a, d.ID, own, 100); len(got) != 23 {
		t.Fatalf("alpha's contributions hold %d objects, want 23", len(got))
	}
	// They earned credits as any contribution does.
	if bal, err := a.C.Balance(ctx, d.ID); err != nil || bal.Contributed != 23 || bal.Credits != 23 {
		t.Fatalf("alpha's balance after the pull: %+v, %v; want 23 contributed and credited", bal, err)
	}

	// The token is stored, never shown: not in the list, not in one status.
	for _, path := range []string{"/api/v1/mirrors", "/api/v1/mirrors/" + m.ID} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+a.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.Contains(string(body), owner.Token) || !strings.Contains(string(body), "[redacted]") {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	// Beta neither sees nor removes alpha's mirror.
	if ms, err := b.C.Mirrors(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("beta's mirrors: %+v, %v", ms, err)
	}
	if _, err := b.C.MirrorStatus(ctx, m.ID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("beta reading alpha's mirror: %v", err)
	}
	if err := b.C.RemoveMirror(ctx, m.ID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("beta removing alpha's mirror: %v", err)
	}
	// New objects at the source follow, and only they are pulled.
	postAll(t, owner, "shared", feed, Indicators(100, 3))
	m = waitMirror(t, a, m.ID, "took the 3 new objects", func(m *client.Mirror) bool { return m.Accepted >= 26 })
	if m.Accepted != 26 || m.Refused != 1 {
		t.Fatalf("after 3 more: accepted %d refused %d, want 26 and 1 (nothing pulled twice)", m.Accepted, m.Refused)
	}
	if err := a.C.RemoveMirror(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if ms, err := a.C.Mirrors(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("after removal: %+v, %v", ms, err)
	}
	if got := ReadAll(t, a, d.ID, own, 100); len(got) != 26 {
		t.Fatalf("after removal alpha's contributions hold %d objects, want the 26 pulled", len(got))
	}
}

// Definitions the server refuses, and agreements that are not the party's.
func TestMirrorRefusesBadDefinitions(t *testing.T) {
	s := Start(t)
	a, b, c := s.NewParty(t, "alpha"), s.NewParty(t, "beta"), s.NewParty(t, "gamma")
	d := Document(t, a, b, nil)
	Activate(t, a, b, d)
	good := client.MirrorSpec{Agreement: d.ID, SourceURL: "http://127.0.0.1:1/taxii2/root/", Collection: "c1"}
	for _, tc := range []struct {
		name string
		edit func(*client.MirrorSpec)
		code string
	}{
		{"file URL", func(m *client.MirrorSpec) { m.SourceURL = "file:///etc/passwd" }, "invalid"},
		{"credentials in the URL", func(m *client.MirrorSpec) { m.SourceURL = "https://u:p@taxii.example/root/" }, "invalid"},
		{"no host", func(m *client.MirrorSpec) { m.SourceURL = "http:///root/" }, "invalid"},
		{"no collection", func(m *client.MirrorSpec) { m.Collection = "" }, "invalid"},
		{"collection with a path", func(m *client.MirrorSpec) { m.Collection = "../../x" }, "invalid"},
		{"page limit too high", func(m *client.MirrorSpec) { m.PageLimit = 1 << 20 }, "invalid"},
		{"unknown agreement", func(m *client.MirrorSpec) { m.Agreement = "agreement--00000000-0000-4000-8000-000000000000" }, "not_found"},
	} {
		spec := good
		tc.edit(&spec)
		if _, err := a.C.AddMirror(ctx, spec); !client.IsAPIError(err, tc.code) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	// A party outside the agreement cannot feed it.
	if _, err := c.C.AddMirror(ctx, good); !client.IsAPIError(err, "not_found") {
		t.Errorf("gamma mirroring into alpha and beta's agreement: %v", err)
	}
	if _, err := a.C.AddMirror(ctx, good); err != nil {
		t.Fatalf("the good definition: %v", err)
	}
}

// A source answering 503 with Retry-After is asked again no sooner than it
// said, and the failure shows in the status meanwhile; the pages that
// follow go in, their invalid STIX refused and counted, the valid kept.
func TestMirrorBacksOffAndRefusesInvalidSTIX(t *testing.T) {
	var mu sync.Mutex
	var hits []time.Time
	var queries []url.Values
	srcSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, time.Now())
		queries = append(queries, r.URL.Query())
		n := len(hits)
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer source-secret" || r.URL.Path != "/api1/collections/c1/objects/" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			w.Header().Set("Content-Type", "application/taxii+json;version=2.1")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"title":"busy, come back later"}`))
			return
		}
		w.Header().Set("Content-Type", "application/taxii+json;version=2.1")
		if r.URL.Query().Get("next") == "" {
			w.Header().Set("X-TAXII-Date-Added-Last", "2026-02-01T00:00:00.000001Z")
			objs := []json.RawMessage{Indicator(1, ""), json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"indicator--not-a-uuid"}`), Indicator(2, "")}
			json.NewEncoder(w).Encode(map[string]any{"more": true, "next": "page-2", "objects": objs})
			return
		}
		w.Header().Set("X-TAXII-Date-Added-Last", "2026-02-01T00:00:00.000002Z")
		json.NewEncoder(w).Encode(map[string]any{"more": false, "objects": []json.RawMessage{Indicator(3, "")}})
	}))
	defer srcSrv.Close()

	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "beta")
	d := Document(t, a, b, nil)
	Activate(t, a, b, d)
	m, err := a.C.AddMirror(ctx, client.MirrorSpec{Agreement: d.ID, SourceURL: srcSrv.URL + "/api1", Collection: "c1", Token: "source-secret"})
	if err != nil {
		t.Fatal(err)
	}
	failed := waitMirror(t, a, m.ID, "recorded the 503", func(m *client.Mirror) bool { return m.LastError != "" })
	if !strings.Contains(failed.LastError, "503") || !strings.Contains(failed.LastError, "busy, come back later") || failed.LastErrorAt == nil {
		t.Fatalf("status after the 503: %+v", failed)
	}
	if wait := failed.NextAttempt.Sub(*failed.LastErrorAt); wait < 2*time.Second {
		t.Fatalf("next attempt %v after the 503, want the 2 s Retry-After asked", wait)
	}
	m = waitMirror(t, a, m.ID, "caught up", func(m *client.Mirror) bool { return m.Accepted+m.Refused == 4 && !m.Paging })
	if m.Accepted != 3 || m.Refused != 1 || m.Failures != 0 || !strings.Contains(m.LastRefusal, "indicator--not-a-uuid") ||
		m.AddedAfter != "2026-02-01T00:00:00.000002Z" {
		t.Fatalf("after recovering: %+v", m)
	}
	mu.Lock()
	gap := hits[1].Sub(hits[0])
	second, third := queries[1], queries[2]
	mu.Unlock()
	if gap < 2*time.Second {
		t.Fatalf("asked again %v after a 503 with Retry-After: 2", gap)
	}
	if second.Get("next") != "" || second.Get("added_after") != "" || third.Get("next") != "page-2" || second.Get("limit") != "500" {
		t.Fatalf("queries: %v then %v", second, third)
	}
	own, _ := Collections(t, a, d.ID)
	if got := ReadAll(t, a, d.ID, own, 100); len(got) != 3 {
		t.Fatalf("alpha's contributions hold %d objects, want the 3 valid", len(got))
	}
}

// A server stopped in the middle of a paging session resumes it after the
// restart from the stored cursor (the source's next token), and ends with
// every object stored once.
func TestMirrorResumesAfterRestart(t *testing.T) {
	src, owner, feed := sourceFeed(t)
	postAll(t, owner, "shared", feed, Indicators(1, 20))
	target, _ := url.Parse(src.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var queries []url.Values
	hold := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Query())
		n := len(queries)
		mu.Unlock()
		if n == 3 {
			// The third page waits until the server asking for it stops.
			select {
			case <-r.Context().Done():
				return
			case <-hold:
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	defer close(hold)

	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "beta")
	d := Document(t, a, b, nil)
	Activate(t, a, b, d)
	m, err := a.C.AddMirror(ctx, client.MirrorSpec{Agreement: d.ID, SourceURL: front.URL + "/taxii2/shared/", Collection: feed,
		Token: owner.Token, PageLimit: 4})
	if err != nil {
		t.Fatal(err)
	}
	waitMirror(t, a, m.ID, "stored two pages", func(m *client.Mirror) bool { return m.Pages == 2 })
	for {
		mu.Lock()
		n := len(queries)
		mu.Unlock()
		if n >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Restart(t)
	m = waitMirror(t, a, m.ID, "caught up after the restart", func(m *client.Mirror) bool { return m.Pages >= 5 && !m.Paging })
	if m.Accepted != 20 || m.Refused != 0 {
		t.Fatalf("after the restart: accepted %d, refused %d; want each of the 20 once", m.Accepted, m.Refused)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) < 4 || queries[3].Get("next") == "" || queries[3].Get("next") != queries[2].Get("next") {
		t.Fatalf("the first query after the restart did not resume the session: %v", queries)
	}
	own, _ := Collections(t, a, d.ID)
	if got := ReadAll(t, a, d.ID, own, 100); len(got) != 20 {
		t.Fatalf("alpha's contributions hold %d objects, want 20", len(got))
	}
}

// Under an agreement that is not in force nothing is contributed: the
// mirror reports parley's refusal and stores nothing.
func TestMirrorStopsWhenAgreementRefuses(t *testing.T) {
	src, owner, feed := sourceFeed(t)
	postAll(t, owner, "shared", feed, Indicators(1, 3))
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "beta")
	d := Document(t, a, b, func(m map[string]any) {
		m["not_before"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	})
	if _, err := a.C.Propose(ctx, d, Sign(t, a, d, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.C.Sign(ctx, Sign(t, b, d, agreement.ActionCountersign)); err != nil {
		t.Fatal(err)
	}
	m, err := a.C.AddMirror(ctx, client.MirrorSpec{Agreement: d.ID, SourceURL: src.URL + "/taxii2/shared/", Collection: feed, Token: owner.Token})
	if err != nil {
		t.Fatal(err)
	}
	m = waitMirror(t, a, m.ID, "reported the refusal", func(m *client.Mirror) bool { return m.LastError != "" })
	if !strings.Contains(m.LastError, "does not accept contributions") || m.Accepted != 0 || m.LastSuccess != nil {
		t.Fatalf("status: %+v", m)
	}
}
