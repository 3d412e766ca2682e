package multiinstance

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/postgres"
)

// TestRevocationEndsStreamOnOtherInstance (issue 12, finding 12): a token
// revoked through one instance ends an event stream it holds open on
// another, which learns of it only through the shared database.
func TestRevocationEndsStreamOnOtherInstance(t *testing.T) {
	u := pgSchemaURL(t)
	var urls []string
	var srvs []*server.Server
	for range 2 {
		st, err := postgres.Open(ctx, u, postgres.Options{Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		base, srv := serveStore(t, st)
		urls, srvs = append(urls, base), append(srvs, srv)
	}
	p, _, err := srvs[0].Parties.Create(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	secret, tokenID, err := srvs[0].Parties.AddToken(ctx, p.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	events := func(query string) (*http.Response, error) {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		t.Cleanup(cancel)
		req, err := http.NewRequestWithContext(sctx, http.MethodGet, urls[0]+"/api/v1/events"+query, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		return http.DefaultClient.Do(req)
	}
	resp, err := events("")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); resp.StatusCode != 200 || err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("stream on instance 1: %d %q %v", resp.StatusCode, line, err)
	}
	if err := srvs[1].Parties.RevokeToken(ctx, tokenID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, br); ended <- err }()
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("stream ended with %v, want a clean end", err)
		}
		t.Logf("stream on instance 1 ended %v after revocation on instance 2", time.Since(revoked).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("the stream on instance 1 is still open 15 s after the token was revoked on instance 2")
	}
	again, err := events("?follow=false")
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != 401 {
		t.Errorf("reconnect with the revoked token: %d, want 401", again.StatusCode)
	}
}
