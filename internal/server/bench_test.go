package server_test

// Benchmarks of the TAXII surface over real HTTP on loopback, backed by
// SQLite: ingest through POST, reading a whole collection with limit/next,
// and single-object GET latency. BenchmarkX build the server in this
// process; TestScale (-scale) fills a collection to a million objects and
// prints every figure the performance issue asks for, against a `parley
// serve` subprocess by default so that the server's RSS is its own.
//
//	go test ./internal/server -run '^$' -bench . -benchtime 20x
//	go test ./internal/server -run TestScale -scale -v -timeout 60m

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/server"
)

var (
	scaleRun     = flag.Bool("scale", false, "run TestScale: fill one collection to -scale-objects through HTTP and report the issue's figures")
	scaleObjects = flag.Int("scale-objects", 1_000_000, "objects TestScale stores")
	scaleServer  = flag.String("scale-server", "subprocess", "TestScale's server: subprocess (go build ./cmd/parley, then parley serve) or inprocess")
	scaleBin     = flag.String("scale-bin", "", "with -scale-server subprocess: a parley binary to run instead of building ./cmd/parley")
)

const (
	envelopeSize = 1000 // objects per POST, as the issue specifies
	pageSize     = 1000 // limit= of read-back pages (TAXII's default page)
	mediaTAXII   = "application/taxii+json;version=2.1"
)

// target is a running parley with one party allowed to read and write one
// collection.
type target struct {
	base  string // http://127.0.0.1:port
	token string
	coll  string
	hc    *http.Client
	how   string // where the server runs, for reports
	// rss reports the server process's resident and peak resident memory.
	rss  func() (rss, hwm int64, err error)
	stop func()
}

func (t *target) objectsURL() string {
	return t.base + "/taxii2/shared/collections/" + t.coll + "/objects/"
}

func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil, // loopback only; never route through a proxy
		MaxIdleConnsPerHost: 16,
		DisableCompression:  true,
	}}
}

// startInProcess opens a fresh store in a temporary directory and serves it
// on a loopback port from this process.
func startInProcess(tb testing.TB) *target {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := server.Config{Data: tb.TempDir(), Listen: "127.0.0.1:0", Migrate: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(ctx, cfg, st)
	if err != nil {
		tb.Fatal(err)
	}
	p, secret, err := srv.Parties.Create(ctx, "bench")
	if err != nil {
		tb.Fatal(err)
	}
	c, err := srv.Ex.CreateCollection(ctx, "bench", "", []string{p.ID}, []string{p.ID})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t := &target{base: srv.URL(ln), token: secret, coll: c.ID, hc: newHTTPClient(), how: "in-process (VmRSS of the test process, client included)",
		rss: func() (int64, int64, error) { return procStatus("/proc/self/status") }}
	t.stop = func() {
		cancel()
		<-done
		st.Close()
	}
	tb.Cleanup(t.stop)
	return t
}

// startSubprocess builds cmd/parley and runs `parley serve` on a fresh data
// directory, so that memory figures are the server's alone.
func startSubprocess(tb testing.TB) *target {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	bin := *scaleBin
	if bin == "" {
		bin = filepath.Join(dir, "parley")
		build := exec.Command("go", "build", "-o", bin, "./cmd/parley")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			tb.Fatalf("go build ./cmd/parley: %v\n%s", err, out)
		}
	}
	data := filepath.Join(dir, "data")
	run := func(args ...string) []string {
		out, err := exec.Command(bin, append(args, "--data", data)...).Output()
		if err != nil {
			tb.Fatalf("parley %s: %v", strings.Join(args, " "), err)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	lines := run("party", "add", "bench")
	token := lines[len(lines)-1]
	lines = run("collection", "add", "--title", "bench", "--read", "bench", "--write", "bench")
	coll := lines[len(lines)-1]

	// Pick a free loopback port; the tiny window before serve binds it is
	// acceptable for a benchmark.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", addr)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	t := &target{base: "http://" + addr, token: token, coll: coll, hc: newHTTPClient(),
		how: "subprocess `parley serve` (VmRSS/VmHWM of the server process)",
		rss: func() (int64, int64, error) { return procStatus(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)) }}
	t.stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	tb.Cleanup(t.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := t.hc.Get(t.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return t
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("parley serve did not answer on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// procStatus reads VmRSS and VmHWM (bytes) from a /proc status file.
func procStatus(path string) (rss, hwm int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %s: %w", path, k, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("%s: no VmRSS/VmHWM", path)
	}
	return rss, hwm, nil
}

// splitmix64 spreads (seed, i) over 64 bits; ids and values derive from it
// so that runs are reproducible and no two objects share an id.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// indicatorID is a version-4 UUID whose last 48 bits are i, hence unique.
func indicatorID(seed uint64, i int) string {
	const hexdig = "0123456789abcdef"
	hi := splitmix64(seed ^ uint64(i)<<20)
	var u [16]byte
	for k := range 8 {
		u[k] = byte(hi >> (8 * k))
	}
	u[6] = 0x40 | u[6]&0x0f // version 4
	u[8] = 0x80 | byte(seed)&0x3f
	u[9] = byte(seed >> 8)
	for k := range 6 {
		u[10+k] = byte(uint64(i) >> (8 * (5 - k)))
	}
	b := make([]byte, 0, len("indicator--")+36)
	b = append(b, "indicator--"...)
	for k, c := range u {
		if k == 4 || k == 6 || k == 8 || k == 10 {
			b = append(b, '-')
		}
		b = append(b, hexdig[c>>4], hexdig[c&0xf])
	}
	return string(b)
}

var indicatorBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// appendIndicator appends a small, valid STIX 2.1 indicator (about 330
// bytes) for index i. It is built by hand because the client's cost must
// not drown the server's in the in-process benchmarks.
func appendIndicator(b []byte, seed uint64, i int) []byte {
	ts := indicatorBase.Add(time.Duration(i)*time.Millisecond).AppendFormat(nil, "2006-01-02T15:04:05.000Z")
	b = append(b, `{"type":"indicator","spec_version":"2.1","id":"`...)
	b = append(b, indicatorID(seed, i)...)
	b = append(b, `","created":"`...)
	b = append(b, ts...)
	b = append(b, `","modified":"`...)
	b = append(b, ts...)
	b = append(b, `","name":"bench indicator `...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","indicator_types":["malicious-activity"],"pattern":"[ipv4-addr:value = '10.`...)
	b = strconv.AppendInt(b, int64(i>>16&0xff), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(i>>8&0xff), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(i&0xff), 10)
	b = append(b, `']","pattern_type":"stix","valid_from":"`...)
	b = append(b, ts...)
	b = append(b, `"}`...)
	return b
}

// envelope returns a TAXII envelope of indicators first..first+n-1.
func envelope(seed uint64, first, n int) []byte {
	b := make([]byte, 0, n*360+16)
	b = append(b, `{"objects":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendIndicator(b, seed, first+i)
	}
	return append(b, "]}"...)
}

func (t *target) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set("Accept", mediaTAXII)
	return t.hc.Do(req)
}

// post sends one envelope and checks every object was accepted.
func (t *target) post(body []byte, n int) error {
	req, err := http.NewRequest(http.MethodPost, t.objectsURL(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mediaTAXII)
	resp, err := t.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("POST: %s: %s", resp.Status, msg)
	}
	var st struct {
		SuccessCount int `json:"success_count"`
		FailureCount int `json:"failure_count"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("POST: status resource: %w", err)
	}
	if st.SuccessCount != n || st.FailureCount != 0 {
		return fmt.Errorf("POST: %d successes and %d failures, want %d and 0", st.SuccessCount, st.FailureCount, n)
	}
	io.Copy(io.Discard, resp.Body)
	return nil
}

// fill posts n objects starting at index first, in envelopes of
// envelopeSize, while a second goroutine builds the next envelope.
func (t *target) fill(seed uint64, first, n int) error {
	bodies := make(chan []byte, 1)
	go func() {
		defer close(bodies)
		for off := 0; off < n; off += envelopeSize {
			bodies <- envelope(seed, first+off, min(envelopeSize, n-off))
		}
	}()
	off := 0
	for body := range bodies {
		if err := t.post(body, min(envelopeSize, n-off)); err != nil {
			for range bodies {
			}
			return err
		}
		off += envelopeSize
	}
	return nil
}

// envelopeHead reads the "more" and "next" members that parley writes
// ahead of "objects", and counts the top-level objects in the array with a
// string-aware brace scan: a reading client needs object boundaries, not a
// full decode, and a full decode here would bill the client's JSON cost to
// the server. The first page of each read is checked with encoding/json too.
func envelopeHead(body []byte) (more bool, next string, n int, err error) {
	i := bytes.Index(body, []byte(`"objects":[`))
	if i < 0 {
		return false, "", 0, fmt.Errorf("no objects array in %.200q", body)
	}
	var head struct {
		More bool   `json:"more"`
		Next string `json:"next"`
	}
	if err := json.Unmarshal(append(slices.Clone(body[:i]), `"objects":[]}`...), &head); err != nil {
		return false, "", 0, fmt.Errorf("envelope head: %w", err)
	}
	depth, inStr, esc := 0, false, false
	for _, c := range body[i+len(`"objects":[`):] {
		switch {
		case inStr:
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			if depth == 0 && c == '{' {
				n++
			}
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return head.More, head.Next, n, nil
}

// readAll pages through the whole collection and returns how many objects
// it read.
func (t *target) readAll(limit int) (int, error) {
	next, total := "", 0
	buf := new(bytes.Buffer)
	for page := 0; ; page++ {
		u := t.objectsURL() + "?limit=" + strconv.Itoa(limit)
		if next != "" {
			u += "&next=" + next
		}
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return total, err
		}
		resp, err := t.do(req)
		if err != nil {
			return total, err
		}
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil {
			return total, err
		}
		if resp.StatusCode != http.StatusOK {
			return total, fmt.Errorf("GET page %d: %s: %.300s", page, resp.Status, buf.Bytes())
		}
		more, nx, n, err := envelopeHead(buf.Bytes())
		if err != nil {
			return total, err
		}
		if page == 0 {
			var env struct {
				Objects []json.RawMessage `json:"objects"`
			}
			if err := json.Unmarshal(buf.Bytes(), &env); err != nil || len(env.Objects) != n {
				return total, fmt.Errorf("first page: %d objects by scan, %d by decode (%v)", n, len(env.Objects), err)
			}
		}
		total += n
		if !more {
			return total, nil
		}
		if nx == "" || n == 0 {
			return total, fmt.Errorf("page %d: more without next", page)
		}
		next = nx
	}
}

// get fetches one object by id and checks it came back.
func (t *target) get(id string) error {
	req, err := http.NewRequest(http.MethodGet, t.objectsURL()+id+"/", nil)
	if err != nil {
		return err
	}
	resp, err := t.do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(id)) {
		return fmt.Errorf("GET %s: %s: %.300s", id, resp.Status, body)
	}
	return nil
}

// latencies times k GETs of random stored ids (of n stored) and returns
// them sorted.
func (t *target) latencies(seed uint64, n, k int) ([]time.Duration, error) {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]time.Duration, 0, k)
	for range k {
		id := indicatorID(seed, r.IntN(n))
		start := time.Now()
		if err := t.get(id); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out, nil
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// BenchmarkIngestHTTP posts envelopes of 1,000 indicators; each iteration is
// one envelope. objects/s is the figure to compare with the target.
// With clients=2 two connections post at once, so that one envelope's
// parsing and validation overlap another's database write.
func BenchmarkIngestHTTP(b *testing.B) {
	for _, clients := range []int{1, 2} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			t := startInProcess(b)
			seed := uint64(1)
			// Envelopes are built before timing; the body is the client's business.
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = envelope(seed, i*envelopeSize, envelopeSize)
			}
			b.SetBytes(int64(len(bodies[0])))
			next := make(chan []byte, b.N)
			for _, body := range bodies {
				next <- body
			}
			close(next)
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			cpu := startCPU(b)
			for range clients {
				wg.Go(func() {
					for body := range next {
						if err := t.post(body, envelopeSize); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N*envelopeSize)/b.Elapsed().Seconds(), "objects/s")
			cpu.report(b, b.N*envelopeSize, "object")
		})
	}
}

// cpuTime is the CPU time (user + system) this process has used. The
// machine is shared, so wall-clock rates vary with other load; CPU per
// object is the steadier figure. In-process, it counts the client too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type cpuTimer struct{ start time.Duration }

func startCPU(b *testing.B) *cpuTimer {
	b.ResetTimer()
	return &cpuTimer{start: cpuTime()}
}

func (c *cpuTimer) report(b *testing.B, units int, name string) {
	b.ReportMetric(float64((cpuTime()-c.start).Microseconds())/float64(units), "cpu-µs/"+name)
}

// benchStored is how many objects the read benchmarks store first; the
// million-object figures come from TestScale.
const benchStored = 100_000

var (
	sharedOnce   sync.Once
	sharedTarget *target
	sharedDir    string
	sharedErr    error
)

// TestMain stops the shared read-benchmark server and removes its data,
// which outlive any one benchmark and so cannot use b.TempDir.
func TestMain(m *testing.M) {
	code := m.Run()
	if sharedTarget != nil && sharedTarget.stop != nil {
		sharedTarget.stop()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// storedTarget is an in-process server holding benchStored objects, shared
// by the read benchmarks so the fill is paid once per test binary run.
func storedTarget(b *testing.B) *target {
	sharedOnce.Do(func() {
		// Not b.TempDir/b.Cleanup: the server outlives this benchmark.
		dir, err := os.MkdirTemp("", "parley-bench-")
		if err != nil {
			sharedErr = err
			return
		}
		sharedDir = dir
		sharedTarget, sharedErr = startShared(dir)
		if sharedErr == nil {
			sharedErr = sharedTarget.fill(2, 0, benchStored)
		}
	})
	if sharedErr != nil {
		b.Fatal(sharedErr)
	}
	return sharedTarget
}

func startShared(dir string) (*target, error) {
	ctx := context.Background()
	cfg := server.Config{Data: dir, Listen: "127.0.0.1:0", Migrate: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	srv, err := server.New(ctx, cfg, st)
	if err != nil {
		return nil, err
	}
	p, secret, err := srv.Parties.Create(ctx, "bench")
	if err != nil {
		return nil, err
	}
	c, err := srv.Ex.CreateCollection(ctx, "bench", "", []string{p.ID}, []string{p.ID})
	if err != nil {
		return nil, err
	}
	ln, err := srv.Listen()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return &target{base: srv.URL(ln), token: secret, coll: c.ID, hc: newHTTPClient(), how: "in-process",
		rss: func() (int64, int64, error) { return procStatus("/proc/self/status") },
		stop: func() {
			cancel()
			<-done
			st.Close()
		}}, nil
}

// BenchmarkReadAllHTTP reads the whole stored collection with limit/next;
// each iteration is one full read.
func BenchmarkReadAllHTTP(b *testing.B) {
	t := storedTarget(b)
	cpu := startCPU(b)
	for range b.N {
		n, err := t.readAll(pageSize)
		if err != nil {
			b.Fatal(err)
		}
		if n != benchStored {
			b.Fatalf("read %d objects, stored %d", n, benchStored)
		}
	}
	b.ReportMetric(float64(b.N*benchStored)/b.Elapsed().Seconds(), "objects/s")
	cpu.report(b, b.N*benchStored, "object")
}

// BenchmarkGetByID fetches random stored objects one at a time and reports
// latency percentiles beside the mean.
func BenchmarkGetByID(b *testing.B) {
	t := storedTarget(b)
	r := rand.New(rand.NewPCG(3, 4))
	lat := make([]time.Duration, 0, b.N)
	cpu := startCPU(b)
	for range b.N {
		id := indicatorID(2, r.IntN(benchStored))
		start := time.Now()
		if err := t.get(id); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	cpu.report(b, b.N, "request")
	slices.Sort(lat)
	b.ReportMetric(float64(pct(lat, 0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(pct(lat, 0.95).Microseconds()), "p95-µs")
	b.ReportMetric(float64(pct(lat, 0.99).Microseconds()), "p99-µs")
}

// TestScale fills one collection to -scale-objects through HTTP and prints
// the four figures. It asserts correctness only (every object
// accepted, read back and found), never timings.
func TestScale(t *testing.T) {
	if !*scaleRun {
		t.Skip("large run: enable with -scale (and -timeout 60m)")
	}
	var tg *target
	switch *scaleServer {
	case "subprocess":
		tg = startSubprocess(t)
	case "inprocess":
		tg = startInProcess(t)
	default:
		t.Fatalf("-scale-server %q: want subprocess or inprocess", *scaleServer)
	}
	total := *scaleObjects
	window := max(total/10, envelopeSize)
	seed := uint64(42)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	fmt.Fprintf(out, "TestScale: %d objects in envelopes of %d, server %s, GOMAXPROCS=%d, %s/%s, %s\n",
		total, envelopeSize, tg.how, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintln(out, "ingest window\tobjects/s\tserver RSS MB")
	start := time.Now()
	for off := 0; off < total; off += window {
		n := min(window, total-off)
		ws := time.Now()
		if err := tg.fill(seed, off, n); err != nil {
			t.Fatal(err)
		}
		rss, _, err := tg.rss()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(out, "%d–%d\t%.0f\t%.0f\n", off, off+n, float64(n)/time.Since(ws).Seconds(), float64(rss)/(1<<20))
		out.Flush()
	}
	fmt.Fprintf(out, "ingest overall: %.0f objects/s\n", float64(total)/time.Since(start).Seconds())

	rs := time.Now()
	n, err := tg.readAll(pageSize)
	if err != nil {
		t.Fatal(err)
	}
	if n != total {
		t.Fatalf("read back %d objects, stored %d", n, total)
	}
	fmt.Fprintf(out, "read all (limit=%d): %d objects in %v = %.0f objects/s\n", pageSize, n, time.Since(rs).Round(time.Millisecond), float64(n)/time.Since(rs).Seconds())

	lat, err := tg.latencies(seed, total, 5000)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(out, "GET by id at %d objects (%d requests): p50 %v p95 %v p99 %v\n", total, len(lat),
		pct(lat, 0.50).Round(time.Microsecond), pct(lat, 0.95).Round(time.Microsecond), pct(lat, 0.99).Round(time.Microsecond))

	rss, hwm, err := tg.rss()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(out, "server memory with %d objects: VmRSS %.0f MB, VmHWM (peak) %.0f MB — %s\n", total, float64(rss)/(1<<20), float64(hwm)/(1<<20), tg.how)
}
