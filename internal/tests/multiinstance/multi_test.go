package multiinstance

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/tests/e2e"
)

// TestMultiInstance starts three `parley serve` processes on one
// PostgreSQL schema, has two parties write and read concurrently through
// all three, and then checks the invariants: a TAXII cursor from
// one instance continues on another, allowances are exact, the ledger is
// one sequence holding every batch once, checkpoints from every instance
// are consistent with each other, and `parley verify` passes.
func TestMultiInstance(t *testing.T) {
	db := pgSchemaURL(t)
	if out := mustRun(t, "migrate", "--db", db); !strings.Contains(out, "schema at version") {
		t.Fatalf("parley migrate: %s", out)
	}
	var bases []string
	for range 3 {
		bases = append(bases, serveProc(t, "--db", db))
	}
	a, b := addParty(t, db, bases[0], "alpha"), addParty(t, db, bases[1], "bravo")
	// One client per instance per party.
	cs := map[string][]*client.Client{}
	for _, p := range []*e2e.Party{a, b} {
		for _, base := range bases {
			cs[p.ID] = append(cs[p.ID], clientFor(t, base, p))
		}
	}
	d := document(t, a, b, map[string]any{"ratio": "3:2", "grace": 7})
	b.C = cs[b.ID][1] // b countersigns on another instance than a proposes
	ag := activate(t, a, b, d)

	type side struct {
		p           *e2e.Party
		own, theirs string
		base        int
	}
	sides := []side{{p: a, base: 0}, {p: b, base: 1_000_000}}
	for i := range sides {
		sides[i].own, sides[i].theirs = collections(t, sides[i].p, ag.ID)
	}

	var posts atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	stop := make(chan struct{})
	// Checkpoints from every instance while the log grows.
	var cpMu sync.Mutex
	var seen [][]byte
	var cpWG sync.WaitGroup
	cpWG.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			if signed, err := audit.NewRemote(bases[i%3], a.Token, nil).Checkpoint(ctx); err == nil {
				cpMu.Lock()
				seen = append(seen, signed)
				cpMu.Unlock()
			}
		}
	})
	for i := range sides {
		sd := sides[i]
		for w := range 3 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(i*10+w), 1))
				for k := range 12 {
					n := 1 + r.IntN(12)
					from := sd.base + r.IntN(120) // overlapping: duplicates across writers
					c := cs[sd.p.ID][(w+k)%3]
					if _, err := c.AddObjects(ctx, ag.ID, sd.own, indicators(from, n)); err != nil {
						errs <- fmt.Errorf("%s writer %d: %w", sd.p.Name, w, err)
						return
					}
					posts.Add(1)
				}
			})
		}
		wg.Go(func() {
			for k := range 20 {
				// Read on one instance, then ask another what was released:
				// a read never returns more than was released when it ended.
				ids, err := tryReadAll(cs[sd.p.ID][k%3], ag.ID, sd.theirs, 1+k%9)
				if err != nil {
					errs <- err
					return
				}
				bal, err := cs[sd.p.ID][(k+1)%3].Balance(ctx, ag.ID)
				if err != nil {
					errs <- err
					return
				}
				if int64(len(ids)) > bal.Released {
					errs <- fmt.Errorf("%s read %d objects, but only %d were released", sd.p.Name, len(ids), bal.Released)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	cpWG.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	for _, sd := range sides {
		mine, err := cs[sd.p.ID][2].Balance(ctx, ag.ID)
		if err != nil {
			t.Fatal(err)
		}
		// "3:2" is give:get: three credits earn two objects.
		want := int64(min(7+mine.Credits*2/3, float64(mine.Available)))
		all := readAll(t, cs[sd.p.ID][0], ag.ID, sd.theirs, 1000)
		if int64(len(all)) != want || mine.Released != want {
			t.Fatalf("%s reads %d (released %d); want min(7 + 2/3 × %v, %d) = %d", sd.p.Name, len(all), mine.Released, mine.Credits, mine.Available, want)
		}
		for i, c := range cs[sd.p.ID] {
			if got := readAll(t, c, ag.ID, sd.own, 50); int64(len(got)) != mine.Contributed {
				t.Fatalf("%s reads %d of its own objects on instance %d but has %d credited contributions", sd.p.Name, len(got), i, mine.Contributed)
			}
		}
		// A cursor from one instance continues on the others.
		var paged []string
		page, err := cs[sd.p.ID][0].GetObjects(ctx, ag.ID, sd.theirs, client.Filter{Limit: 5})
		for k := 1; ; k++ {
			if err != nil {
				t.Fatalf("%s paging across instances: %v", sd.p.Name, err)
			}
			for _, o := range page.Objects {
				paged = append(paged, idOf(t, o))
			}
			if !page.More {
				break
			}
			page, err = cs[sd.p.ID][k%3].GetObjects(ctx, ag.ID, sd.theirs, client.Filter{Limit: 5, Next: page.Next})
		}
		if !slices.Equal(paged, all) {
			t.Fatalf("%s: paging across instances gave %d objects, one instance %d", sd.p.Name, len(paged), len(all))
		}
	}

	// The ledger: one sequence 0..n-1, every batch exactly once.
	st, err := postgres.Open(ctx, db, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := st.Ledger().ReadEntries(ctx, 0, n)
	if err != nil {
		t.Fatalf("ledger entries [0, %d): %v", n, err)
	}
	batches := map[string]int{}
	for i, raw := range entries {
		e, err := ledger.DecodeEntry(raw)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if e.Kind == ledger.KindFeedBatch {
			batches[e.Subject]++
		}
	}
	if int64(len(batches)) != posts.Load() {
		t.Fatalf("%d feed batches in the ledger, %d posts acknowledged", len(batches), posts.Load())
	}
	for s, k := range batches {
		if k != 1 {
			t.Fatalf("batch %s recorded %d times", s, k)
		}
	}

	// Every instance's checkpoint reaches the final size with the same root,
	// and every checkpoint seen is consistent with every later one.
	vkey := strings.TrimSpace(mustGet(t, bases[0]+"/ledger/key", a.Token))
	for i, base := range bases {
		r := audit.NewRemote(base, a.Token, nil)
		deadline := time.Now().Add(30 * time.Second)
		for {
			signed, err := r.Checkpoint(ctx)
			if err == nil {
				if c, err := ledger.VerifyCheckpoint(signed, vkey); err == nil && c.Size >= n {
					seen = append(seen, signed)
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %d: no checkpoint covering %d entries within 30s (%v)", i, n, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var cps []ledger.Checkpoint
	for _, signed := range seen {
		c, err := ledger.VerifyCheckpoint(signed, vkey)
		if err != nil {
			t.Fatalf("checkpoint %q: %v", signed, err)
		}
		cps = append(cps, c)
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	for i := range cps {
		for j := i + 1; j < len(cps); j++ {
			x, y := cps[i], cps[j]
			if x.Size == y.Size {
				if x.Hash != y.Hash {
					t.Fatalf("two checkpoints of size %d with different roots: a fork", x.Size)
				}
				continue
			}
			if x.Size == 0 {
				continue
			}
			proof, err := audit.NewRemote(bases[(i+j)%3], a.Token, nil).ConsistencyProof(ctx, x.Size, y.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := ledger.CheckConsistency(proof, x.Size, x.Hash, y.Size, y.Hash); err != nil {
				t.Fatalf("checkpoints %d and %d: %v", x.Size, y.Size, err)
			}
		}
	}
	t.Logf("%d posts, ledger of %d entries, %d checkpoints from 3 instances all consistent", posts.Load(), n, len(cps))

	// parley verify, as a party would run it, on each instance.
	for i, base := range bases {
		cfg := "PARLEY_CONFIG=" + t.TempDir() + "/profiles.json"
		out, code := run(t, []string{cfg}, "verify", "--server", base, "--token", b.Token, "--log-key", vkey)
		if code != 0 {
			t.Fatalf("parley verify on instance %d: exit %d\n%s", i, code, out)
		}
	}
}

func idOf(t testing.TB, raw []byte) string {
	t.Helper()
	_, rest, ok := bytes.Cut(raw, []byte(`"id":"`))
	id, _, ok2 := bytes.Cut(rest, []byte(`"`))
	if !ok || !ok2 {
		t.Fatalf("object without id: %s", raw)
	}
	return string(id)
}
