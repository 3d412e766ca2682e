package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
	"github.com/parley-cti/parley/internal/store/sqlite/sqlitetest"
)

// tamperBase is a stopped data directory with a verified history: an
// agreement between A and B, contributions and releases, and A's CLI state
// after one successful `parley verify` holding a receipt.
type tamperBase struct {
	data     string // stopped data directory
	cli      *cli   // A's machine
	a        *Party
	agID     string
	aOwn     string
	receipt  int64 // index of A's proposal entry, held as a receipt
	seenSize int64 // checkpoint size A accepted
}

func newTamperBase(t *testing.T) *tamperBase {
	data := filepath.Join(t.TempDir(), "data")
	s, stop := startOn(t, data)
	a, b := s.NewParty(t, "cert-north"), s.NewParty(t, "police-south")
	d := Document(t, a, b, nil)
	prop, err := a.C.Propose(ctx, d, Sign(t, a, d, agreement.ActionPropose))
	if err != nil || prop.LedgerIndex == nil {
		t.Fatalf("propose: %+v, %v", prop, err)
	}
	if _, err := b.C.Sign(ctx, Sign(t, b, d, agreement.ActionCountersign)); err != nil {
		t.Fatal(err)
	}
	aOwn, _ := Collections(t, a, d.ID)
	bOwn, _ := Collections(t, b, d.ID)
	for i := range 3 {
		publish(t, a, d.ID, aOwn, i*10, 10)
		publish(t, b, d.ID, bOwn, 1000+i*5, 5)
	}
	c := newCLI(t)
	c.mustRun(t, "login", "--server", s.URL, "--token", a.Token, "--profile", "a")
	out := c.mustRun(t, "verify", "--receipt", strconv.FormatInt(*prop.LedgerIndex, 10))
	if !strings.Contains(out, "ledger verified at size") || !strings.Contains(out, "trust on first use") {
		t.Fatalf("first verify:\n%s", out)
	}
	rep, out, code := c.verifyJSON(t)
	if code != 0 || rep.Size < 8 || len(rep.Agreements) != 1 || rep.Agreements[0].Contributed != 30 || rep.Agreements[0].Available != 15 {
		t.Fatalf("second verify (%d):\n%s", code, out)
	}
	base := &tamperBase{data: data, cli: c, a: a, agID: d.ID, aOwn: aOwn, receipt: *prop.LedgerIndex, seenSize: rep.Size}
	stop()
	return base
}

// scenario gives a copy of the data directory and of A's machine.
func (b *tamperBase) scenario(t *testing.T) (string, *cli) {
	data := filepath.Join(t.TempDir(), "data")
	copyDir(t, b.data, data)
	return data, b.cli.clone(t)
}

// grow has A publish more and waits until a checkpoint covers it.
func (b *tamperBase) grow(t *testing.T, s *Server, from int) ledger.Checkpoint {
	c, err := client.New(s.URL+"/taxii2/", client.WithToken(b.a.Token))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, &Party{Name: b.a.Name, C: c}, b.agID, b.aOwn, from, 3)
	return waitCheckpoint(t, s, b.a.Token, ledgerSize(t, s))
}

// mustFail runs verify against url and checks it fails naming want.
func mustFail(t *testing.T, c *cli, url string, want ...string) {
	t.Helper()
	out, code := c.run(t, "verify", "--server", url, "--settle", "2s")
	if code == 0 {
		t.Fatalf("verify passed on a tampered log:\n%s", out)
	}
	t.Logf("parley verify exited %d:\n%s", code, out)
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("verify output lacks %q:\n%s", w, out)
		}
	}
}

// TestVerifyDetectsTampering is the "Bad input and attacks" on a
// real data directory: each attack runs on its own copy of a directory
// whose history party A has already verified, on a restarted server, and
// `parley verify` must fail, naming the check and the entry or size.
func TestVerifyDetectsTampering(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and runs the CLI")
	}
	base := newTamperBase(t)
	bg := context.Background()
	r := base.receipt

	t.Run("untouched copy verifies", func(t *testing.T) {
		data, c := base.scenario(t)
		s, _ := startOn(t, data)
		c.mustRun(t, "verify", "--server", s.URL)
	})
	t.Run("edited entry", func(t *testing.T) {
		data, c := base.scenario(t)
		raw, err := sqlitetest.Entry(bg, data, r)
		if err != nil {
			t.Fatal(err)
		}
		edited := bytes.Replace(raw, []byte(`"action":"propose"`), []byte(`"action":"proposX"`), 1)
		if bytes.Equal(edited, raw) {
			t.Fatalf("entry %d has no action to edit: %s", r, raw)
		}
		if err := sqlitetest.EditEntry(bg, data, r, edited); err != nil {
			t.Fatal(err)
		}
		s, _ := startOn(t, data)
		mustFail(t, c, s.URL, "FAIL entries", fmt.Sprintf("entry %d does not match checkpoint", r),
			"FAIL receipts", fmt.Sprintf("receipt for entry %d: the log now serves different bytes", r))
	})
	t.Run("edited hash", func(t *testing.T) {
		data, c := base.scenario(t)
		// The sibling of the receipt's leaf lies on its inclusion proof.
		var h tlog.Hash
		h[0] = 1
		if err := sqlitetest.EditHash(bg, data, tlog.StoredHashIndex(0, r^1), h); err != nil {
			t.Fatal(err)
		}
		s, _ := startOn(t, data)
		mustFail(t, c, s.URL, "FAIL receipts", fmt.Sprintf("inclusion of entry %d in tree %d", r, base.seenSize), "proof does not verify")
	})
	t.Run("deleted entry", func(t *testing.T) {
		data, c := base.scenario(t)
		del := base.seenSize - 2
		if err := sqlitetest.DeleteEntry(bg, data, del); err != nil {
			t.Fatal(err)
		}
		s, _ := startOn(t, data)
		mustFail(t, c, s.URL, "FAIL entries", fmt.Sprintf("entry %d is missing from the log", del))
	})
	t.Run("truncated inclusion proof", func(t *testing.T) {
		data, c := base.scenario(t)
		s, _ := startOn(t, data)
		p := truncatingProxy(t, s.URL, "/ledger/proof/inclusion")
		mustFail(t, c, p, "FAIL receipts", fmt.Sprintf("inclusion proof for entry %d in tree %d has", r, base.seenSize), "proof has the wrong length")
	})
	t.Run("truncated consistency proof", func(t *testing.T) {
		data, c := base.scenario(t)
		s, _ := startOn(t, data)
		cp := base.grow(t, s, 500)
		p := truncatingProxy(t, s.URL, "/ledger/proof/consistency")
		mustFail(t, c, p, "FAIL consistency", fmt.Sprintf("consistency proof %d→%d has", base.seenSize, cp.Size), "proof has the wrong length")
	})
	t.Run("checkpoint signed by another key", func(t *testing.T) {
		data, c := base.scenario(t)
		origin := logOrigin(t, data)
		skey, _, err := ledger.GenerateSignerKey(origin) // same name, other key
		if err != nil {
			t.Fatal(err)
		}
		if err := sqlitetest.ReplaceSetting(bg, data, "ledger.note-skey", []byte(skey)); err != nil {
			t.Fatal(err)
		}
		s, _ := startOn(t, data)
		base.grow(t, s, 600) // the server signs the new size with the new key
		mustFail(t, c, s.URL, "FAIL checkpoint", "checkpoint not signed by "+origin, "bad signature")
	})
	t.Run("rollback to an older checkpoint", func(t *testing.T) {
		data, c := base.scenario(t)
		old := base.seenSize - 3
		if err := sqlitetest.Truncate(bg, data, old); err != nil {
			t.Fatal(err)
		}
		s, _ := startOn(t, data)
		// The server may still hand out its last stored checkpoint below
		// the truncated size until it signs the new one: either is a
		// rollback from the size the client saw.
		mustFail(t, c, s.URL, "FAIL consistency", fmt.Sprintf("after size %d", base.seenSize), "rollback")
	})
	t.Run("fork: another tree of the same size", func(t *testing.T) {
		data, c := base.scenario(t)
		forkLog(t, data, base.seenSize)
		s, _ := startOn(t, data)
		mustFail(t, c, s.URL, "FAIL consistency", fmt.Sprintf("checkpoint at size %d has root", base.seenSize), "fork")
	})
	t.Run("fork: another tree that grew", func(t *testing.T) {
		data, c := base.scenario(t)
		forkLog(t, data, base.seenSize)
		s, _ := startOn(t, data)
		cp := base.grow(t, s, 700)
		mustFail(t, c, s.URL, "FAIL consistency", fmt.Sprintf("from last seen size %d", base.seenSize), fmt.Sprintf("tree %d is not a prefix of tree %d", base.seenSize, cp.Size))
	})
}

// logOrigin reads the log's origin from the stopped directory.
func logOrigin(t *testing.T, data string) string {
	st, err := sqlite.Open(ctx, data, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	skey, err := st.Settings().Get(ctx, "ledger.note-skey")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ledger.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	return s.Origin()
}

// forkLog rewrites the stopped log as a different tree of the same size —
// the last entry's time moved by a second — and signs it with the log's
// own key, as an operator showing this party another history would.
func forkLog(t *testing.T, data string, size int64) {
	t.Helper()
	st, err := sqlite.Open(ctx, data, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := st.Ledger()
	n, err := l.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raws, err := l.ReadEntries(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]ledger.Entry, 0, size)
	for _, raw := range raws[:size] {
		e, err := ledger.DecodeEntry(raw)
		if err != nil {
			t.Fatal(err)
		}
		// Append seals afresh: the forger drops nonces and commitments
		// (which it could not re-seal) and gets new ones.
		e.V, e.Nonce, e.Digests = 0, "", nil
		entries = append(entries, e)
	}
	entries[size-1].Time = entries[size-1].Time.Add(1e9)
	skey, err := st.Settings().Get(ctx, "ledger.note-skey")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := sqlitetest.Truncate(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	st2, err := sqlite.Open(ctx, data, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	err = st2.Update(ctx, func(tx store.Handle) error {
		l := tx.Ledger()
		if _, err := ledger.Append(ctx, l, entries...); err != nil {
			return err
		}
		_, _, err = ledger.NewCheckpoint(ctx, l, signer)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// truncatingProxy forwards to target but drops the last hash of every
// proof served at path.
func truncatingProxy(t *testing.T, target, path string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path != path || resp.StatusCode != http.StatusOK {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			return err
		}
		if hs, ok := doc["hashes"].([]any); ok && len(hs) > 0 {
			doc["hashes"] = hs[:len(hs)-1]
		}
		body, _ = json.Marshal(doc)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}
