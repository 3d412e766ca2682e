package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAccessLog drives the real server and reads its JSON log: every
// request, the 401s and the refused push included, gives one line with
// method, route pattern, status, party and duration, and no token appears
// anywhere in the log.
func TestAccessLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var logBuf syncBuffer
	log := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(ctx, server.Config{Data: dir, Listen: "127.0.0.1:0", Logger: log}, db)
	if err != nil {
		t.Fatal(err)
	}
	alpha, alphaToken, err := srv.Parties.Create(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	_, bravoToken, err := srv.Parties.Create(ctx, "bravo")
	if err != nil {
		t.Fatal(err)
	}
	coll, err := srv.Ex.CreateCollection(ctx, "feed", "", []string{alpha.ID}, []string{alpha.ID})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := srv.URL(ln)
	objects := base + "/taxii2/" + exchange.OperatorRoot + "/collections/" + coll.ID + "/objects/"
	send := func(method, url, auth, body string) int {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	badToken := "parley_" + strings.Repeat("Q", 43)
	type want struct {
		method, route string
		status        int
		party         string
	}
	steps := []struct {
		method, url, auth, body string
		want                    want
	}{
		{"GET", objects, "Bearer " + alphaToken, "", want{"GET", "/taxii2/{root}/collections/{coll}/objects/", 200, "alpha"}},
		{"GET", objects, "Bearer " + badToken, "", want{"GET", "/taxii2/{root}/collections/{coll}/objects/", 401, "-"}},
		{"GET", base + "/api/v1/me", "Bearer " + badToken, "", want{"GET", "/api/v1/me", 401, "-"}},
		{"GET", base + "/ledger/checkpoint", "", "", want{"GET", "/ledger/", 401, "-"}},
		// bravo may not write: a refused push.
		{"POST", objects, "Bearer " + bravoToken, `{"objects":[{"type":"identity"}]}`, want{"POST", "/taxii2/{root}/collections/{coll}/objects/", 404, "bravo"}},
		// alpha's push of a bundle: refused as not an envelope.
		{"POST", objects, "Token " + alphaToken, `{"type":"bundle","objects":[]}`, want{"POST", "/taxii2/{root}/collections/{coll}/objects/", 422, "alpha"}},
		{"GET", base + "/nowhere", "", "", want{"GET", "unmatched", 404, "-"}},
	}
	for _, s := range steps {
		if got := send(s.method, s.url, s.auth, s.body); got != s.want.status {
			t.Fatalf("%s %s: status %d, want %d", s.method, s.url, got, s.want.status)
		}
	}
	stop()
	<-done
	done <- nil // the deferred check reads done again
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logBuf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != len(steps) {
		t.Fatalf("%d access log lines for %d requests:\n%s", len(lines), len(steps), logBuf.String())
	}
	for i, s := range steps {
		l := lines[i]
		if l["method"] != s.want.method || l["route"] != s.want.route || l["status"] != float64(s.want.status) || l["party"] != s.want.party {
			t.Errorf("request %d: logged %v, want %+v", i, l, s.want)
		}
		if _, ok := l["duration"].(float64); !ok {
			t.Errorf("request %d: no duration in %v", i, l)
		}
		level := "INFO"
		if s.want.status >= 400 {
			level = "WARN"
		}
		if l["level"] != level {
			t.Errorf("request %d: level %v, want %s", i, l["level"], level)
		}
	}
	for _, secret := range []string{alphaToken, bravoToken, badToken, "parley_"} {
		if strings.Contains(logBuf.String(), secret) {
			t.Errorf("the log contains a token (%.12s…)", secret)
		}
	}
}
