package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// Readers runs Readers concurrent full reads of one collection, each paging
// through every object with limit/next, as many TAXII clients pulling a
// whole feed at once do. It measures the reads; the server's memory under
// them is read from outside (scripts/bench.sh samples the server process's
// VmHWM), since only a process on the server's machine can see it.
type Readers struct {
	BaseURL, Root, Collection string
	Token, User, Password     string

	Readers     int // concurrent full readers (default 8)
	PageLimit   int // limit per page (default 1,000)
	AllowRemote bool
	HTTPClient  *http.Client
}

// ReadersResult is what a Readers run measured.
type ReadersResult struct {
	Readers   int
	PageLimit int
	Objects   []int // per reader
	Duration  time.Duration
	PerSec    float64 // all readers' objects per second together
	Errors    int
}

// Run executes the reads and prints the report to w.
func (rd Readers) Run(ctx context.Context, w io.Writer) (ReadersResult, error) {
	if rd.Readers <= 0 {
		rd.Readers = 8
	}
	if rd.PageLimit <= 0 {
		rd.PageLimit = 1000
	}
	c, _, err := newClient(rd.BaseURL, rd.Token, rd.User, rd.Password, rd.HTTPClient, rd.AllowRemote)
	if err != nil {
		return ReadersResult{}, err
	}
	root, coll, err := resolveTarget(ctx, c, rd.Root, rd.Collection)
	if err != nil {
		return ReadersResult{}, err
	}
	fmt.Fprintf(w, "taxii readers: %s root=%s collection=%s readers=%d page-limit=%d\n", c.BaseURL(), root, coll, rd.Readers, rd.PageLimit)
	res := ReadersResult{Readers: rd.Readers, PageLimit: rd.PageLimit, Objects: make([]int, rd.Readers)}
	errs := make([]error, rd.Readers)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range rd.Readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, err := range c.AllObjects(ctx, root, coll, client.Filter{Limit: rd.PageLimit}) {
				if err != nil {
					errs[i] = err
					return
				}
				res.Objects[i]++
			}
		}()
	}
	wg.Wait()
	res.Duration = time.Since(start)
	total := 0
	for i, n := range res.Objects {
		total += n
		if errs[i] != nil {
			res.Errors++
			fmt.Fprintf(w, "  reader %d stopped after %d objects: %v\n", i, n, errs[i])
		}
	}
	res.PerSec = perSec(total, res.Duration)
	res.Print(w)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// Print writes the report.
func (r ReadersResult) Print(w io.Writer) {
	lo, hi := 0, 0
	for i, n := range r.Objects {
		if i == 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	fmt.Fprintf(w, "readers:   %d concurrent full reads (limit=%d), %d–%d objects each, %.2fs, %.0f objects/s together, %d failed\n",
		r.Readers, r.PageLimit, lo, hi, r.Duration.Seconds(), r.PerSec, r.Errors)
}
