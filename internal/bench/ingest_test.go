package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/client/taxiitest"
)

func TestIngestFill(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{Token: "tok"})
	var out bytes.Buffer
	res, err := Ingest{BaseURL: srv.URL, Token: "tok", Objects: 250, EnvelopeSize: 40, Window: 100, Seed: 7}.Run(context.Background(), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if stored := srv.Count(taxiitest.Collection); stored != 250 {
		t.Fatalf("stored %d, want 250", stored)
	}
	if len(res.Windows) != 3 || res.Windows[0].From != 0 || res.Windows[0].To != 100 || res.Windows[2].From != 200 || res.Windows[2].To != 250 {
		t.Fatalf("windows %+v", res.Windows)
	}
	// 100 objects in envelopes of 40: 40, 40, 20.
	if res.Windows[0].Envelopes != 3 || res.A.To != 250 || res.A.Envelopes != 8 || res.A.PerSec <= 0 || res.Ratio <= 0 {
		t.Errorf("result %+v", res)
	}
	for _, want := range []string{"0–100", "200–250", "last window / first"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// With --in-flight 2 the fill keeps two POSTs going (the server holds each
// until another arrives, so one at a time would show 1), never more, and
// still sends every object once.
func TestIngestInFlight(t *testing.T) {
	for _, inFlight := range []int{1, 2} {
		srv := taxiitest.NewServer(t, taxiitest.Config{PairPosts: inFlight > 1})
		var out bytes.Buffer
		res, err := Ingest{BaseURL: srv.URL, Objects: 200, EnvelopeSize: 25, Window: 100, InFlight: inFlight, Seed: 9}.Run(context.Background(), &out)
		if err != nil {
			t.Fatalf("in-flight %d: %v\n%s", inFlight, err, out.String())
		}
		if got := srv.MaxPostsInFlight(); got != int64(inFlight) {
			t.Errorf("in-flight %d: the server held %d POSTs at once", inFlight, got)
		}
		if stored := srv.Count(taxiitest.Collection); stored != 200 || res.A.To != 200 || res.A.Envelopes != 8 {
			t.Errorf("in-flight %d: stored %d, result %+v", inFlight, stored, res.A)
		}
		if want := fmt.Sprintf("in-flight=%d", inFlight); !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestIngestABAB(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{})
	var out bytes.Buffer
	in := Ingest{BaseURL: srv.URL, Objects: 120, EnvelopeSize: 25, Block: 50, Seed: 8,
		Versus: &Target{Root: taxiitest.Root, Collection: taxiitest.Collection}}
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		in.ServerPID = os.Getpid() // the test server runs in this process
	}
	res, err := in.Run(context.Background(), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// Both sides post into the one fixture collection, with different data.
	if stored := srv.Count(taxiitest.Collection); stored != 240 {
		t.Fatalf("stored %d, want 120 per side", stored)
	}
	// Blocks of 50 in envelopes of 25, the last block 20: 2+2+1 envelopes a side.
	if res.A.To != 120 || res.B.To != 120 || res.A.Envelopes != 5 || res.B.Envelopes != 5 || res.Ratio <= 0 {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(out.String(), "B costs") {
		t.Errorf("report:\n%s", out.String())
	}
}

func TestIngestCommand(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{Token: "tok"})
	var out, errOut bytes.Buffer
	res, err := IngestCommand(context.Background(), []string{"--url", srv.URL, "--token", "tok", "--objects", "30", "--envelope", "10", "--window", "10", "--seed", "2"}, &out, &errOut)
	if err != nil || len(res.Windows) != 3 {
		t.Fatalf("IngestCommand: %+v, %v\n%s%s", res, err, out.String(), errOut.String())
	}
	for _, args := range [][]string{{}, {"--url", srv.URL, "extra"}, {"--url", srv.URL, "--versus-root", "r"}, {"--url", srv.URL, "--server-pid", "-1"}} {
		if _, err := IngestCommand(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("IngestCommand(%q) accepted", args)
		}
	}
}

func TestProcessCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := range 50_000_000 {
		x ^= i * i
	}
	after, err := processCPU(os.Getpid())
	if err != nil || after < before || x == 1 {
		t.Fatalf("CPU %v then %v, %v", before, after, err)
	}
	if _, err := processCPU(-1); err == nil {
		t.Error("pid -1 has CPU time")
	}
}
