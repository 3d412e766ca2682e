package multiinstance

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/tests/e2e"
)

// TestLoadTwoInstances is the issue-15 load run for docs/BENCHMARKS.md,
// not a check: two in-process instances with the default pool (and the
// default checkpoint interval) on one
// PostgreSQL schema, 16 writers posting to one agreement's collections
// through both, plus handover and request workflows, for
// PARLEY_LOAD_SECONDS seconds. It reports every request slower than 1 s
// (a stall) and every 5xx, and fails on any 5xx or error. Of the longest
// time with no request completing it says which requests were in flight,
// what parley's database sessions and PostgreSQL's own processes were doing
// (pg_stat_activity every 100 ms), how long a sync of the disk took, and,
// past 700 ms, where the process's goroutines were blocked. It runs only
// when PARLEY_LOAD_SECONDS is set:
//
//	PARLEY_LOAD_SECONDS=120 go test -run TestLoadTwoInstances -v ./internal/tests/multiinstance/
func TestLoadTwoInstances(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("PARLEY_LOAD_SECONDS"))
	if secs <= 0 {
		t.Skip("PARLEY_LOAD_SECONDS not set (a load run for docs/BENCHMARKS.md)")
	}
	db := pgSchemaURL(t)
	// The servers' errors (a 5xx logs its cause), the first few kept.
	var errLog firstLines
	var bases []string
	var srvs []*serverAndStore
	var dbs []*postgres.DB
	// Each instance's sessions carry its name, so the activity samples
	// say which one a session belongs to.
	app := "parley-load-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10) + "-"
	for i := range 2 {
		st, err := postgres.Open(ctx, db+"&application_name="+app+strconv.Itoa(i), postgres.Options{Migrate: i == 0})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		dbs = append(dbs, st)
		// The server's defaults, checkpoint interval included (the other
		// tests sign one every 200 ms, each queuing on the ledger).
		base, srv := serveStoreLogged(t, st, 0, slog.New(slog.NewTextHandler(&errLog, &slog.HandlerOptions{Level: slog.LevelError})))
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
	rt := &timingTransport{next: http.DefaultTransport, last: time.Now(), instance: map[string]string{}}
	for i, b := range bases {
		u, _ := url.Parse(b)
		rt.instance[u.Host] = "i" + strconv.Itoa(i)
	}
	var pg activity
	wctx, wcancel := context.WithCancel(ctx)
	var watchers sync.WaitGroup
	watchers.Go(func() { pg.run(wctx, os.Getenv("PARLEY_TEST_POSTGRES"), app, 100*time.Millisecond) })
	watchers.Go(func() { rt.watchGaps(wctx, 700*time.Millisecond) })
	var disk diskProbe
	watchers.Go(func() { disk.run(wctx, t.TempDir(), 50*time.Millisecond) })
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
	wcancel()
	watchers.Wait()
	rt.mu.Lock()
	lat, stalls := rt.lat, rt.stalls
	fivexx, gap, gapEnd, report := rt.fivexx, rt.maxGap, rt.maxGapEnd, rt.gap
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
	logGap(t, report, &pg, &disk)
	if lines := errLog.String(); lines != "" {
		t.Logf("the servers' first errors:\n%s", lines)
	}
	if errs.Load() > 0 || fivexx > 0 {
		t.Fatalf("%d operations failed (%d 5xx); first: %v", errs.Load(), fivexx, firstErr.Load())
	}
}

// logGap says what was in flight across the longest gap, what parley's
// database sessions (i0, i1: the instances) and PostgreSQL's own processes
// were doing during it, and where the process's goroutines were blocked.
func logGap(t *testing.T, g gapReport, pg *activity, disk *diskProbe) {
	t.Logf("longest gap: %s, from %s to %s; requests in flight when it ended (i0, i1: the instance):\n\t%s",
		g.end.Sub(g.start).Round(time.Millisecond), g.start.Format("15:04:05.000"), g.end.Format("15:04:05.000"),
		strings.Join(g.flights, "\n\t"))
	pg.mu.Lock()
	err := pg.err
	pg.mu.Unlock()
	if err != nil {
		t.Logf("sampling pg_stat_activity failed: %v", err)
	}
	var b strings.Builder
	for _, s := range pg.between(g.start.Add(-100*time.Millisecond), g.end.Add(100*time.Millisecond)) {
		fmt.Fprintf(&b, "\n  %s (%+dms into the gap; %d checkpoints so far)", s.at.Format("15:04:05.000"), s.at.Sub(g.start).Milliseconds(), s.checkpoints)
		for _, r := range s.rows {
			b.WriteString("\n\t" + r.String())
		}
	}
	t.Logf("pg_stat_activity during the gap, every 100 ms:%s", b.String())
	total, by := pg.holders()
	var kinds []string
	for k := range by {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return by[kinds[i]] > by[kinds[j]] })
	b.Reset()
	for _, k := range kinds {
		fmt.Fprintf(&b, "\n\t%5.1f%% %s", 100*float64(by[k])/float64(max(total, 1)), k)
	}
	t.Logf("parley's sessions not queued for the agreement and not idle (or idle holding it), %d sampled, were:%s", total, b.String())
	worst, slow := disk.slowest(time.Time{}, time.Time{})
	inGap, _ := disk.slowest(g.start, g.end)
	disk.mu.Lock()
	derr, n := disk.err, len(disk.syncs)
	disk.mu.Unlock()
	t.Logf("disk probe (8 KiB write + fdatasync every 50 ms beside the database's disk, %d syncs): slowest %s at %s, %d over 100 ms; slowest during the longest gap %s (error: %v)",
		n, worst.d.Round(time.Millisecond), worst.at.Format("15:04:05.000"), slow, inGap.d.Round(time.Millisecond), derr)
	if g.goroutines != nil {
		t.Logf("goroutines with a parley frame, 700 ms into the gap (count × [state] waiting in ← parley callers):\n\t%s",
			strings.Join(parleyFrames(g.goroutines), "\n\t"))
	}
}

// firstLines keeps the first 20 lines written to it, but for requests
// cancelled when the run ends.
type firstLines struct {
	mu    sync.Mutex
	lines []string
}

func (f *firstLines) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Requests cut off by the end of the run are not the servers' errors,
	// and the access log's line of a 5xx repeats the one with its cause.
	if len(f.lines) < 20 && !bytes.Contains(p, []byte("context canceled")) && !bytes.Contains(p, []byte("msg=request ")) {
		f.lines = append(f.lines, strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (f *firstLines) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.lines, "\n")
}

type serverAndStore struct{ srv *server.Server }

// timingTransport records each request's duration and counts 5xx, and
// what was in flight across the longest gap with no completed request.
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
	// instance names a request's host (which server it went to).
	instance map[string]string
	inflight map[uint64]flight
	nextID   uint64
	gap      gapReport // the longest gap's
	// pending is the goroutine profile watchGaps took during the gap in
	// progress, which began at dumpedFor.
	pending   []byte
	dumpedFor time.Time
}

func (t *timingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	t.mu.Lock()
	id := t.nextID
	t.nextID++
	if t.inflight == nil {
		t.inflight = map[uint64]flight{}
	}
	t.inflight[id] = flight{what: t.instance[r.URL.Host] + " " + r.Method + " " + shortPath(r.URL.Path), start: start}
	t.mu.Unlock()
	resp, err := t.next.RoundTrip(r)
	d := time.Since(start)
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.inflight[id]
	delete(t.inflight, id)
	if r.Context().Err() != nil {
		return resp, err
	}
	t.lat = append(t.lat, d)
	if t.start.IsZero() {
		t.start = t.last
	}
	if now := start.Add(d); now.Sub(t.last) > t.maxGap {
		t.maxGap, t.maxGapEnd = now.Sub(t.last), now.Sub(t.start)
		t.gap = gapReport{start: t.last, end: now}
		if t.dumpedFor.Equal(t.last) {
			t.gap.goroutines = t.pending
		}
		t.gap.flights = append(t.gap.flights, fmt.Sprintf("%s, %s, completed it", f.what, d.Round(time.Millisecond)))
		var rest []flight
		for _, g := range t.inflight {
			rest = append(rest, g)
		}
		sort.Slice(rest, func(i, j int) bool { return rest[i].start.Before(rest[j].start) })
		for _, g := range rest {
			t.gap.flights = append(t.gap.flights, fmt.Sprintf("%s, in flight for %s", g.what, now.Sub(g.start).Round(time.Millisecond)))
		}
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
