package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/node"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// A node started as its own `parley serve` process for this test.
type testNode struct {
	dir, url, key string
}

// parleyCmd runs the parley command (TestMain puts it on PATH) and returns
// its stdout, failing the test if it fails.
func parleyCmd(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, errb, err := parleyTry(env, args...)
	if err != nil {
		t.Fatalf("parley %s: %v\n%s", strings.Join(args, " "), err, errb)
	}
	return out
}

func parleyTry(env []string, args ...string) (string, string, error) {
	cmd := exec.Command("parley", args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func startNode(t *testing.T) *testNode {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	cmd := exec.Command("parley", "serve", "--data", dir, "--listen", addr, "--public-url", "http://"+addr, "--log-level", "warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("serve %s logged:\n%s", addr, logs.String())
		}
	})
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 400 {
			t.Fatalf("serve on %s did not answer: %v", addr, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	out := strings.TrimSpace(parleyCmd(t, nil, "node", "id", "--data", dir))
	lines := strings.Split(out, "\n")
	url, key, ok := strings.Cut(lines[len(lines)-1], " ")
	if !ok || url != "http://"+addr {
		t.Fatalf("node id printed %q; want the last line to be URL KEY with URL http://%s", out, addr)
	}
	return &testNode{dir: dir, url: url, key: key}
}

// identity reads a node's key from its data directory, as the operator
// commands do while it serves.
func (n *testNode) identity(t *testing.T) *node.Identity {
	t.Helper()
	st, err := sqlite.Open(context.Background(), n.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, err := node.LoadIdentity(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if id.Public.VKey != n.key {
		t.Fatalf("the data directory's key %s is not the one node id printed, %s", id.Public.VKey, n.key)
	}
	return id
}

type transport func(*http.Request) (*http.Response, error)

func (f transport) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestNodesEndToEnd runs two `parley serve` processes, pins each to the
// other with the CLI, and shows that signed requests pass both ways while
// an unpinned node, a wrong pinned key, a tampered body, a replayed
// request, an expired signature and a party token are each refused.
func TestNodesEndToEnd(t *testing.T) {
	a, b := startNode(t), startNode(t)
	parleyCmd(t, nil, "peer", "add", "--data", a.dir, "bravo", b.url, b.key)
	parleyCmd(t, nil, "peer", "add", "--data", b.dir, "alpha", a.url, a.key)
	if out := parleyCmd(t, nil, "node", "hello", "--data", a.dir, "bravo"); !strings.Contains(out, `knows this node as "alpha"`) {
		t.Fatalf("alpha → bravo: %s", out)
	}
	if out := parleyCmd(t, nil, "node", "hello", "--data", b.dir, "alpha"); !strings.Contains(out, `knows this node as "bravo"`) {
		t.Fatalf("bravo → alpha: %s", out)
	}

	ctx := context.Background()
	aID := a.identity(t)
	bravo := store.Peer{Name: "bravo", URL: b.url, Key: b.key}
	call := func(c *node.Client) error {
		_, err := c.Hello(ctx, a.url)
		return err
	}
	if err := call(&node.Client{Self: aID, Peer: bravo}); err != nil {
		t.Fatalf("a signed hello from the test as alpha: %v", err)
	}

	t.Run("unpinned node", func(t *testing.T) {
		skey, err := node.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		stranger, err := node.NewIdentity(skey)
		if err != nil {
			t.Fatal(err)
		}
		if err := call(&node.Client{Self: stranger, Peer: bravo}); !errors.Is(err, node.ErrUnknownKey) {
			t.Fatalf("hello from an unpinned node: %v, want ErrUnknownKey", err)
		}
	})
	t.Run("wrong key pinned", func(t *testing.T) {
		// alpha pins a name for bravo's URL with another node's key:
		// bravo answers, but not with that key, and alpha refuses it.
		c := startNode(t)
		parleyCmd(t, nil, "peer", "add", "--data", a.dir, "bravo-wrong", b.url, c.key)
		_, errb, err := parleyTry(nil, "node", "hello", "--data", a.dir, "bravo-wrong")
		if err == nil || !strings.Contains(errb, "not signed by its pinned key") {
			t.Fatalf("hello to a peer pinned with the wrong key: %v\n%s", err, errb)
		}
	})
	t.Run("tampered body", func(t *testing.T) {
		tamper := transport(func(r *http.Request) (*http.Response, error) {
			body, _ := io.ReadAll(r.Body)
			body = bytes.Replace(body, []byte("127.0.0.1"), []byte("127.0.0.2"), 1)
			r.Body = io.NopCloser(bytes.NewReader(body))
			return http.DefaultTransport.RoundTrip(r)
		})
		err := call(&node.Client{Self: aID, Peer: bravo, HTTP: &http.Client{Transport: tamper}})
		if !errors.Is(err, node.ErrDigest) || !strings.Contains(err.Error(), "does not match its Content-Digest") {
			t.Fatalf("tampered body: %v, want a digest refusal", err)
		}
	})
	t.Run("replayed request", func(t *testing.T) {
		var mu sync.Mutex
		replay := transport(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			body, _ := io.ReadAll(r.Body)
			first := r.Clone(r.Context())
			first.Body = io.NopCloser(bytes.NewReader(body))
			resp, err := http.DefaultTransport.RoundTrip(first)
			if err != nil {
				return nil, err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("the original request was refused: %s", resp.Status)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			return http.DefaultTransport.RoundTrip(r)
		})
		err := call(&node.Client{Self: aID, Peer: bravo, HTTP: &http.Client{Transport: replay}})
		if !errors.Is(err, node.ErrReplayed) {
			t.Fatalf("replayed request: %v, want ErrReplayed", err)
		}
	})
	t.Run("expired signature", func(t *testing.T) {
		past := func() time.Time { return time.Now().Add(-node.MaxValidity - time.Minute) }
		if err := call(&node.Client{Self: aID, Peer: bravo, Now: past}); !errors.Is(err, node.ErrExpired) {
			t.Fatalf("expired signature: %v, want ErrExpired", err)
		}
	})
	t.Run("party token not accepted", func(t *testing.T) {
		out := parleyCmd(t, nil, "party", "add", "--data", b.dir, "carol", "--json")
		token := jsonField(t, out, "token")
		// Signed by a pinned node, but carrying a valid party token.
		withToken := transport(func(r *http.Request) (*http.Response, error) {
			r.Header.Set("Authorization", "Bearer "+token)
			return http.DefaultTransport.RoundTrip(r)
		})
		err := call(&node.Client{Self: aID, Peer: bravo, HTTP: &http.Client{Transport: withToken}})
		if !errors.Is(err, node.ErrPartyToken) {
			t.Fatalf("signed request with a party token: %v, want ErrPartyToken", err)
		}
		// The token alone opens nothing under /node/.
		req, _ := http.NewRequest(http.MethodPost, b.url+"/node/v1/hello", strings.NewReader(`{"url":"x"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"party_token"`) {
			t.Fatalf("party token on /node/: %s %s", resp.Status, body)
		}
	})
	t.Run("party token never sent", func(t *testing.T) {
		// A spy pinned as a peer records what alpha sends it, while the
		// command runs with a party token in its environment.
		var mu sync.Mutex
		var got http.Header
		spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = r.Header.Clone()
			mu.Unlock()
			w.Write([]byte(`{}`))
		}))
		defer spy.Close()
		parleyCmd(t, nil, "peer", "add", "--data", a.dir, "spy", spy.URL, startNode(t).key)
		out := parleyCmd(t, nil, "party", "add", "--data", a.dir, "dave", "--json")
		_, _, err := parleyTry([]string{"PARLEY_TOKEN=" + jsonField(t, out, "token")}, "node", "hello", "--data", a.dir, "spy")
		if err == nil {
			t.Fatal("hello accepted the spy's unsigned answer")
		}
		mu.Lock()
		defer mu.Unlock()
		if got == nil {
			t.Fatal("the spy received nothing")
		}
		if v := got.Get("Authorization"); v != "" {
			t.Fatalf("alpha sent Authorization %q to a peer", v)
		}
		if !strings.Contains(got.Get("Signature-Input"), `tag="parley-node"`) || got.Get("Content-Digest") == "" {
			t.Fatalf("alpha's request is not signed: %v", got)
		}
	})
}

func jsonField(t *testing.T, out, key string) string {
	t.Helper()
	k := `"` + key + `": "`
	i := strings.Index(out, k)
	if i < 0 {
		t.Fatalf("no %s in %s", key, out)
	}
	rest := out[i+len(k):]
	return rest[:strings.Index(rest, `"`)]
}
