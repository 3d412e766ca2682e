package multiinstance

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/tests/e2e"
)

// TestOperatorIngestConcurrent: two parties post overlapping envelopes
// into one operator collection through two instances at once. Ingest there
// runs on row locks (store.RowLockUpdater, READ COMMITTED): no transaction
// fails and re-runs, each object id is its first poster's alone, every
// object is stored once, and each POST adds exactly one ledger entry.
func TestOperatorIngestConcurrent(t *testing.T) {
	db := pgSchemaURL(t)
	var dbs []*postgres.DB
	var bases []string
	var srv *server.Server
	for i := range 2 {
		st, err := postgres.Open(ctx, db, postgres.Options{Migrate: i == 0})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		dbs = append(dbs, st)
		base, s := serveStoreEvery(t, st, time.Hour)
		bases = append(bases, base)
		srv = s
	}
	a, b := newParty(t, srv, bases[0], "alpha"), newParty(t, srv, bases[0], "bravo")
	const coll = "collection--0b8d4a3e-5f5e-4a57-9a52-6c3f3ad1f0a1"
	if err := dbs[0].Collections().Create(ctx, store.Collection{ID: coll, APIRoot: "shared", Title: "both", CreatedAt: time.Now(),
		Readers: []string{a.ID, b.ID}, Writers: []string{a.ID, b.ID}}); err != nil {
		t.Fatal(err)
	}
	size0, err := dbs[0].Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	retries0 := dbs[0].Retries() + dbs[1].Retries()

	const writers, posts, ids = 3, 10, 400
	var mu sync.Mutex
	won := map[string]map[string]bool{} // object id -> parties whose POST it succeeded in
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for pi, p := range []*e2e.Party{a, b} {
		for w := range writers {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(pi*10+w), 2))
				for k := range posts {
					c := clientFor(t, bases[(w+k+pi)%2], p)
					st, err := c.AddObjects(ctx, "shared", coll, indicators(r.IntN(ids-40), 40))
					if err != nil {
						errs <- fmt.Errorf("%s writer %d: %w", p.Name, w, err)
						return
					}
					if st.TotalCount != 40 || st.SuccessCount+st.FailureCount != 40 {
						errs <- fmt.Errorf("%s writer %d: status %d = %d + %d", p.Name, w, st.TotalCount, st.SuccessCount, st.FailureCount)
						return
					}
					mu.Lock()
					for _, d := range st.Successes {
						if won[d.ID] == nil {
							won[d.ID] = map[string]bool{}
						}
						won[d.ID][p.ID] = true
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for id, ps := range won {
		if len(ps) != 1 {
			t.Errorf("%s accepted from %d parties", id, len(ps))
		}
	}
	if n, err := dbs[1].Objects().Count(ctx, coll); err != nil || n != int64(len(won)) {
		t.Fatalf("collection holds %d objects (%v); %d ids were accepted", n, err, len(won))
	}
	got := readAll(t, clientFor(t, bases[1], a), "shared", coll, 100)
	if len(got) != len(won) {
		t.Fatalf("alpha reads %d objects; %d ids were accepted", len(got), len(won))
	}
	size, err := dbs[1].Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := size0 + 2*writers*posts; size != want {
		t.Fatalf("ledger size %d after %d POSTs from %d; want %d", size, 2*writers*posts, size0, want)
	}
	if r := dbs[0].Retries() + dbs[1].Retries() - retries0; r != 0 {
		t.Fatalf("%d ingest transactions failed and were re-run", r)
	}
}
