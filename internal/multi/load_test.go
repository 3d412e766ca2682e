package multi

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/e2e"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/postgres"
)

// TestLoadTwoInstances is the issue-15 load run for docs/BENCHMARKS.md,
// not a check: two in-process instances with the default pool (and the
// default checkpoint interval) on one
// PostgreSQL schema, 16 writers posting to one agreement's collections
// through both, plus handover and request workflows, for
// PARLEY_LOAD_SECONDS seconds. It reports every request slower than 1 s
// (a stall) and every 5xx, and fails on any 5xx or error. It runs only
// when PARLEY_LOAD_SECONDS is set:
//
//	PARLEY_LOAD_SECONDS=120 go test -run TestLoadTwoInstances -v ./internal/multi/
func TestLoadTwoInstances(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("PARLEY_LOAD_SECONDS"))
	if secs <= 0 {
		t.Skip("PARLEY_LOAD_SECONDS not set (a load run for docs/BENCHMARKS.md)")
	}
	db := pgSchemaURL(t)
	var bases []string
	var srvs []*serverAndStore
	var dbs []*postgres.DB
	for i := range 2 {
		st, err := postgres.Open(ctx, db, postgres.Options{Migrate: i == 0})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		dbs = append(dbs, st)
		// The server's defaults, checkpoint interval included (the other
		// tests sign one every 200 ms, each queuing on the ledger).
		base, srv := serveStoreEvery(t, st, 0)
		bases = append(bases, base)
		srvs = append(srvs, &serverAndStore{srv: srv})
	}
	a, b := newParty(t, srvs[0].srv, bases[0], "alpha"), newParty(t, srvs[0].srv, bases[0], "bravo")
	ag := activate(t, a, b, document(t, a, b, map[string]any{"ratio": "1:1", "grace": 1000}))
	ownA, _ := collections(t, a, ag.ID)
	ownB, _ := collections(t, b, ag.ID)
	lctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second)
	defer cancel()
	// Every HTTP request is timed and its status counted by the transport.
	rt := &timingTransport{next: http.DefaultTransport, last: time.Now()}
	retries0 := dbs[0].Retries() + dbs[1].Retries()
	hc := &http.Client{Transport: rt}
	on := func(p *e2e.Party, i int) *e2e.Party {
		q := *p
		c, err := client.New(bases[i%2]+"/taxii2/", client.WithToken(p.Token), client.WithHTTPClient(hc))
		if err != nil {
			t.Fatal(err)
		}
		q.C = c
		return &q
	}
	var errs atomic.Int64
	var firstErr atomic.Value
	timed := func(what string, f func() error) bool {
		err := f()
		if lctx.Err() != nil {
			return false
		}
		if err != nil {
			errs.Add(1)
			firstErr.CompareAndSwap(nil, what+": "+err.Error())
			return false
		}
		return true
	}
	var wg sync.WaitGroup
	var posts, rounds atomic.Int64
	for w := range 16 {
		p, own := on(a, w), ownA
		if w%2 == 1 {
			p, own = on(b, w), ownB
		}
		wg.Go(func() {
			for k := 0; lctx.Err() == nil; k++ {
				if timed("post", func() error {
					_, err := p.C.AddObjects(lctx, ag.ID, own, indicators(w*1_000_000+k*5, 5))
					return err
				}) {
					posts.Add(1)
				}
			}
		})
	}
	for w := range 2 {
		pa, pb := on(a, w), on(b, w+1)
		wg.Go(func() {
			for k := 0; lctx.Err() == nil; k++ {
				if timed("handover round", func() error { return handoverRound(lctx, pa, pb, ag.ID, 10_000*w+k, func() {}) }) {
					rounds.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		pa, pb := on(a, 1), on(b, 0)
		for k := 0; lctx.Err() == nil; k++ {
			if timed("request round", func() error { return requestRound(lctx, pa, pb, ag.ID, 100_000+k, func() {}) }) {
				rounds.Add(1)
			}
		}
	})
	wg.Wait()
	rt.mu.Lock()
	lat, stalls := rt.lat, rt.stalls
	fivexx, gap, gapEnd := rt.fivexx, rt.maxGap, rt.maxGapEnd
	rt.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(q*float64(len(lat)-1))].Round(time.Millisecond)
	}
	// Two measures of a stall: the longest time in which no request
	// completed at all (the system stood still), and the number of single
	// requests slower than 1 s (one client waited).
	t.Logf("%d s, 2 instances: %d posts (5 objects each), %d handover/request rounds, %d HTTP requests; latency p50 %s p99 %s max %s; "+
		"longest gap with no completed request %s (ending %s after the start); %d requests over 1 s; %d 5xx; %d errors; %d transactions re-run after a serialization failure or deadlock",
		secs, posts.Load(), rounds.Load(), len(lat), pct(.5), pct(.99), pct(1), gap.Round(time.Millisecond), gapEnd.Round(time.Second),
		len(stalls), fivexx, errs.Load(), dbs[0].Retries()+dbs[1].Retries()-retries0)
	if len(stalls) > 0 {
		t.Logf("slower than 1 s: %v", stalls[:min(len(stalls), 20)])
	}
	if errs.Load() > 0 || fivexx > 0 {
		t.Fatalf("%d operations failed (%d 5xx); first: %v", errs.Load(), fivexx, firstErr.Load())
	}
}

type serverAndStore struct{ srv *server.Server }

// timingTransport records each request's duration and counts 5xx.
type timingTransport struct {
	next   http.RoundTripper
	mu     sync.Mutex
	lat    []time.Duration
	stalls []string
	fivexx int
	// last is when the previous request completed (at first: the start);
	// maxGap the longest time between two completions, ending maxGapEnd
	// after start.
	start, last time.Time
	maxGap      time.Duration
	maxGapEnd   time.Duration
}

func (t *timingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	d := time.Since(start)
	if r.Context().Err() != nil {
		return resp, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lat = append(t.lat, d)
	if t.start.IsZero() {
		t.start = t.last
	}
	if now := start.Add(d); now.Sub(t.last) > t.maxGap {
		t.maxGap, t.maxGapEnd = now.Sub(t.last), now.Sub(t.start)
		t.last = now
	} else if now.After(t.last) {
		t.last = now
	}
	if d > time.Second {
		t.stalls = append(t.stalls, fmt.Sprintf("%s %s %s", r.Method, r.URL.Path, d.Round(time.Millisecond)))
	}
	if err == nil && resp.StatusCode >= 500 {
		t.fivexx++
	}
	return resp, err
}
