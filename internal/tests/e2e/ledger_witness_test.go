package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// TestWitnessCosignAndRequire: A runs a witness, the operator registers
// it, and B requires A's cosignature; verify fails until A cosigns the
// latest checkpoint, and A's later cosignatures prove consistency from the
// size it cosigned before.
func TestWitnessCosignAndRequire(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs the CLI")
	}
	data := filepath.Join(t.TempDir(), "data")
	s, _ := startOn(t, data)
	a, b := s.NewParty(t, "cert-north"), s.NewParty(t, "police-south")
	d := Document(t, a, b, nil)
	Activate(t, a, b, d)
	aOwn, _ := Collections(t, a, d.ID)
	publish(t, a, d.ID, aOwn, 0, 10)
	size := waitCheckpoint(t, s, a.Token, ledgerSize(t, s)).Size

	ca, cb := newCLI(t), newCLI(t)
	ca.mustRun(t, "login", "--server", s.URL, "--token", a.Token)
	cb.mustRun(t, "login", "--server", s.URL, "--token", b.Token)
	var key struct{ Name, Vkey string }
	if err := json.Unmarshal([]byte(ca.mustRun(t, "witness", "keygen", "--json")), &key); err != nil || key.Name != "cert-north-witness" {
		t.Fatalf("witness keygen: %+v, %v", key, err)
	}
	// A cosignature from an unregistered witness is refused.
	ca.mustRun(t, "verify") // pins the log key
	if out, code := ca.run(t, "witness", "cosign"); code == 0 || !strings.Contains(out, "cosignature refused") {
		t.Fatalf("cosign before registration (%d):\n%s", code, out)
	}
	ca.mustRun(t, "witness", "add", "--data", data, key.Name, key.Vkey)

	out, code := cb.run(t, "verify", "--require-cosigner", key.Vkey, "--settle", "1s")
	if code == 0 || !strings.Contains(out, "FAIL cosignatures") || !strings.Contains(out, "lacks a valid cosignature by witness cert-north-witness") {
		t.Fatalf("verify requiring an absent cosignature (%d):\n%s", code, out)
	}
	// The refused attempt already moved A's witness state to this size
	// (a witness persists before it answers), so no proof is needed.
	if out := ca.mustRun(t, "witness", "cosign"); !strings.Contains(out, "consistent with size "+itoa(size)) {
		t.Fatalf("first cosign:\n%s", out)
	}
	rep, out, code := cb.verifyJSON(t, "--require-cosigner", key.Name)
	if code != 0 || len(rep.Cosigned) != 1 || rep.Size != size {
		t.Fatalf("verify with the cosignature (%d):\n%s", code, out)
	}

	// The log grows; the next cosignature proves consistency from size.
	publish(t, a, d.ID, aOwn, 100, 5)
	waitCheckpoint(t, s, a.Token, size+1)
	if out := ca.mustRun(t, "witness", "cosign"); !strings.Contains(out, "consistent with size "+itoa(size)) {
		t.Fatalf("second cosign:\n%s", out)
	}
	cb.mustRun(t, "verify", "--require-cosigner", key.Name)
	// An unpinned witness name is a usage error, not a silent pass.
	if out, code := cb.run(t, "verify", "--require-cosigner", "nobody"); code != 2 {
		t.Fatalf("unknown witness name (%d):\n%s", code, out)
	}
}

// TestBackfillUpgradesPreLedgerData starts a server on a data directory
// whose objects were stored without ledger entries (as schema 1 did): the
// server appends one genesis entry per collection once, and verify passes.
func TestBackfillUpgradesPreLedgerData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs the CLI")
	}
	data := filepath.Join(t.TempDir(), "data")
	st, err := sqlite.Open(ctx, data, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	p, token, err := party.New(st).Create(ctx, "old-timer")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i, n := range []int{3, 0, 5} {
		c, err := exchange.New(st).CreateCollection(ctx, "old "+itoa(int64(i)), "", []string{p.ID}, []string{p.ID})
		if err != nil {
			t.Fatal(err)
		}
		var objs []store.Object
		for k := range n {
			objs = append(objs, store.Object{ID: "indicator--00000000-0000-4000-8000-00000000000" + itoa(int64(k)), Type: "indicator",
				SpecVersion: "2.1", Version: now, DateAdded: now, Raw: Indicator(k, "")})
		}
		if len(objs) > 0 {
			if _, err := st.Objects().Put(ctx, c.ID, objs); err != nil {
				t.Fatal(err)
			}
		}
	}
	st.Close()

	s, stop := startOn(t, data)
	if n := ledgerSize(t, s); n != 2 {
		t.Fatalf("ledger size after backfill = %d, want one entry per non-empty collection (2)", n)
	}
	c := newCLI(t)
	c.mustRun(t, "login", "--server", s.URL, "--token", token)
	rep, out, code := c.verifyJSON(t)
	if code != 0 || rep.Genesis != 2 || rep.Entries != 2 {
		t.Fatalf("verify after backfill (%d):\n%s", code, out)
	}
	stop()
	// Restarting does not backfill again.
	s, _ = startOn(t, data)
	if n := ledgerSize(t, s); n != 2 {
		t.Fatalf("ledger size after a second start = %d, want 2", n)
	}
	if _, out, code := c.verifyJSON(t, "--server", s.URL); code != 0 {
		t.Fatalf("verify after restart (%d):\n%s", code, out)
	}
}
