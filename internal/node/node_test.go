package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

var ctx = context.Background()

// testNode is one node: its store, identity and server on loopback.
type testNode struct {
	st  store.Store
	id  *Identity
	h   *Handler
	srv *httptest.Server
}

func newTestNode(t *testing.T) *testNode {
	t.Helper()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := LoadIdentity(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{st: st, id: id}
	mux := http.NewServeMux()
	n.h = NewHandler(id, NewPeers(st), "", nil)
	n.h.Register(mux)
	n.srv = httptest.NewServer(mux)
	t.Cleanup(n.srv.Close)
	if _, err := Announce(ctx, st, n.srv.URL, time.Now()); err != nil {
		t.Fatal(err)
	}
	return n
}

// pin makes a pin b under name.
func (a *testNode) pin(t *testing.T, name string, b *testNode) store.Peer {
	t.Helper()
	p, err := NewPeers(a.st).Add(ctx, a.id, name, b.srv.URL, b.id.Public.VKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (a *testNode) client(p store.Peer) *Client { return &Client{Self: a.id, Peer: p} }

func TestLoadIdentityIsStable(t *testing.T) {
	n := newTestNode(t)
	again, err := LoadIdentity(ctx, n.st)
	if err != nil {
		t.Fatal(err)
	}
	if again.Public.VKey != n.id.Public.VKey || again.Public.ID != n.id.Public.ID {
		t.Fatalf("second load gave %+v, first %+v", again.Public, n.id.Public)
	}
	if _, err := ParseKey(n.id.Public.VKey); err != nil {
		t.Fatalf("the node's own verifier key does not parse: %v", err)
	}
}

func TestHelloBothWays(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	bAtA, aAtB := a.pin(t, "bravo", b), b.pin(t, "alpha", a)
	got, err := a.client(bAtA).Hello(ctx, a.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if want := (HelloAnswer{URL: b.srv.URL, Key: b.id.Public.VKey, Peer: "alpha", PeerURL: a.srv.URL}); got != want {
		t.Fatalf("hello from alpha = %+v, want %+v", got, want)
	}
	got, err = b.client(aAtB).Hello(ctx, b.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got.Peer != "bravo" || got.Key != a.id.Public.VKey {
		t.Fatalf("hello from bravo = %+v", got)
	}
}

// roundTripper lets a test change what goes over the wire.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRefusals(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	bAtA := a.pin(t, "bravo", b)
	b.pin(t, "alpha", a)
	stranger := newTestNode(t) // pins bravo, but bravo does not pin it
	bAtStranger := stranger.pin(t, "bravo", b)

	tamperBody := roundTripper(func(r *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(r.Body)
		body = bytes.Replace(body, []byte("http"), []byte("HTTP"), 1)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		return http.DefaultTransport.RoundTrip(r)
	})
	var saved *http.Request
	var savedBody []byte
	replay := roundTripper(func(r *http.Request) (*http.Response, error) {
		savedBody, _ = io.ReadAll(r.Body)
		saved = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(savedBody))
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("the original of the replayed request failed: %v %v", resp, err)
		}
		resp.Body.Close()
		again := saved.Clone(r.Context())
		again.Body = io.NopCloser(bytes.NewReader(savedBody))
		return http.DefaultTransport.RoundTrip(again)
	})
	withToken := roundTripper(func(r *http.Request) (*http.Response, error) {
		r.Header.Set("Authorization", "Bearer pt_whatever")
		return http.DefaultTransport.RoundTrip(r)
	})
	unsigned := roundTripper(func(r *http.Request) (*http.Response, error) {
		r.Header.Del("Signature")
		r.Header.Del("Signature-Input")
		return http.DefaultTransport.RoundTrip(r)
	})
	wrongKey := bAtA
	wrongKey.Key, wrongKey.KeyID = stranger.id.Public.VKey, stranger.id.Public.ID

	for _, tc := range []struct {
		name string
		c    *Client
		want error
	}{
		{"unpinned node", stranger.client(bAtStranger), ErrUnknownKey},
		{"tampered body", &Client{Self: a.id, Peer: bAtA, HTTP: &http.Client{Transport: tamperBody}}, ErrDigest},
		{"replayed request", &Client{Self: a.id, Peer: bAtA, HTTP: &http.Client{Transport: replay}}, ErrReplayed},
		{"expired signature", &Client{Self: a.id, Peer: bAtA, Now: func() time.Time { return time.Now().Add(-MaxValidity) }}, ErrExpired},
		{"signature from the future", &Client{Self: a.id, Peer: bAtA, Now: func() time.Time { return time.Now().Add(time.Hour) }}, ErrExpired},
		{"party token", &Client{Self: a.id, Peer: bAtA, HTTP: &http.Client{Transport: withToken}}, ErrPartyToken},
		{"unsigned", &Client{Self: a.id, Peer: bAtA, HTTP: &http.Client{Transport: unsigned}}, ErrUnsigned},
		// alpha pinned the wrong key for bravo: bravo serves alpha, but
		// its answer is not signed by the key alpha pinned.
		{"wrong key pinned for the peer", &Client{Self: a.id, Peer: wrongKey}, ErrUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Hello(ctx, a.srv.URL)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Hello = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestSignatureBindsTheTarget: a request signed for one node is refused by
// another that pins the same signer, since the target URI is signed.
func TestSignatureBindsTheTarget(t *testing.T) {
	a, b, c := newTestNode(t), newTestNode(t), newTestNode(t)
	bAtA := a.pin(t, "bravo", b)
	c.pin(t, "alpha", a)
	b.pin(t, "alpha", a)
	redirect := roundTripper(func(r *http.Request) (*http.Response, error) {
		r.URL.Host = strings.TrimPrefix(c.srv.URL, "http://")
		r.Host = r.URL.Host
		return http.DefaultTransport.RoundTrip(r)
	})
	_, err := (&Client{Self: a.id, Peer: bAtA, HTTP: &http.Client{Transport: redirect}}).Hello(ctx, a.srv.URL)
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a request for bravo delivered to charlie: %v, want ErrBadSignature", err)
	}
}

// TestAnswerIsVerified: an answer changed on the way, or the answer of
// another request, is refused by the client.
func TestAnswerIsVerified(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	bAtA := a.pin(t, "bravo", b)
	b.pin(t, "alpha", a)
	tamper := roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(bytes.Replace(body, []byte("alpha"), []byte("alpho"), 1)))
		return resp, nil
	})
	if _, err := (&Client{Self: a.id, Peer: bAtA, HTTP: &http.Client{Transport: tamper}}).Hello(ctx, a.srv.URL); !errors.Is(err, ErrDigest) {
		t.Fatalf("a changed answer: %v, want ErrDigest", err)
	}
	var mu sync.Mutex
	var first *http.Response
	var firstBody []byte
	swap := roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = resp
			firstBody, _ = io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(bytes.NewReader(firstBody))
			return resp, nil
		}
		resp.Body.Close()
		old := *first
		old.Body = io.NopCloser(bytes.NewReader(firstBody))
		return &old, nil
	})
	c := &Client{Self: a.id, Peer: bAtA, HTTP: &http.Client{Transport: swap}}
	if _, err := c.Hello(ctx, a.srv.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Hello(ctx, a.srv.URL); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("the first answer given to the second request: %v, want ErrBadSignature", err)
	}
}

func TestBadHelloBodyIsSignedRefusal(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	bAtA := a.pin(t, "bravo", b)
	b.pin(t, "alpha", a)
	status, body, err := a.client(bAtA).Do(ctx, http.MethodPost, "/node/v1/hello", []byte("not json"))
	if !errors.Is(err, ErrRefused) || status != http.StatusBadRequest || !strings.Contains(err.Error(), "answer signed by the peer") {
		t.Fatalf("Do = %d %s %v; want a signed 400 refusal", status, body, err)
	}
	status, _, err = a.client(bAtA).Do(ctx, http.MethodGet, "/node/v1/nothing", nil)
	if status != http.StatusNotFound || !errors.Is(err, ErrRefused) {
		t.Fatalf("unknown endpoint: %d %v; want 404", status, err)
	}
	// Without a signature the same unknown endpoint is 401, not 404.
	resp, err := http.Get(b.srv.URL + "/node/v1/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned GET of an unknown node endpoint: %d, want 401", resp.StatusCode)
	}
}

func TestPeersAdd(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	peers := NewPeers(a.st)
	if _, err := peers.Add(ctx, a.id, "bravo", b.srv.URL+"/", b.id.Public.VKey); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer, url, key string
		want                 error
	}{
		{"duplicate name", "bravo", "https://other.example", newTestKey(t), ErrPeerExists},
		{"duplicate key", "bravo2", "https://other.example", b.id.Public.VKey, ErrPeerExists},
		{"own key", "self", "https://other.example", a.id.Public.VKey, ErrInvalid},
		{"malformed key", "x", "https://other.example", "not-a-key", ErrBadKey},
		{"key with a bad hash", "x", "https://other.example", corruptHash(b.id.Public.VKey), ErrBadKey},
		{"ftp URL", "x", "ftp://other.example", newTestKey(t), ErrBadURL},
		{"URL with a path", "x", "https://other.example/parley", newTestKey(t), ErrBadURL},
		{"URL with credentials", "x", "https://u:p@other.example", newTestKey(t), ErrBadURL},
		{"relative URL", "x", "other.example", newTestKey(t), ErrBadURL},
		{"empty name", "", "https://other.example", newTestKey(t), ErrBadName},
		{"name with a space", "a b", "https://other.example", newTestKey(t), ErrBadName},
		{"name with @", "a@b", "https://other.example", newTestKey(t), ErrBadName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := peers.Add(ctx, a.id, tc.peer, tc.url, tc.key)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Add = %v, want %v", err, tc.want)
			}
		})
	}
	ps, err := peers.List(ctx)
	if err != nil || len(ps) != 1 || ps[0].URL != b.srv.URL {
		t.Fatalf("List = %+v, %v; want bravo alone at %s (trailing slash dropped)", ps, err, b.srv.URL)
	}
	if err := peers.Remove(ctx, "nobody"); !errors.Is(err, ErrNoSuchPeer) {
		t.Fatalf("Remove(nobody) = %v, want ErrNoSuchPeer", err)
	}
}

func newTestKey(t *testing.T) string {
	skey, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewIdentity(skey)
	if err != nil {
		t.Fatal(err)
	}
	return id.Public.VKey
}

func corruptHash(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	parts[1] = "00000000"
	return strings.Join(parts, "+")
}

func TestHelloAnswerJSON(t *testing.T) {
	// The wire names are documented in docs/api.md.
	b, _ := json.Marshal(HelloAnswer{URL: "u", Key: "k", Peer: "p", PeerURL: "pu"})
	if string(b) != `{"url":"u","key":"k","peer":"p","peer_url":"pu"}` {
		t.Fatalf("HelloAnswer JSON = %s", b)
	}
}

// TestFaultKinds: the node's sentinels carry the kinds the CLI and the
// surfaces map by (internal/fault).
func TestFaultKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind *fault.Kind
	}{
		{ErrBadKey, fault.Invalid}, {ErrBadURL, fault.Invalid}, {ErrBadName, fault.Invalid},
		{ErrPeerExists, fault.Conflict}, {ErrNoSuchPeer, fault.NotFound},
		{ErrUnknownKey, fault.Unauthenticated}, {ErrReplayed, fault.Unauthenticated}, {ErrDigest, fault.Unauthenticated},
		{ErrBusy, fault.Unavailable},
		{&RefusedError{Code: "replayed"}, fault.Unauthenticated},
	} {
		if got := fault.KindOf(tc.err); got != tc.kind {
			t.Errorf("KindOf(%v) = %v, want %v", tc.err, got, tc.kind)
		}
	}
}
