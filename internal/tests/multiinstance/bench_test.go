package multiinstance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
)

// BenchmarkInstances measures, in one run, ingest throughput and read
// latency through real `parley serve` processes: one on SQLite, one on
// PostgreSQL, three on one PostgreSQL schema (clients spread round-robin
// over the instances). Each iteration posts benchObjects objects in
// envelopes of 100 from benchClients concurrent clients, then makes
// benchReads single-object reads (match[id]) from as many clients.
//
//	PARLEY_TEST_POSTGRES=... go test -run '^$' -bench Instances -benchtime 1x ./internal/tests/multiinstance/
func BenchmarkInstances(b *testing.B) {
	for _, cfg := range []struct {
		name      string
		instances int
		postgres  bool
	}{{"sqlite-1", 1, false}, {"postgres-1", 1, true}, {"postgres-3", 3, true}} {
		b.Run(cfg.name, func(b *testing.B) {
			var args []string
			if cfg.postgres {
				db := pgSchemaURL(b)
				mustRun(b, "migrate", "--db", db)
				args = []string{"--db", db}
			} else {
				args = []string{"--data", filepath.Join(b.TempDir(), "data")}
			}
			out := mustRun(b, append([]string{"party", "add", "bench"}, args...)...)
			token := lastLine(out)
			coll := lastLine(mustRun(b, append([]string{"collection", "add", "--title", "bench", "--read", "bench", "--write", "bench"}, args...)...))
			var bases []string
			for range cfg.instances {
				bases = append(bases, serveProc(b, args...))
			}
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}}
			var ingest, reads float64
			var lat []time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				ids := benchIngest(b, hc, bases, token, coll, i*benchObjects)
				ingest += float64(benchObjects) / time.Since(start).Seconds()
				l := benchRead(b, hc, bases, token, coll, ids)
				lat = append(lat, l...)
				reads++
			}
			slices.Sort(lat)
			b.ReportMetric(ingest/reads, "objects/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "read-p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "read-p99-ms")
		})
	}
}

const (
	benchObjects = 20000
	benchClients = 6
	benchReads   = 3000
	envelope     = 100
)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func benchRequest(b *testing.B, hc *http.Client, method, url, token string, body []byte) {
	req, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	if body != nil {
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		b.Errorf("%s %s: %s", method, url, resp.Status)
	}
}

func objectsURL(base, coll string) string {
	return base + "/taxii2/" + exchange.OperatorRoot + "/collections/" + coll + "/objects/"
}

// benchIngest posts objects from benchClients clients, client k's requests
// going round-robin over the instances, and returns the ids posted.
func benchIngest(b *testing.B, hc *http.Client, bases []string, token, coll string, from int) []string {
	var bodies [][]byte
	var ids []string
	for at := from; at < from+benchObjects; at += envelope {
		objs := indicators(at, envelope)
		body, _ := json.Marshal(map[string]any{"objects": objs})
		bodies = append(bodies, body)
		for i := range envelope {
			ids = append(ids, fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", at+i))
		}
	}
	var wg sync.WaitGroup
	for k := range benchClients {
		wg.Go(func() {
			for i := k; i < len(bodies); i += benchClients {
				benchRequest(b, hc, http.MethodPost, objectsURL(bases[i%len(bases)], coll), token, bodies[i])
			}
		})
	}
	wg.Wait()
	return ids
}

// benchRead reads single objects by id and returns each request's latency.
func benchRead(b *testing.B, hc *http.Client, bases []string, token, coll string, ids []string) []time.Duration {
	lat := make([]time.Duration, benchReads)
	var wg sync.WaitGroup
	for k := range benchClients {
		wg.Go(func() {
			for i := k; i < benchReads; i += benchClients {
				id := ids[(i*7919)%len(ids)]
				start := time.Now()
				benchRequest(b, hc, http.MethodGet, objectsURL(bases[i%len(bases)], coll)+"?match[id]="+id, token, nil)
				lat[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	return lat
}
