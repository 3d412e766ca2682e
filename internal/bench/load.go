package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// Operation kinds the load generator issues.
const (
	OpAdd        = "add_objects" // POST an envelope of fresh indicators
	OpGetObject  = "get_object"  // GET one object this run wrote
	OpGetObjects = "get_objects" // GET the first page of the collection
)

// Load drives a server with Clients concurrent clients until Duration passes,
// MaxRequests have been sent or ctx ends. Each request is a write with
// probability WriteFraction, else a read (half single-object GETs of objects
// this run wrote, half first-page reads). BaseURL must be a loopback address.
type Load struct {
	BaseURL, Root, Collection string
	Token, User, Password     string

	Clients       int           // default 4
	Duration      time.Duration // default 10s
	MaxRequests   int           // 0 means no limit
	WriteFraction float64       // 0..1
	EnvelopeSize  int           // objects per write (default 10)
	PageLimit     int           // limit of page reads (default 100)
	Seed          uint64        // 0 means one from the clock
	HTTPClient    *http.Client
}

// OpStats summarises one operation kind.
type OpStats struct {
	Kind               string
	Count, Errors      int
	PerSec             float64
	P50, P95, P99, Max time.Duration
}

// LoadResult is what a Load run measured.
type LoadResult struct {
	Duration time.Duration
	Requests int
	Errors   int
	PerSec   float64
	Ops      []OpStats      // sorted by kind
	ErrorsBy map[string]int // "<kind>: <cause>" -> count
}

type loadRecorder struct {
	mu       sync.Mutex
	lat      map[string][]time.Duration
	errs     map[string]int
	errsBy   map[string]int
	ids      []string
	requests atomic.Int64
}

func (r *loadRecorder) record(kind string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs[kind]++
		r.errsBy[kind+": "+errorCause(err)]++
		return
	}
	r.lat[kind] = append(r.lat[kind], d)
}

// errorCause names an error class without unbounded detail.
func errorCause(err error) string {
	var te *client.Error
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("HTTP %d", te.StatusCode)
	case errors.Is(err, client.ErrProtocol):
		return "protocol violation"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "transport"
	}
}

// Run executes the load and prints the report to w.
func (l Load) Run(ctx context.Context, w io.Writer) (LoadResult, error) {
	if err := client.RequireLoopback(l.BaseURL); err != nil {
		return LoadResult{}, fmt.Errorf("bench: load: %w", err)
	}
	if l.Clients <= 0 {
		l.Clients = 4
	}
	if l.Duration <= 0 {
		l.Duration = 10 * time.Second
	}
	if l.EnvelopeSize <= 0 {
		l.EnvelopeSize = 10
	}
	if l.PageLimit <= 0 {
		l.PageLimit = 100
	}
	if l.WriteFraction < 0 || l.WriteFraction > 1 {
		return LoadResult{}, fmt.Errorf("bench: load: write fraction %v is not within 0..1", l.WriteFraction)
	}
	if l.Seed == 0 {
		l.Seed = uint64(time.Now().UnixNano())
	}
	c, _, err := newClient(l.BaseURL, l.Token, l.User, l.Password, l.HTTPClient, false)
	if err != nil {
		return LoadResult{}, err
	}
	root, coll, err := resolveTarget(ctx, c, l.Root, l.Collection)
	if err != nil {
		return LoadResult{}, err
	}
	fmt.Fprintf(w, "taxii load: %s root=%s collection=%s clients=%d duration=%s max-requests=%d write-fraction=%.2f\n",
		c.BaseURL(), root, coll, l.Clients, l.Duration, l.MaxRequests, l.WriteFraction)

	gen := newIndicatorGen(l.Seed)
	var nextObject atomic.Int64
	rec := &loadRecorder{lat: map[string][]time.Duration{}, errs: map[string]int{}, errsBy: map[string]int{}}
	lctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for worker := range l.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(l.Seed, uint64(worker)))
			for lctx.Err() == nil {
				if n := rec.requests.Add(1); l.MaxRequests > 0 && n > int64(l.MaxRequests) {
					rec.requests.Add(-1)
					return
				}
				rec.mu.Lock()
				known := len(rec.ids)
				var id string
				if known > 0 {
					id = rec.ids[r.IntN(known)]
				}
				rec.mu.Unlock()
				t0 := time.Now()
				switch {
				case r.Float64() < l.WriteFraction:
					first := int(nextObject.Add(int64(l.EnvelopeSize))) - l.EnvelopeSize
					objs := make([]json.RawMessage, l.EnvelopeSize)
					for i := range objs {
						objs[i] = gen.object(first + i)
					}
					t0 = time.Now() // generation is not the server's time
					st, err := c.AddObjects(lctx, root, coll, objs)
					if err == nil && st.FailureCount > 0 {
						err = fmt.Errorf("%w: %d failures", client.ErrRejected, st.FailureCount)
					}
					if lctx.Err() != nil {
						return // cut short by the end of the run: not a server error
					}
					rec.record(OpAdd, time.Since(t0), err)
					if err == nil {
						rec.mu.Lock()
						for i := range objs {
							rec.ids = append(rec.ids, gen.id(first+i))
						}
						rec.mu.Unlock()
					}
				case id != "" && r.IntN(2) == 0:
					env, err := c.GetObject(lctx, root, coll, id, client.Filter{})
					if err == nil && len(env.Objects) == 0 {
						err = fmt.Errorf("%w: empty envelope for %s", client.ErrProtocol, id)
					}
					if lctx.Err() != nil {
						return
					}
					rec.record(OpGetObject, time.Since(t0), err)
				default:
					_, err := c.GetObjects(lctx, root, coll, client.Filter{Limit: l.PageLimit})
					if lctx.Err() != nil {
						return
					}
					rec.record(OpGetObjects, time.Since(t0), err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return LoadResult{}, ctx.Err()
	}

	res := LoadResult{Duration: elapsed, ErrorsBy: rec.errsBy}
	for _, kind := range []string{OpAdd, OpGetObject, OpGetObjects} {
		lat, errs := rec.lat[kind], rec.errs[kind]
		if len(lat)+errs == 0 {
			continue
		}
		s := OpStats{Kind: kind, Count: len(lat) + errs, Errors: errs, PerSec: perSec(len(lat)+errs, elapsed)}
		s.P50, s.P95, s.P99, s.Max = percentiles(lat)
		res.Ops = append(res.Ops, s)
		res.Requests += s.Count
		res.Errors += errs
	}
	res.PerSec = perSec(res.Requests, elapsed)
	res.Print(w)
	return res, nil
}

// Print writes the report.
func (r LoadResult) Print(w io.Writer) {
	fmt.Fprintf(w, "total: %d requests in %.2fs, %.1f req/s, %d errors\n", r.Requests, r.Duration.Seconds(), r.PerSec, r.Errors)
	fmt.Fprintf(w, "%-12s %8s %7s %9s %10s %10s %10s %10s\n", "op", "count", "errors", "req/s", "p50", "p95", "p99", "max")
	for _, s := range r.Ops {
		fmt.Fprintf(w, "%-12s %8d %7d %9.1f %10s %10s %10s %10s\n", s.Kind, s.Count, s.Errors, s.PerSec, fmtDur(s.P50), fmtDur(s.P95), fmtDur(s.P99), fmtDur(s.Max))
	}
	causes := make([]string, 0, len(r.ErrorsBy))
	for k := range r.ErrorsBy {
		causes = append(causes, k)
	}
	sort.Strings(causes)
	for _, k := range causes {
		fmt.Fprintf(w, "  error %s: %d\n", k, r.ErrorsBy[k])
	}
}
