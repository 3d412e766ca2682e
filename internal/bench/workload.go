package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// TAXIIWorkload is the fixed benchmark: post Objects fresh indicators in
// envelopes, read the whole collection back page by page, then time
// SingleGets GETs of random posted objects.
type TAXIIWorkload struct {
	BaseURL    string // server base URL, e.g. http://127.0.0.1:8080/
	Root       string // API root name or URL; "" means discovery's default
	Collection string // collection id; "" means the first readable and writable one
	Token      string // Bearer token, unless User is set
	User       string // if set, HTTP Basic with User and Password
	Password   string

	Objects       int    // indicators to post (default 10,000)
	EnvelopeSize  int    // objects per envelope (default 1,000)
	ReadPageLimit int    // limit per read-back page (default 1,000; servers may cap it)
	SingleGets    int    // single-object GETs (default 200)
	Seed          uint64 // data seed; 0 means one from the clock, so reruns post new ids

	// PhaseTimeout caps each phase; a capped phase reports what it did so far.
	PhaseTimeout time.Duration
	// Phases are run in this order (default ingest, gets, read).
	Phases []string
	// AllowRemote permits a non-loopback BaseURL (refused by default).
	AllowRemote bool
	// HTTPClient, if set, replaces the default client.
	HTTPClient *http.Client
}

// Result is what Run measured.
type Result struct {
	Server     string
	Root       string
	Collection string

	Objects        int // acknowledged by the server
	Envelopes      int
	IngestDuration time.Duration
	IngestPerSec   float64
	IngestCapped   bool
	IngestWindows  []float64 // objects/s of each tenth of the ingest, in order

	ReadObjects  int // every object read back, ours and any already there
	ReadOurs     int // of which this run posted
	ReadPages    int
	ReadDuration time.Duration
	ReadPerSec   float64
	ReadCapped   bool

	Gets                           int
	GetErrors                      int
	GetP50, GetP95, GetP99, GetMax time.Duration
	GetsCapped                     bool
}

// countingTransport counts requests, so that read-back pages are counted
// without reaching into the client's paging.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}

func (wl TAXIIWorkload) withDefaults() TAXIIWorkload {
	if wl.Objects <= 0 {
		wl.Objects = 10000
	}
	if wl.EnvelopeSize <= 0 {
		wl.EnvelopeSize = 1000
	}
	if wl.ReadPageLimit <= 0 {
		wl.ReadPageLimit = 1000
	}
	if wl.SingleGets < 0 {
		wl.SingleGets = 0
	}
	if wl.Seed == 0 {
		wl.Seed = uint64(time.Now().UnixNano())
	}
	if len(wl.Phases) == 0 {
		wl.Phases = []string{PhaseIngest, PhaseGets, PhaseRead}
	}
	return wl
}

func newClient(baseURL, token, user, password string, hc *http.Client, allowRemote bool) (*client.Client, *countingTransport, error) {
	if !allowRemote {
		if err := client.RequireLoopback(baseURL); err != nil {
			return nil, nil, err
		}
	}
	var base http.RoundTripper = keepAliveTransport()
	timeout := 30 * time.Minute // one page of a slow server may take minutes
	if hc != nil {
		if hc.Transport != nil {
			base = hc.Transport
		}
		timeout = hc.Timeout
	}
	ct := &countingTransport{next: base}
	opts := []client.Option{client.WithHTTPClient(&http.Client{Transport: ct, Timeout: timeout}), client.WithUserAgent("parley-bench/1")}
	if user != "" {
		opts = append(opts, client.WithBasicAuth(user, password))
	} else if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	c, err := client.New(baseURL, opts...)
	return c, ct, err
}

// keepAliveTransport is the bench clients' transport: each concurrent
// client keeps its connection between requests, as a pooled TAXII client
// does. Go's default transport keeps two idle connections a host, so under
// 64 clients nearly every request dialed a new connection and the server
// paid for accepting it; the figures measured that, not TAXII.
func keepAliveTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 1024
	return t
}

// resolveTarget fills in the API root and collection when they were left empty.
func resolveTarget(ctx context.Context, c *client.Client, root, coll string) (string, string, error) {
	if root == "" {
		d, err := c.Discovery(ctx)
		if err != nil {
			return "", "", fmt.Errorf("bench: discovery: %w", err)
		}
		if root = d.Default; root == "" && len(d.APIRoots) > 0 {
			root = d.APIRoots[0]
		}
		if root == "" {
			return "", "", errors.New("bench: discovery lists no API root; give one")
		}
	}
	if coll == "" {
		cols, err := c.Collections(ctx, root)
		if err != nil {
			return "", "", fmt.Errorf("bench: collections: %w", err)
		}
		for _, col := range cols {
			if col.CanRead && col.CanWrite {
				coll = col.ID
				break
			}
		}
		if coll == "" {
			return "", "", fmt.Errorf("bench: API root %s has no readable and writable collection", root)
		}
	}
	return root, coll, nil
}

func phaseContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// capped reports whether err is only the phase deadline running out.
func capped(phaseCtx, ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && errors.Is(phaseCtx.Err(), context.DeadlineExceeded)
}

// Phase names for TAXIIWorkload.Phases.
const (
	PhaseIngest = "ingest"
	PhaseGets   = "gets"
	PhaseRead   = "read"
)

// parsePhases reads a comma-separated list of phases.
func parsePhases(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		switch p {
		case PhaseIngest, PhaseGets, PhaseRead:
		default:
			return nil, fmt.Errorf("bench: unknown phase %q; phases are ingest, gets and read", p)
		}
		if seen[p] {
			return nil, fmt.Errorf("bench: phase %q given twice", p)
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// Run executes the workload's phases in order (by default ingest, then the
// single GETs, then the long read, so that a server still busy with an
// abandoned read cannot slow the GETs), printing progress and the report
// to w. Without an ingest phase, the GETs ask for the Objects indicators an
// earlier run posted with the same Seed.
func (wl TAXIIWorkload) Run(ctx context.Context, w io.Writer) (Result, error) {
	wl = wl.withDefaults()
	c, counter, err := newClient(wl.BaseURL, wl.Token, wl.User, wl.Password, wl.HTTPClient, wl.AllowRemote)
	if err != nil {
		return Result{}, err
	}
	root, coll, err := resolveTarget(ctx, c, wl.Root, wl.Collection)
	if err != nil {
		return Result{}, err
	}
	res := Result{Server: c.BaseURL(), Root: root, Collection: coll}
	fmt.Fprintf(w, "taxii workload: %s root=%s collection=%s objects=%d envelope=%d page-limit=%d gets=%d seed=%d phases=%s\n",
		res.Server, root, coll, wl.Objects, wl.EnvelopeSize, wl.ReadPageLimit, wl.SingleGets, wl.Seed, strings.Join(wl.Phases, ","))
	gen := newIndicatorGen(wl.Seed)
	if !slices.Contains(wl.Phases, PhaseIngest) {
		res.Objects = wl.Objects // posted by an earlier run with this seed
	}
	for _, phase := range wl.Phases {
		var err error
		switch phase {
		case PhaseIngest:
			err = wl.ingest(ctx, c, root, coll, gen, &res, w)
		case PhaseGets:
			err = wl.gets(ctx, c, root, coll, gen, &res)
		case PhaseRead:
			err = wl.read(ctx, c, counter, root, coll, gen, &res, w)
		}
		if err != nil {
			return res, err
		}
	}
	res.Print(w)
	return res, nil
}

// ingest posts a generated bundle through PushBundleWith, which cuts
// envelopes to max_content_length and waits on pending statuses. It records
// the rate of each tenth of the objects, to show whether ingest stays flat
// as the collection grows.
func (wl TAXIIWorkload) ingest(ctx context.Context, c *client.Client, root, coll string, gen *indicatorGen, res *Result, w io.Writer) error {
	pctx, cancel := phaseContext(ctx, wl.PhaseTimeout)
	defer cancel()
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 256<<10)
		_, err := io.WriteString(bw, `{"type":"bundle","id":"bundle--6f1e2c8a-0d1b-4c4e-9a53-3b1f0c2d4e5f","objects":[`)
		for i := 0; i < wl.Objects && err == nil; i++ {
			if i > 0 {
				err = bw.WriteByte(',')
			}
			if err == nil {
				_, err = bw.Write(gen.object(i))
			}
		}
		if err == nil {
			_, err = io.WriteString(bw, "]}")
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	start := time.Now()
	step := max(wl.Objects/10, 1)
	windowStart, windowFirst, window := start, 0, 0
	sent, err := c.PushBundleWith(pctx, root, coll, pr, client.PushOptions{
		EnvelopeSize: wl.EnvelopeSize, Total: wl.Objects,
		Progress: func(sent, total int) {
			res.Envelopes++
			// A window closes at each tenth of the objects (or the first
			// envelope past it) and at the end.
			if sent/step > window || sent == total {
				window = sent / step
				now := time.Now()
				rate := perSec(sent-windowFirst, now.Sub(windowStart))
				res.IngestWindows = append(res.IngestWindows, rate)
				windowStart, windowFirst = now, sent
				fmt.Fprintf(w, "  ingest %d/%d (%.1fs) window %.0f objects/s\n", sent, total, now.Sub(start).Seconds(), rate)
			}
		},
	})
	res.IngestDuration = time.Since(start)
	_ = pr.CloseWithError(errors.New("bench: ingest ended")) // unblocks the generator
	res.Objects = sent
	res.IngestCapped = capped(pctx, ctx, err)
	if err != nil && !res.IngestCapped {
		return fmt.Errorf("bench: ingest after %d objects: %w", sent, err)
	}
	res.IngestPerSec = perSec(res.Objects, res.IngestDuration)
	return nil
}

// read reads the whole collection back, following next (or added_after).
func (wl TAXIIWorkload) read(ctx context.Context, c *client.Client, counter *countingTransport, root, coll string, gen *indicatorGen, res *Result, w io.Writer) error {
	ours := make(map[string]bool, res.Objects)
	for i := range res.Objects {
		ours[gen.id(i)] = false
	}
	pctx, cancel := phaseContext(ctx, wl.PhaseTimeout)
	defer cancel()
	step := max(wl.Objects/10, 1)
	before := counter.n.Load()
	start := time.Now()
	for obj, err := range c.AllObjects(pctx, root, coll, client.Filter{Limit: wl.ReadPageLimit}) {
		if err != nil {
			res.ReadCapped = capped(pctx, ctx, err)
			if !res.ReadCapped {
				return fmt.Errorf("bench: read-back after %d objects: %w", res.ReadObjects, err)
			}
			break
		}
		res.ReadObjects++
		if id := idOf(obj); id != "" {
			if seen, ok := ours[id]; ok && !seen {
				ours[id] = true
				res.ReadOurs++
			}
		}
		if res.ReadObjects%step == 0 {
			fmt.Fprintf(w, "  read %d (%.1fs)\n", res.ReadObjects, time.Since(start).Seconds())
		}
	}
	res.ReadDuration = time.Since(start)
	res.ReadPages = int(counter.n.Load() - before)
	res.ReadPerSec = perSec(res.ReadObjects, res.ReadDuration)
	return nil
}

// gets times single GETs of random posted objects.
func (wl TAXIIWorkload) gets(ctx context.Context, c *client.Client, root, coll string, gen *indicatorGen, res *Result) error {
	if res.Objects == 0 || wl.SingleGets == 0 {
		return nil
	}
	pctx, cancel := phaseContext(ctx, wl.PhaseTimeout)
	defer cancel()
	r := rand.New(rand.NewPCG(wl.Seed, 0x5eed))
	lat := make([]time.Duration, 0, wl.SingleGets)
	for range wl.SingleGets {
		id := gen.id(r.IntN(res.Objects))
		t0 := time.Now()
		env, err := c.GetObject(pctx, root, coll, id, client.Filter{})
		d := time.Since(t0)
		if pctx.Err() != nil {
			res.GetsCapped = capped(pctx, ctx, pctx.Err())
			break
		}
		if err != nil || len(env.Objects) == 0 || idOf(env.Objects[0]) != id {
			res.GetErrors++
			continue
		}
		lat = append(lat, d)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res.Gets = len(lat) + res.GetErrors
	res.GetP50, res.GetP95, res.GetP99, res.GetMax = percentiles(lat)
	return nil
}

// Print writes the report.
func (r Result) Print(w io.Writer) {
	cap := func(b bool) string {
		if b {
			return " (CAPPED by phase timeout)"
		}
		return ""
	}
	if r.IngestDuration > 0 {
		fmt.Fprintf(w, "ingest:    %d objects in %d envelopes, %.2fs, %.0f objects/s%s\n",
			r.Objects, r.Envelopes, r.IngestDuration.Seconds(), r.IngestPerSec, cap(r.IngestCapped))
		if n := len(r.IngestWindows); n > 1 {
			ws := make([]string, n)
			for i, x := range r.IngestWindows {
				ws[i] = fmt.Sprintf("%.0f", x)
			}
			fmt.Fprintf(w, "ingest windows: %s objects/s; last/first %.0f%%\n", strings.Join(ws, " "), 100*r.IngestWindows[n-1]/r.IngestWindows[0])
		}
	}
	if r.Gets > 0 {
		fmt.Fprintf(w, "get by id: %d requests, %d errors, p50 %s p95 %s p99 %s max %s%s\n",
			r.Gets, r.GetErrors, fmtDur(r.GetP50), fmtDur(r.GetP95), fmtDur(r.GetP99), fmtDur(r.GetMax), cap(r.GetsCapped))
	}
	if r.ReadDuration > 0 {
		fmt.Fprintf(w, "read-back: %d objects (%d of this run's %d) in %d pages, %.2fs, %.0f objects/s%s\n",
			r.ReadObjects, r.ReadOurs, r.Objects, r.ReadPages, r.ReadDuration.Seconds(), r.ReadPerSec, cap(r.ReadCapped))
	}
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// percentiles returns nearest-rank p50, p95, p99 and the maximum; it sorts lat.
func percentiles(lat []time.Duration) (p50, p95, p99, maximum time.Duration) {
	if len(lat) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(lat)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(lat))+0.999999999) - 1 // ceil(p*n) - 1
		return lat[min(max(i, 0), len(lat)-1)]
	}
	return rank(0.50), rank(0.95), rank(0.99), lat[len(lat)-1]
}
