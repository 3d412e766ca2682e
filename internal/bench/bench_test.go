package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/client/taxiitest"
)

var stixID = regexp.MustCompile(`^indicator--[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestIndicatorsDistinctAndWellFormed(t *testing.T) {
	for _, seed := range []uint64{1, 42, 1 << 63} {
		g := newIndicatorGen(seed)
		ids, patterns := map[string]bool{}, map[string]bool{}
		kinds := map[string]int{}
		for i := range 1500 {
			var in indicator
			raw := g.object(i)
			if err := json.Unmarshal(raw, &in); err != nil {
				t.Fatal(err)
			}
			if !stixID.MatchString(in.ID) || in.ID != g.id(i) {
				t.Fatalf("id %q (gen id %q)", in.ID, g.id(i))
			}
			if ids[in.ID] || patterns[in.Pattern] {
				t.Fatalf("object %d repeats id %s or pattern %s", i, in.ID, in.Pattern)
			}
			ids[in.ID], patterns[in.Pattern] = true, true
			if in.Type != "indicator" || in.SpecVersion != "2.1" || in.PatternType != "stix" || in.Name == "" ||
				in.Created != in.Modified || in.ValidFrom == "" || len(in.ObjectMarkingRefs) != 1 || in.ObjectMarkingRefs[0] != TLPGreen {
				t.Fatalf("object %d: %s", i, raw)
			}
			if _, err := time.Parse(time.RFC3339, in.Created); err != nil {
				t.Fatalf("created %q: %v", in.Created, err)
			}
			kinds[strings.SplitN(strings.TrimPrefix(in.Pattern, "["), ":", 2)[0]]++
			if !bytes.Equal(raw, g.object(i)) {
				t.Fatalf("object %d not reproducible", i)
			}
		}
		if kinds["ipv4-addr"] != 500 || kinds["domain-name"] != 500 || kinds["file"] != 500 {
			t.Errorf("pattern kinds = %v", kinds)
		}
	}
	if newIndicatorGen(1).id(7) == newIndicatorGen(2).id(7) {
		t.Error("different seeds give the same id")
	}
}

func TestPercentiles(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // reversed: percentiles must sort
	}
	tests := []struct {
		name               string
		in                 []time.Duration
		p50, p95, p99, max time.Duration
	}{
		{"empty", nil, 0, 0, 0, 0},
		{"one", ms(7), 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond},
		{"1..100", ms(hundred...), 50 * time.Millisecond, 95 * time.Millisecond, 99 * time.Millisecond, 100 * time.Millisecond},
		{"four", ms(4, 1, 3, 2), 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		p50, p95, p99, mx := percentiles(tt.in)
		if p50 != tt.p50 || p95 != tt.p95 || p99 != tt.p99 || mx != tt.max {
			t.Errorf("%s: got %v %v %v %v", tt.name, p50, p95, p99, mx)
		}
	}
}

func TestWorkload(t *testing.T) {
	tests := []struct {
		name      string
		cfg       taxiitest.Config
		wl        TAXIIWorkload
		wantPages int
	}{
		{"bearer, next paging", taxiitest.Config{Token: "tok"}, TAXIIWorkload{Token: "tok"}, 7},
		{"basic, added_after paging", taxiitest.Config{Token: "tok", NoNext: true}, TAXIIWorkload{User: "u", Password: "tok"}, 7},
		{"async statuses, explicit target", taxiitest.Config{Async: true}, TAXIIWorkload{Root: taxiitest.Root, Collection: taxiitest.Collection}, 7},
		{"server caps page size", taxiitest.Config{MaxPageSize: 25}, TAXIIWorkload{}, 10},
		{"small max_content_length", taxiitest.Config{MaxContentLength: 8 << 10}, TAXIIWorkload{}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := taxiitest.NewServer(t, tt.cfg)
			wl := tt.wl
			wl.BaseURL, wl.Objects, wl.EnvelopeSize, wl.ReadPageLimit, wl.SingleGets, wl.Seed = srv.URL, 250, 100, 40, 30, 9
			var out bytes.Buffer
			res, err := wl.Run(context.Background(), &out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if res.Objects != 250 || srv.Count(taxiitest.Collection) != 250 {
				t.Errorf("ingested %d, stored %d", res.Objects, srv.Count(taxiitest.Collection))
			}
			if res.ReadObjects != 250 || res.ReadOurs != 250 || res.ReadPages != tt.wantPages {
				t.Errorf("read %d (ours %d) in %d pages, want 250 in %d", res.ReadObjects, res.ReadOurs, res.ReadPages, tt.wantPages)
			}
			if res.Gets != 30 || res.GetErrors != 0 || res.GetP50 <= 0 || res.GetP50 > res.GetP95 || res.GetP95 > res.GetP99 || res.GetP99 > res.GetMax {
				t.Errorf("gets = %+v", res)
			}
			if res.Envelopes < 3 || res.IngestPerSec <= 0 || res.ReadPerSec <= 0 || res.IngestCapped || res.ReadCapped {
				t.Errorf("result = %+v", res)
			}
			for _, want := range []string{"ingest:", "read-back:", "get by id:", "objects/s"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestWorkloadPhaseCap(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{})
	// A phase timeout too short for anything reports a capped ingest, not an error.
	wl := TAXIIWorkload{BaseURL: srv.URL, Objects: 200000, EnvelopeSize: 1000, SingleGets: 5, PhaseTimeout: 50 * time.Millisecond, Seed: 3}
	res, err := wl.Run(context.Background(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IngestCapped || res.Objects >= 200000 {
		t.Errorf("result = %+v, want a capped ingest", res)
	}
}

func TestRemoteRefused(t *testing.T) {
	for _, u := range []string{"http://example.com/", "http://192.0.2.1:8080/"} {
		if _, err := (TAXIIWorkload{BaseURL: u}).Run(context.Background(), &bytes.Buffer{}); !errors.Is(err, client.ErrNotLoopback) {
			t.Errorf("workload %s: %v, want ErrNotLoopback", u, err)
		}
		if _, err := (Load{BaseURL: u}).Run(context.Background(), &bytes.Buffer{}); !errors.Is(err, client.ErrNotLoopback) {
			t.Errorf("load %s: %v, want ErrNotLoopback", u, err)
		}
	}
}

func TestLoad(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{Token: "tok"})
	var out bytes.Buffer
	res, err := Load{BaseURL: srv.URL, Token: "tok", Clients: 3, Duration: time.Minute, MaxRequests: 90, WriteFraction: 0.4, Seed: 5}.Run(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 90 || res.Errors != 0 {
		t.Fatalf("requests %d errors %d\n%s", res.Requests, res.Errors, out.String())
	}
	sum, kinds := 0, map[string]OpStats{}
	for _, s := range res.Ops {
		sum += s.Count
		kinds[s.Kind] = s
		if s.P50 <= 0 || s.P50 > s.P95 || s.P95 > s.P99 || s.P99 > s.Max {
			t.Errorf("%s percentiles %+v", s.Kind, s)
		}
	}
	if sum != 90 || kinds[OpAdd].Count == 0 || kinds[OpGetObjects].Count == 0 {
		t.Errorf("ops = %+v", res.Ops)
	}
	if stored := srv.Count(taxiitest.Collection); stored != kinds[OpAdd].Count*10 {
		t.Errorf("stored %d objects, want %d writes of 10", stored, kinds[OpAdd].Count)
	}
	if !strings.Contains(out.String(), OpAdd) {
		t.Errorf("report:\n%s", out.String())
	}
}

// TestLoadKeepsConnections: each client keeps one connection for the run.
// With Go's default transport (two idle connections a host) most requests
// of many clients dialed anew.
func TestLoadKeepsConnections(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{Token: "tok"})
	const clients = 12
	res, err := Load{BaseURL: srv.URL, Token: "tok", Root: taxiitest.Root, Collection: taxiitest.Collection,
		Clients: clients, Duration: time.Minute, MaxRequests: 600, WriteFraction: 0.2, Seed: 3}.Run(context.Background(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 600 || res.Errors != 0 {
		t.Fatalf("requests %d errors %d", res.Requests, res.Errors)
	}
	// A request that finds no idle connection dials one, and may be handed
	// another that came free first; the dialed one then waits idle, so a
	// few more than one a client can be seen. Without keep-alive for every
	// client this run used about 200.
	if n := srv.Conns(); n > 2*clients {
		t.Fatalf("%d clients answered on %d connections over %d requests; want at most %d", clients, n, res.Requests, 2*clients)
	}
}

func TestLoadCountsErrors(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{Token: "right"})
	res, err := Load{BaseURL: srv.URL, Token: "wrong", Root: taxiitest.Root, Collection: taxiitest.Collection,
		Clients: 2, Duration: time.Minute, MaxRequests: 20, WriteFraction: 0.5, Seed: 1}.Run(context.Background(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 20 || res.Errors != 20 {
		t.Fatalf("requests %d errors %d", res.Requests, res.Errors)
	}
	n := 0
	for k, v := range res.ErrorsBy {
		if !strings.HasSuffix(k, "HTTP 401") {
			t.Errorf("cause %q", k)
		}
		n += v
	}
	if n != 20 {
		t.Errorf("ErrorsBy = %v", res.ErrorsBy)
	}
}

func TestCommands(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{Token: "tok"})
	var out, errOut bytes.Buffer
	res, err := TAXIICommand(context.Background(), []string{"--url", srv.URL, "--token", "tok", "--objects", "30", "--envelope", "7", "--gets", "3", "--seed", "2"}, &out, &errOut)
	if err != nil || res.Objects != 30 || res.ReadOurs != 30 || res.Envelopes != 5 {
		t.Fatalf("TAXIICommand: %+v, %v\n%s%s", res, err, out.String(), errOut.String())
	}
	lres, err := LoadCommand(context.Background(), []string{"--url", srv.URL, "--user", "x", "--token", "tok", "--max-requests", "10", "--clients", "2"}, &out, &errOut)
	if err != nil || lres.Requests != 10 || lres.Errors != 0 {
		t.Fatalf("LoadCommand: %+v, %v", lres, err)
	}
	for _, args := range [][]string{{}, {"--url", srv.URL, "extra"}, {"--bogus"}} {
		if _, err := TAXIICommand(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("TAXIICommand(%q) accepted", args)
		}
		if _, err := LoadCommand(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("LoadCommand(%q) accepted", args)
		}
	}
}

// TestPeerWorkload is the driver for measuring another TAXII server (the
// OASIS reference server) before cmd/parley wires TAXIICommand: it runs only
// when PARLEY_BENCH_TAXII_ARGS holds the command's flags, e.g.
//
//	PARLEY_BENCH_TAXII_ARGS="--url http://127.0.0.1:5055/ --root trustgroup1 --user admin --password Password0" \
//	  go test ./internal/bench -run TestPeerWorkload -v -timeout 2h
func TestPeerWorkload(t *testing.T) {
	args := os.Getenv("PARLEY_BENCH_TAXII_ARGS")
	if args == "" {
		t.Skip("PARLEY_BENCH_TAXII_ARGS not set: no peer server to measure")
	}
	// Progress goes straight to stdout: a peer run can take many minutes.
	res, err := TAXIICommand(context.Background(), strings.Fields(args), os.Stdout, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !res.IngestCapped && !res.ReadCapped && res.ReadOurs != res.Objects {
		t.Errorf("read back %d of the %d objects posted", res.ReadOurs, res.Objects)
	}
}

func BenchmarkIndicatorObject(b *testing.B) {
	g := newIndicatorGen(1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = g.object(i)
		i++
	}
}

// TestPhases runs the GETs and the read against a collection an earlier
// run filled with the same seed, and refuses unknown or repeated phases.
func TestPhases(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{})
	fill := TAXIIWorkload{BaseURL: srv.URL, Objects: 120, EnvelopeSize: 10, Seed: 4, Phases: []string{PhaseIngest}}
	var out bytes.Buffer
	res, err := fill.Run(context.Background(), &out)
	if err != nil || res.Objects != 120 || res.ReadDuration != 0 || res.Gets != 0 {
		t.Fatalf("ingest only: %+v, %v", res, err)
	}
	if len(res.IngestWindows) < 9 || strings.Contains(out.String(), "read-back:") || !strings.Contains(out.String(), "ingest windows:") {
		t.Errorf("ingest-only report (windows %v):\n%s", res.IngestWindows, out.String())
	}
	later := TAXIIWorkload{BaseURL: srv.URL, Objects: 120, SingleGets: 15, ReadPageLimit: 50, Seed: 4, Phases: []string{PhaseGets, PhaseRead}}
	res, err = later.Run(context.Background(), &bytes.Buffer{})
	if err != nil || res.Gets != 15 || res.GetErrors != 0 || res.ReadOurs != 120 || res.Envelopes != 0 {
		t.Fatalf("gets and read of an earlier fill: %+v, %v", res, err)
	}
	// Another seed asks for ids that were never posted: every GET fails.
	res, err = TAXIIWorkload{BaseURL: srv.URL, Objects: 120, SingleGets: 5, Seed: 5, Phases: []string{PhaseGets}}.Run(context.Background(), &bytes.Buffer{})
	if err != nil || res.GetErrors != 5 {
		t.Errorf("gets of ids never posted: %+v, %v", res, err)
	}
	for _, bad := range []string{"ingest,read,ingest", "scan", ""} {
		if _, err := TAXIICommand(context.Background(), []string{"--url", srv.URL, "--phases", bad}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("--phases %q accepted", bad)
		}
	}
}

func TestReaders(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{Token: "tok", MaxPageSize: 30})
	if _, err := (TAXIIWorkload{BaseURL: srv.URL, Token: "tok", Objects: 200, EnvelopeSize: 50, Seed: 8, Phases: []string{PhaseIngest}}).Run(context.Background(), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := ReadersCommand(context.Background(), []string{"--url", srv.URL, "--token", "tok", "--readers", "5", "--page-limit", "100"}, &out, &bytes.Buffer{})
	if err != nil || res.Errors != 0 || len(res.Objects) != 5 || res.PerSec <= 0 {
		t.Fatalf("readers: %+v, %v\n%s", res, err, out.String())
	}
	for i, n := range res.Objects {
		if n != 200 {
			t.Errorf("reader %d read %d objects, want all 200", i, n)
		}
	}
	res, err = Readers{BaseURL: srv.URL, Token: "wrong", Root: taxiitest.Root, Collection: taxiitest.Collection, Readers: 2}.Run(context.Background(), &bytes.Buffer{})
	if err != nil || res.Errors != 2 {
		t.Errorf("readers with a bad token: %+v, %v", res, err)
	}
	if _, err := (Readers{BaseURL: "http://192.0.2.1:8080/"}).Run(context.Background(), &bytes.Buffer{}); !errors.Is(err, client.ErrNotLoopback) {
		t.Errorf("remote readers: %v", err)
	}
}
