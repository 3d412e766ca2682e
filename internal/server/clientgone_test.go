package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// TestClientGoneIsNotAServerFailure: a client that drops its POST while it
// waits for the writer gets it recorded as 499, logged as a warning, not
// as the server's failure. Before, each such request logged "internal
// error … context canceled" and a 500 at level ERROR, so a counterpart
// could fill the operator's error log by dropping requests.
func TestClientGoneIsNotAServerFailure(t *testing.T) {
	ctx := t.Context()
	var logs syncBuffer
	_, st, gc, tg := writerServer(t, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	// The token's use is recorded once a minute, a write of its own: done
	// here, so the POST below writes only in its Update.
	if err := tg.post(envelope(3, 0, 5), 5); err != nil {
		t.Fatal(err)
	}

	holding, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- st.Update(ctx, func(store.Handle) error { close(holding); <-release; return nil })
	}()
	<-holding
	rctx, drop := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, tg.objectsURL(), bytes.NewReader(envelope(3, 100, 10)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mediaTAXII)
	posted := make(chan error, 1)
	go func() {
		resp, err := tg.do(req)
		if err == nil {
			resp.Body.Close()
		}
		posted <- err
	}()
	// Waiting for the POST to queue is not a timing assertion: the
	// deadline only turns a hang into a failure.
	deadline := time.Now().Add(time.Minute)
	for gc.CommitStats().Waiting < 1 {
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("the POST never reached the writer's queue")
		}
		time.Sleep(5 * time.Millisecond)
	}
	drop()
	if err := <-posted; !errors.Is(err, context.Canceled) {
		t.Fatalf("the dropped POST: %v, want the client's cancellation", err)
	}
	// Its turn comes once the writer is free; it finds its request gone.
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(logs.String(), "msg=request method=POST route=/taxii2/{root}/collections/{coll}/objects/ status=499") {
		if time.Now().After(deadline) {
			t.Fatalf("no access line with status 499 for the dropped POST; the log:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	out := logs.String()
	for _, bad := range []string{"level=ERROR", "internal error", "request failed"} {
		if strings.Contains(out, bad) {
			t.Errorf("the log has %q for a request its client dropped:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "level=WARN msg=request method=POST") {
		t.Errorf("the dropped POST's access line is not a warning:\n%s", out)
	}
	// The server is unharmed: the next POST goes in.
	if err := tg.post(envelope(3, 200, 10), 10); err != nil {
		t.Fatal(err)
	}
}
