package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// TestGracefulShutdownFinishesInFlight starts a request, stops the server
// while the request's body is still arriving, and checks that the request
// still gets its whole response, that Serve waits for it, and that new
// connections are refused meanwhile.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, err := server.New(ctx, server.Config{Data: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db)
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := srv.Parties.Create(ctx, "cert-north")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"not_a_field": true}`
	fmt.Fprintf(conn, "POST /api/v1/keys HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		addr, token, len(body), body[:5])
	time.Sleep(200 * time.Millisecond) // the handler is now reading the body

	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a request was in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("a new connection was accepted after shutdown began")
	}

	if _, err := io.WriteString(conn, body[5:]); err != nil {
		t.Fatalf("finishing the body: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request got no response: %v", err)
	}
	reply, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(reply), "not_a_field") {
		t.Fatalf("in-flight response: %s %q, %v", resp.Status, reply, err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after a graceful shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after the last request finished")
	}
}

// TestMetricsEndpoint scrapes the real server after some traffic, on the
// metrics listener (the public one answers 404): request counts are
// labelled by route pattern, never by raw path, and the ledger metrics
// reflect what was ingested and released.
func TestMetricsEndpoint(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "cert-north"), s.NewParty(t, "police-south")
	ag := Activate(t, a, b, Document(t, a, b, nil))
	aOwn, _ := Collections(t, a, ag.ID)
	if _, err := a.C.AddObjects(ctx, ag.ID, aOwn, Indicators(0, 25)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Srv.Checkpointer.SignNow(ctx); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/ui/agreements/" + ag.ID, "/no-such-thing-7f3a"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// Not on the public listener, to a party or to anyone (issue 12,
	// finding 13): per-state counts are the operator's.
	for _, auth := range []string{"", "Bearer " + a.Token} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(raw), "parley_") {
			t.Errorf("/metrics on the public listener (auth %q): %s %.200s", auth, resp.Status, raw)
		}
	}
	// On the metrics listener (--metrics-listen).
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- s.Srv.ServeMetrics(mctx, mln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("metrics listener: %v", err)
		}
	})
	resp, err := http.Get("http://" + mln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(raw)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	for _, want := range []string{
		`route="/ui/agreements/{id}"`,
		`route="/api/v1/agreements"`,
		`route="unmatched"`,
		"parley_objects_ingested_total 25",
		// B, who gave nothing, may read the grace of 10 of A's 25.
		"parley_objects_released_total 10",
		"parley_allowance_withheld_objects 15",
		"parley_ledger_checkpoint_age_seconds 0",
		`parley_handovers{state="proposed"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, leak := range []string{ag.ID, "no-such-thing", a.ID} {
		if strings.Contains(text, leak) {
			t.Errorf("/metrics carries %q", leak)
		}
	}
}
