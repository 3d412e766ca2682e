package multiinstance

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/postgres"
)

// cutProxy forwards loopback TCP connections to a PostgreSQL server until
// cut, which drops every open connection and turns new ones away at once,
// as a lost network does; restore lets them through again.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close(); c.Close() }()
		go func() { io.Copy(c, up); up.Close(); c.Close() }()
	}
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// via rewrites a postgres URL to connect through the proxy.
func (p *cutProxy) via(t testing.TB, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.Host = p.ln.Addr().String()
	return pu.String()
}

// TestDatabaseLostWhileServing serves from PostgreSQL through a proxy and
// cuts it: TAXII and management requests get 503 with Retry-After, the
// batch posted while the database was gone left nothing behind, and once
// the database is back the same server serves again, without a restart.
func TestDatabaseLostWhileServing(t *testing.T) {
	direct := pgSchemaURL(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	st, err := postgres.Open(ctx, proxy.via(t, direct)+"&connect_timeout=2", postgres.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	base, srv := serveStore(t, st)
	p, token, err := srv.Parties.Create(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	coll, err := srv.Ex.CreateCollection(ctx, "feed", "", []string{p.ID}, []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	objectsURL := base + "/taxii2/" + exchange.OperatorRoot + "/collections/" + coll.ID + "/objects/"
	post := func(from int) *http.Response {
		body, _ := json.Marshal(map[string]any{"objects": indicators(from, 5)})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, objectsURL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	get := func(u string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := post(0); resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		t.Fatalf("post with the database up: %s", resp.Status)
	}

	proxy.cut()
	for _, tc := range []struct {
		name string
		do   func() *http.Response
	}{
		{"TAXII post", func() *http.Response { return post(100) }},
		{"TAXII get", func() *http.Response { return get(objectsURL) }},
		{"management API", func() *http.Response { return get(base + "/api/v1/me") }},
		{"ledger", func() *http.Response { return get(base + "/ledger/checkpoint") }},
		{"readiness", func() *http.Response { return get(base + "/readyz") }},
	} {
		resp := tc.do()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s with the database lost: %s, Retry-After %q; want 503 with Retry-After", tc.name, resp.Status, resp.Header.Get("Retry-After"))
		}
	}

	proxy.restore()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp := post(200)
		if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not recover within 20s of the database returning: %s", resp.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// What was stored: the first and last batches, nothing of the one
	// posted while the database was gone, and a ledger entry per batch.
	check, err := postgres.Open(ctx, direct, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	page, err := check.Objects().Query(ctx, store.ObjectQuery{Collection: coll.ID, Versions: store.VersionFilter{All: true}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range page.Objects {
		ids = append(ids, o.ID)
	}
	if len(ids) != 10 || strings.Contains(strings.Join(ids, " "), "-000000000100") {
		t.Fatalf("stored after the outage: %v; want the 5 objects before and the 5 after", ids)
	}
	n, err := check.Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := check.Ledger().ReadEntries(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	batches := 0
	for _, raw := range entries {
		e, err := ledger.DecodeEntry(raw)
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == ledger.KindFeedBatch {
			batches++
		}
	}
	if batches != 2 {
		t.Fatalf("%d feed batches in the ledger, want 2", batches)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}
	proxy.cut()
	if err := st.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping with the database lost: %v, want ErrUnavailable", err)
	}
}
