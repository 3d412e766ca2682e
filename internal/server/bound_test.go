package server_test

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

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// TestSlowReadersCannotPinResponses: a client that asks for a large page
// and never reads holds one of the few large-response slots only until the
// write deadline cuts it off; meanwhile other large requests wait for a
// slot instead of each pinning a page (issue 15: 100 such clients held
// 878 MiB indefinitely). Here one slot and a 5 s deadline: the reader that
// never reads is cut, and a normal client's request, queued behind it,
// then succeeds.
func TestSlowReadersCannotPinResponses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, path, tokens := largePageServer(t, ctx, server.Config{WriteWithin: 5 * time.Second, LargeAtOnce: 1}, "alpha")
	token := tokens[0]

	// The reader that never reads.
	slow := neverReads(t, addr, path, token)
	time.Sleep(300 * time.Millisecond) // let it take the slot

	// A normal client queues for the slot and is served once the slow
	// one is cut off.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || strings.Count(string(body), `"type":"indicator"`) != 4000 {
		t.Fatalf("the normal client behind a reader that never reads: HTTP %d, %d bytes, %v", resp.StatusCode, len(body), err)
	}
	// The slow reader got only part of its page: it was cut off.
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(slow)
	got, _ := io.ReadAll(r)
	if n := strings.Count(string(got), `"type":"indicator"`); n >= 4000 {
		t.Fatalf("the reader that did not read still received all %d objects; its response was not cut off", n)
	}
}

// TestOneCallerCannotTakeEveryLargeSlot: a counterpart with a valid token
// opens as many large reads as there are slots and never reads them. It
// gets half of the slots; its further reads wait behind its own, and
// another party's read is answered at once instead of waiting for the
// write deadline (a minute here) and failing with 503 after 30 s.
func TestOneCallerCannotTakeEveryLargeSlot(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, path, tokens := largePageServer(t, ctx, server.Config{WriteWithin: time.Minute, LargeAtOnce: 2}, "mallory", "bravo")
	hostileToken, otherToken := tokens[0], tokens[1]

	// mallory's readers that never read: an 8 MB page each, more than the
	// socket buffers hold, so each would keep its slot until the deadline.
	for range 2 {
		neverReads(t, addr, path, hostileToken)
	}
	time.Sleep(500 * time.Millisecond) // let them take what they can

	// bravo's read is served while mallory's readers still hold on. Its
	// client gives up well before the 30 s after which a read waiting for
	// a slot is refused.
	rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+addr+path, nil)
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.Header.Set("Authorization", "Bearer "+otherToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("bravo's read behind mallory's readers that never read: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || strings.Count(string(body), `"type":"indicator"`) != 4000 {
		t.Fatalf("bravo's read behind mallory's readers that never read: HTTP %d, %d bytes, %v", resp.StatusCode, len(body), err)
	}
}

// largePageServer serves, with cfg, one collection that every party of
// names reads, holding 4,000 objects of 2 KB: an 8 MB page, more than
// socket buffers hold. It returns the server's address, the path of that
// page and each party's token.
func largePageServer(t *testing.T, ctx context.Context, cfg server.Config, names ...string) (addr, path string, tokens []string) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg.Data, cfg.Listen, cfg.Logger = dir, "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(ctx, cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, name := range names {
		p, token, err := srv.Parties.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		ids, tokens = append(ids, p.ID), append(tokens, token)
	}
	coll, err := srv.Ex.CreateCollection(ctx, "feed", "", ids, ids)
	if err != nil {
		t.Fatal(err)
	}
	var objs []store.Object
	for i := range 4000 {
		objs = append(objs, store.Object{ID: fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i), Type: "indicator", SpecVersion: "2.1",
			Version: time.Unix(1, 0).UTC(), DateAdded: time.Unix(int64(i+2), 0).UTC(),
			Raw: []byte(fmt.Sprintf(`{"type":"indicator","id":"indicator--00000000-0000-4000-8000-%012d","pad":"%02000d"}`, i, i))})
	}
	if _, err := db.Objects().Put(ctx, coll.ID, objs); err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ctx, ln)
	return ln.Addr().String(), "/taxii2/" + exchange.OperatorRoot + "/collections/" + coll.ID + "/objects/?limit=4000", tokens
}

// neverReads sends a GET of path with token and reads nothing of the
// answer; the connection closes when the test ends.
func neverReads(t *testing.T, addr, path, token string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: application/taxii+json;version=2.1\r\nAuthorization: Bearer %s\r\n\r\n", path, token)
	return c
}
