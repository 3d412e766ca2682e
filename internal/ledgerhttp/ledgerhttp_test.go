package ledgerhttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/ledger/ledgertest"
)

type fixture struct {
	st      *ledger.MemStore
	signer  *ledger.Signer
	srv     *httptest.Server
	client  *audit.LedgerClient
	witness *ledger.Witness
	wkey    string
	logs    *bytes.Buffer
}

func newFixture(t *testing.T, entries int) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{st: ledger.NewMemStore(), logs: &bytes.Buffer{}}
	skey, _, err := ledger.GenerateSignerKey("parley.test/log")
	if err != nil {
		t.Fatal(err)
	}
	if f.signer, err = ledger.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	wskey, wvkey, err := ledger.GenerateWitnessKey("witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	f.wkey = wvkey
	if f.witness, err = ledger.NewWitness(wskey, f.signer.VerifierKey(), ledger.WitnessState{}, nil); err != nil {
		t.Fatal(err)
	}
	f.grow(t, entries)
	mux := http.NewServeMux()
	Register(mux, "/ledger", Source{
		Log: f.st,
		AddCosignature: func(ctx context.Context, size int64, witness string, line []byte) error {
			return f.st.Update(ctx, func(s ledger.Store) error { return s.AddCosignature(ctx, size, witness, line) })
		},
		WitnessKey: func(_ context.Context, name string) (string, error) {
			if name == "witness.test/w1" {
				return wvkey, nil
			}
			return "", fmt.Errorf("witness %q: %w", name, ledger.ErrNotFound)
		},
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.client = &audit.LedgerClient{BaseURL: f.srv.URL + "/ledger", HTTP: f.srv.Client()}
	_ = ctx
	return f
}

// grow appends n entries and signs a checkpoint.
func (f *fixture) grow(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	size, _ := f.st.Size(ctx)
	if n > 0 {
		es := make([]ledger.Entry, n)
		for i := range es {
			es[i] = ledgertest.Entry(int(size) + i)
		}
		if _, err := ledger.Append(ctx, f.st, es...); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := ledger.NewCheckpoint(ctx, f.st, f.signer); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) get(t *testing.T, path string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := f.srv.Client().Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

func TestReadEndpoints(t *testing.T) {
	f := newFixture(t, 600)
	tests := []struct {
		path   string
		status int
		check  func(t *testing.T, body []byte)
	}{
		{"/ledger/checkpoint", 200, func(t *testing.T, b []byte) {
			c, err := ledger.VerifyCheckpoint(b, f.signer.VerifierKey())
			if err != nil || c.Size != 600 {
				t.Fatalf("checkpoint %+v, %v", c, err)
			}
		}},
		{"/ledger/tile/0/000", 200, func(t *testing.T, b []byte) {
			if len(b) != 256*32 {
				t.Fatalf("full tile of %d bytes", len(b))
			}
		}},
		{"/ledger/tile/0/002.p/88", 200, func(t *testing.T, b []byte) {
			if len(b) != 88*32 {
				t.Fatalf("partial tile of %d bytes", len(b))
			}
		}},
		{"/ledger/tile/1/000.p/2", 200, nil},
		{"/ledger/tile/entries/001", 200, func(t *testing.T, b []byte) {
			es, err := ledger.ParseEntryBundle(b)
			if err != nil || len(es) != 256 {
				t.Fatalf("bundle: %d entries, %v", len(es), err)
			}
			if e, err := ledger.DecodeEntry(es[0]); err != nil || e.Subject != "release-256" {
				t.Fatalf("bundle entry 0: %+v, %v", e, err)
			}
		}},
		{"/ledger/entries/599", 200, func(t *testing.T, b []byte) {
			var e EntryJSON
			if err := json.Unmarshal(b, &e); err != nil || e.Index != 599 {
				t.Fatalf("entry: %+v, %v", e, err)
			}
			stored, err := f.st.ReadEntries(context.Background(), 599, 600)
			if err != nil {
				t.Fatal(err)
			}
			raw := stored[0]
			if !bytes.Equal(e.Entry, raw) || e.LeafHash != tlog.RecordHash(raw) {
				t.Fatalf("entry JSON %s does not match", b)
			}
		}},
		{"/ledger/proof/inclusion?index=5&size=600", 200, nil},
		{"/ledger/proof/inclusion?index=5", 200, nil},
		{"/ledger/proof/consistency?from=7&to=600", 200, nil},
		{"/ledger/proof/consistency?from=7", 200, nil},
		// Malformed and missing resources.
		{"/ledger/tile/0/003", 404, nil},
		{"/ledger/tile/0/002.p/89", 404, nil},
		{"/ledger/tile/entries/002", 404, nil},
		{"/ledger/tile/0/0002", 400, nil},
		{"/ledger/tile/9/000", 400, nil},
		{"/ledger/tile/0/x000/002", 400, nil},
		{"/ledger/tile/0/002.p/256", 400, nil},
		{"/ledger/tile/0/00a", 400, nil},
		{"/ledger/tile/0/%2e%2e", 400, nil},
		{"/ledger/entries/600", 404, nil},
		{"/ledger/entries/-1", 400, nil},
		{"/ledger/entries/01", 400, nil},
		{"/ledger/entries/99999999999999999999", 400, nil},
		{"/ledger/proof/inclusion?index=600&size=600", 400, nil},
		{"/ledger/proof/inclusion?index=1&size=601", 404, nil},
		{"/ledger/proof/inclusion?size=10", 400, nil},
		{"/ledger/proof/inclusion?index=x&size=10", 400, nil},
		{"/ledger/proof/consistency?from=9&to=8", 400, nil},
		{"/ledger/proof/consistency?from=1&to=1000", 404, nil},
		{"/ledger/proof/consistency?from=+1&to=10", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, hdr, body := f.get(t, tt.path)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if hdr.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatal("missing nosniff")
			}
			if status >= 400 && (bytes.Contains(body, []byte("ledger:")) || len(body) > 100) {
				t.Fatalf("error body leaks internals: %q", body)
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

func TestCheckpointNotFoundOnEmptyLog(t *testing.T) {
	st := ledger.NewMemStore()
	mux := http.NewServeMux()
	Register(mux, "/l", Source{Log: st})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/l/checkpoint", nil))
	if rec.Code != 404 {
		t.Fatalf("status %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/l/cosign", strings.NewReader("x")))
	if rec.Code != 404 {
		t.Fatalf("cosign without a sink: status %d", rec.Code)
	}
}

// failingReader makes every read fail with an internal error.
type failingReader struct{ ledger.Reader }

func (failingReader) Size(context.Context) (int64, error) {
	return 0, errors.New("pq: connection to 10.0.0.7 refused (secret detail)")
}

func TestServerErrorsDoNotLeak(t *testing.T) {
	var logs bytes.Buffer
	mux := http.NewServeMux()
	Register(mux, "/l", Source{Log: failingReader{ledger.NewMemStore()}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/l/tile/0/000", nil))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("status %d body %q", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "secret detail") {
		t.Fatal("500 not logged with its detail")
	}
}

func TestVerifierOverHTTP(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 300)
	v, err := ledger.NewVerifier(f.signer.VerifierKey(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Update(ctx, f.client); err != nil {
		t.Fatal(err)
	}
	f.grow(t, 700)
	c, err := v.Update(ctx, f.client)
	if err != nil || c.Size != 1000 {
		t.Fatalf("update: %+v, %v", c, err)
	}
	raw := make([]ledger.Receipt, 0, 3)
	for _, i := range []int{0, 511, 999} {
		b, err := f.st.ReadEntries(ctx, int64(i), int64(i)+1)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, ledger.ReceiptFor(int64(i), b[0]))
	}
	if err := v.CheckReceipts(ctx, f.client, raw); err != nil {
		t.Fatal(err)
	}
	wrong := []ledger.Receipt{{Index: 3, Hash: raw[0].Hash}}
	if err := v.CheckReceipts(ctx, f.client, wrong); !errors.Is(err, ledger.ErrBadProof) {
		t.Fatalf("wrong receipt: %v", err)
	}
	n := 0
	if err := v.Replay(ctx, f.client, func(i int64, _ []byte, e ledger.Entry) error {
		n++
		if e.Subject != fmt.Sprintf("release-%d", i) {
			return fmt.Errorf("entry %d is %s", i, e.Subject)
		}
		return nil
	}); err != nil || n != 1000 {
		t.Fatalf("replay over HTTP: %v after %d entries", err, n)
	}
}

func TestCosignEndpoint(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 10)
	signed, err := f.client.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The witness is reached over HTTP too.
	wsrv := httptest.NewServer(WitnessHandler(f.witness, func() time.Time { return time.Unix(1764000000, 0) }, slog.New(slog.DiscardHandler)))
	defer wsrv.Close()
	line, err := AddCheckpoint(ctx, wsrv.Client(), wsrv.URL, ledger.AddCheckpointRequest{OldSize: 0, Checkpoint: signed})
	if err != nil {
		t.Fatal(err)
	}

	post := func(query string, body []byte) (int, string) {
		resp, err := f.srv.Client().Post(f.srv.URL+"/ledger/cosign"+query, "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	parsed, err := ledger.ParseSignatureLine(line)
	if err != nil {
		t.Fatal(err)
	}
	sig := binary.BigEndian.AppendUint32(nil, parsed.KeyHash)
	sig = append(sig, parsed.Sig...)
	sig[len(sig)-1] ^= 1
	flipped := []byte("— " + parsed.Name + " " + base64.StdEncoding.EncodeToString(sig) + "\n")
	tests := []struct {
		name   string
		query  string
		body   []byte
		status int
	}{
		{"oversized", "", bytes.Repeat([]byte("a"), ledger.MaxCosignatureLine+1), 413},
		{"not a line", "", []byte("hello"), 400},
		{"two lines", "", append(bytes.Clone(line), line...), 400},
		{"unknown witness", "", []byte("— stranger.test/w AAAAAAAA\n"), 403},
		{"bad signature", "", flipped, 403},
		{"no checkpoint at size", "?size=5", line, 404},
		{"bad size", "?size=x", line, 400},
		{"valid", "?size=10", line, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(tt.query, tt.body)
			if status != tt.status {
				t.Fatalf("status %d (%q), want %d", status, body, tt.status)
			}
		})
	}
	// The served checkpoint now carries the cosignature, verifiable with
	// the witness key.
	served, err := f.client.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(served, line) {
		t.Fatalf("served checkpoint lacks the cosignature:\n%s", served)
	}
	text, _, _ := bytes.Cut(served, []byte("\n\n"))
	if _, err := ledger.VerifyCosignatureLine(append(text, '\n'), line, f.wkey); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.VerifyCheckpoint(served, f.signer.VerifierKey()); err != nil {
		t.Fatalf("log signature with cosignatures appended: %v", err)
	}
}

func TestWitnessHandler(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 10)
	wsrv := httptest.NewServer(WitnessHandler(f.witness, nil, slog.New(slog.DiscardHandler)))
	defer wsrv.Close()
	signed10, _ := f.client.Checkpoint(ctx)
	if _, err := AddCheckpoint(ctx, wsrv.Client(), wsrv.URL, ledger.AddCheckpointRequest{Checkpoint: signed10}); err != nil {
		t.Fatal(err)
	}
	f.grow(t, 5)
	signed15, _ := f.client.Checkpoint(ctx)
	proof, _ := f.client.ConsistencyProof(ctx, 10, 15)

	// Stale old size: 409 with the witness's size, then success on retry.
	_, err := AddCheckpoint(ctx, wsrv.Client(), wsrv.URL, ledger.AddCheckpointRequest{OldSize: 0, Checkpoint: signed15})
	var sc *ledger.SizeConflictError
	if !errors.As(err, &sc) || sc.Size != 10 {
		t.Fatalf("stale size: %v", err)
	}
	bad := append(tlog.TreeProof{}, proof...)
	bad[0][3] ^= 1
	if _, err := AddCheckpoint(ctx, wsrv.Client(), wsrv.URL, ledger.AddCheckpointRequest{OldSize: 10, Proof: bad, Checkpoint: signed15}); !errors.Is(err, ledger.ErrInconsistent) {
		t.Fatalf("bad proof: %v", err)
	}
	if _, err := AddCheckpoint(ctx, wsrv.Client(), wsrv.URL, ledger.AddCheckpointRequest{OldSize: 10, Proof: proof, Checkpoint: signed15}); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name   string
		method string
		body   []byte
		status int
	}{
		{"GET", "GET", nil, 405},
		{"garbage", "POST", []byte("hello"), 400},
		{"oversized", "POST", bytes.Repeat([]byte("a"), ledger.MaxAddCheckpointBody+1), 413},
		{"unsigned", "POST", []byte("old 15\n\nparley.test/log\n15\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— x AAAAAAAA\n"), 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, wsrv.URL, bytes.NewReader(tt.body))
			resp, err := wsrv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}
