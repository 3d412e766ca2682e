package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store"
)

// TestConcurrentPOSTsShareOneTransaction: TAXII POSTs that arrive while
// SQLite's writer is busy commit together in one transaction (group
// commit), each answered 202 with its own status, all of it stored; the
// commit counters on /metrics show it.
// writerServer serves a fresh SQLite store on loopback, with one party
// that may read and write one collection, until the test ends. It returns
// the server, its store and the store's commit counters, and the party's
// target.
func writerServer(t *testing.T, log *slog.Logger) (*server.Server, store.Store, store.GroupCommitter, *target) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := server.Config{Data: t.TempDir(), Listen: "127.0.0.1:0", Migrate: true, Logger: log}
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	gc, ok := st.(store.GroupCommitter)
	if !ok {
		st.Close()
		t.Fatalf("the SQLite store (%T) does not report its commits", st)
	}
	srv, err := server.New(ctx, cfg, st)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	p, secret, err := srv.Parties.Create(ctx, "writer")
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	c, err := srv.Ex.CreateCollection(ctx, "writes", "", []string{p.ID}, []string{p.ID})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return srv, st, gc, &target{base: srv.URL(ln), token: secret, coll: c.ID, hc: newHTTPClient()}
}

func TestConcurrentPOSTsShareOneTransaction(t *testing.T) {
	ctx := t.Context()
	srv, st, gc, tg := writerServer(t, slog.New(slog.NewTextHandler(io.Discard, nil)))

	// A first POST records the token's use (a write of its own, once a
	// minute), so that the POSTs below write only in their Update.
	if err := tg.post(envelope(7, 0, 5), 5); err != nil {
		t.Fatal(err)
	}

	// Hold the writer so the POSTs queue behind it.
	const posts = 6
	holding, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- st.Update(ctx, func(store.Handle) error { close(holding); <-release; return nil })
	}()
	<-holding
	errs := make([]error, posts)
	var wg sync.WaitGroup
	for i := range posts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tg.post(envelope(7, 100*(i+1), 10), 10)
		}()
	}
	// Waiting for them to queue is not a timing assertion: the deadline
	// only turns a hang into a failure.
	deadline := time.Now().Add(2 * time.Minute)
	for gc.CommitStats().Waiting < posts {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("only %d of %d POSTs reached the writer's queue", gc.CommitStats().Waiting, posts)
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := gc.CommitStats()
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("POST %d: %v", i, err)
		}
	}
	after := gc.CommitStats()
	if tx, n := after.Transactions-before.Transactions, after.Updates-before.Updates; tx != 1 || n != posts {
		t.Errorf("%d concurrent POSTs took %d transactions running %d writes, want 1 running %d", posts, tx, n, posts)
	}
	if n, err := tg.readAll(1000); err != nil || n != 5+posts*10 {
		t.Errorf("read back %d objects (%v), want %d", n, err, 5+posts*10)
	}

	rec := httptest.NewRecorder()
	srv.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, name := range []string{"parley_db_commits_total", "parley_db_commit_members_total"} {
		if !regexp.MustCompile(`(?m)^` + name + ` [1-9]`).MatchString(rec.Body.String()) {
			t.Errorf("/metrics has no positive %s", name)
		}
	}
}
