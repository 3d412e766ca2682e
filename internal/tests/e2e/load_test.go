package e2e

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/bench"
)

var loadDuration = flag.Duration("load.duration", 30*time.Second, "how long TestLoad drives the server (the full run is 5m)")

// TestLoad drives a real server on loopback with 64 concurrent clients
// mixing writes and reads, and requires that not one request fails. The
// latency figures are printed for docs/BENCHMARKS.md, never asserted: the
// full-length run is
//
//	go test ./internal/tests/e2e -run TestLoad -load.duration 5m -v -timeout 20m
func TestLoad(t *testing.T) {
	d := *loadDuration
	if testing.Short() {
		d = 5 * time.Second
	}
	s := Start(t)
	p := s.NewParty(t, "loader")
	c, err := s.Srv.Ex.CreateCollection(ctx, "load", "", []string{p.ID}, []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res, err := bench.Load{BaseURL: s.URL + "/taxii2/", Root: "shared", Collection: c.ID, Token: p.Token,
		Clients: 64, Duration: d, WriteFraction: 0.2, Seed: 1}.Run(ctx, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if os.Getenv("CI") != "" || testing.Verbose() {
		os.Stdout.WriteString(out.String())
	}
	if res.Requests == 0 {
		t.Fatal("no request completed")
	}
	if res.Errors != 0 {
		t.Fatalf("%d of %d requests failed: %v", res.Errors, res.Requests, res.ErrorsBy)
	}
}
