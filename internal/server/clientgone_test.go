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

	const postLine = "msg=request method=POST route=/taxii2/{root}/collections/{coll}/objects/ "
	// The server learns that a client went away on a goroutine of its own,
	// some time after the client does. A POST whose turn comes first is
	// stored and answered 202 to no one; the writer is held longer each
	// attempt, until the server has noticed before the turn. The deadline
	// only turns a hang into a failure.
	deadline := time.Now().Add(2 * time.Minute)
	gone := false
	for attempt, hold := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second, 5 * time.Second} {
		seen := strings.Count(logs.String(), postLine)
		holding, release := make(chan struct{}), make(chan struct{})
		held := make(chan error, 1)
		go func() {
			held <- st.Update(ctx, func(store.Handle) error { close(holding); <-release; return nil })
		}()
		<-holding
		rctx, drop := context.WithCancel(ctx)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, tg.objectsURL(), bytes.NewReader(envelope(3, 100*(attempt+1), 10)))
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
		for gc.CommitStats().Waiting < 1 {
			if time.Now().After(deadline) {
				close(release)
				t.Fatal("the POST never reached the writer's queue")
			}
			time.Sleep(5 * time.Millisecond)
		}
		drop()
		if err := <-posted; !errors.Is(err, context.Canceled) {
			close(release)
			t.Fatalf("the dropped POST: %v, want the client's cancellation", err)
		}
		time.Sleep(hold)
		// Its turn comes once the writer is free.
		close(release)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		for strings.Count(logs.String(), postLine) == seen {
			if time.Now().After(deadline) {
				t.Fatalf("no access line for the dropped POST; the log:\n%s", logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if strings.Contains(logs.String(), postLine+"status=499") {
			gone = true
			break
		}
	}
	if !gone {
		t.Fatalf("no access line with status 499 for a dropped POST, the writer held up to 5 s after the drop; the log:\n%s", logs.String())
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
	if err := tg.post(envelope(3, 900, 10), 10); err != nil {
		t.Fatal(err)
	}
}
