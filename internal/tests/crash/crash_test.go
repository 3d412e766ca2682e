package crash

import (
	"context"
	"flag"
	"net/url"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store/postgres/pgtest"
)

var (
	kills    = flag.Int("crash.kills", 100, "SIGKILLs of the server per TestCrashHarness run (the issue asks for at least 100; -short runs 10)")
	budget   = flag.Duration("crash.budget", 8*time.Minute, "stop TestCrashHarness after this long; fewer kills than -crash.kills then fail the test")
	seed     = flag.Uint64("crash.seed", 0, "seed of the random workload and kill moments (0: from the clock; printed for reproduction)")
	verifyEv = flag.Int("crash.verify-every", 25, "run parley verify after every N restarts (and always at the end)")
	binary   = flag.String("crash.bin", "", "a parley binary to run instead of building ./cmd/parley")
)

// TestCrashHarness kills `parley serve` with SIGKILL at random moments
// under a mixed workload and checks every invariant after each restart.
// The server is built without -race whatever this test is built with, so
// that -race slows only the harness.
//
//	go test ./internal/tests/crash -run TestCrashHarness -v -crash.kills 300 -timeout 30m
func TestCrashHarness(t *testing.T) {
	n := *kills
	if testing.Short() {
		n = 10
	}
	bin := parleyBinary(t)
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -crash.seed %d), %d kills", s, s, n)
	cfg := Config{Binary: bin, Dir: t.TempDir(), Kills: n, Seed: s, VerifyEvery: *verifyEv, Logf: t.Logf}
	if d, ok := t.Deadline(); ok {
		cfg.Deadline = d.Add(-time.Minute)
	}
	if b := time.Now().Add(*budget); cfg.Deadline.IsZero() || b.Before(cfg.Deadline) {
		cfg.Deadline = b
	}
	sum, err := Run(context.Background(), cfg)
	t.Logf("summary: %s", sum)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Kills < n {
		t.Fatalf("only %d of %d kills within the time budget", sum.Kills, n)
	}
}

// TestCrashHarnessPostgres runs the harness against PostgreSQL with the
// smallest pool that serves (2 connections): the server is killed, the
// database keeps running, and every invariant is checked after each
// restart as on SQLite. It is bounded (a few kills, a few minutes), and
// skips only when PARLEY_TEST_POSTGRES is unset.
func TestCrashHarnessPostgres(t *testing.T) {
	u, err := url.Parse(pgtest.Schema(t, "parley_crash_"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "2")
	u.RawQuery = q.Encode()

	n := 8
	if testing.Short() {
		n = 4
	}
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -crash.seed %d), %d kills, pool of 2", s, s, n)
	cfg := Config{Binary: parleyBinary(t), Dir: t.TempDir(), DB: u.String(), Kills: n, Seed: s, VerifyEvery: 0, Logf: t.Logf,
		Deadline: time.Now().Add(4 * time.Minute)}
	sum, err := Run(context.Background(), cfg)
	t.Logf("summary: %s", sum)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Kills < n {
		t.Fatalf("only %d of %d kills within the time budget", sum.Kills, n)
	}
}
