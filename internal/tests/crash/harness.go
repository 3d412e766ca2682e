// Package crash is parley's crash harness: it runs `parley serve` as a
// subprocess on a loopback port, drives a random mixed workload against it
// from several goroutines, kills it with SIGKILL at random moments, restarts
// it and, after every restart, checks the invariants of docs/DESIGN.md:
//
//   - every acknowledged object version is still there, byte for byte in
//     meaning, and nothing appears that was never sent;
//   - every acknowledged status resource and agreement signature survives,
//     and its ledger receipt (X-Parley-Ledger-Index) names the right entry,
//     proven by an inclusion proof;
//   - every feed.batch entry in the ledger has its status resource;
//   - the latest checkpoint is never smaller than, and is consistent with,
//     every checkpoint handed out before (consistency proofs, and a local
//     recomputation of every root from the entries);
//   - allowances are exact: released = min(grace + get/give × credits,
//     what the counterpart contributed), and the counterpart reads exactly
//     that prefix of the contributor's collection;
//   - `parley verify` passes for both parties.
//
// # What it owns and must never do
//
// It owns the workload model (what was acknowledged, what may or may not
// have landed) and the checks. It talks to the server only over HTTP on
// 127.0.0.1 and through the `parley` binary's operator commands; it never
// opens the data directory itself, never sends traffic anywhere but the
// loopback interface and never kills a process it did not start.
package crash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrInvariant wraps every violation the harness finds; other errors mean
// the harness could not run (build failure, server never ready).
var ErrInvariant = errors.New("crash: invariant violated")

// Config is one run of the harness.
type Config struct {
	// Root is the repository root; the harness builds Root/cmd/parley
	// unless Binary names a parley binary to run.
	Root   string
	Binary string
	// Dir holds the binary, the data directory, the server log and the
	// verifier state (usually a test's TempDir).
	Dir string
	// DB, when set, is a PostgreSQL URL the server and the operator
	// commands use instead of a SQLite database in Dir (the server is
	// killed; PostgreSQL keeps running). Its pool_max_conns parameter sets
	// the pool under test.
	DB string
	// Kills is how many times the server is killed while serving.
	Kills int
	// Deadline, when set, stops the loop early; Summary.Kills tells how
	// far it got.
	Deadline time.Time
	// Seed makes the workload's random choices reproducible.
	Seed uint64
	// MinDelay and MaxDelay bound the random time between the workload's
	// start and SIGKILL (default 20 ms and 800 ms).
	MinDelay, MaxDelay time.Duration
	// StartupKillRate is the share of restarts also killed while starting,
	// before they answer /readyz (default 0.1; negative disables).
	StartupKillRate float64
	// VerifyEvery runs `parley verify` for both parties after every
	// VerifyEvery-th restart (0: only at the end).
	VerifyEvery int
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)

	// tamper, in this package's tests, edits what the harness believes
	// before each post-restart check, to prove the checks catch it.
	tamper func(h *harness)
}

// Summary is what a run did.
type Summary struct {
	Kills        int // SIGKILLs while serving
	StartupKills int // SIGKILLs before /readyz answered
	Restarts     int
	Posts        int // acknowledged TAXII POSTs (202 with a status)
	Versions     int // acknowledged object versions (distinct)
	Signatures   int // acknowledged agreement signatures
	Handovers    int // handover cases proposed and acknowledged
	Released     int // of which released
	Steps        int // acknowledged handover steps (propose, accept, deposit)
	Unacked      int // writes in flight at a kill (may or may not have landed)
	Reads        int // successful reads during the workload
	Checks       int // invariant checks passed
	Checkpoints  int // distinct checkpoints handed out and kept
	LedgerSize   int64
	Verifies     int // `parley verify` runs passed
	Duration     time.Duration
	// Where the time went: the workload until each kill, restarts until
	// /readyz, the checks after each restart, the final check of
	// everything, and `parley verify`.
	Workload, Startup, Checking, Final, Verifying time.Duration
}

func (s Summary) String() string {
	return fmt.Sprintf("%d kills while serving (+%d during start-up), %d restarts; %d POSTs acknowledged holding %d object versions, %d signatures acknowledged, %d handovers (%d released, %d steps acknowledged), %d writes in flight at a kill; %d reads; %d checks passed, %d checkpoints kept, ledger size %d, %d parley verify runs; %s (workload %s, restarts %s, checks %s, final check %s, verify %s)",
		s.Kills, s.StartupKills, s.Restarts, s.Posts, s.Versions, s.Signatures, s.Handovers, s.Released, s.Steps, s.Unacked, s.Reads, s.Checks, s.Checkpoints, s.LedgerSize, s.Verifies,
		s.Duration.Round(time.Millisecond), s.Workload.Round(time.Millisecond), s.Startup.Round(time.Millisecond), s.Checking.Round(time.Millisecond), s.Final.Round(time.Millisecond), s.Verifying.Round(time.Millisecond))
}

// Build compiles cmd/parley under root into dir (without -race: the server
// must stay fast however the harness itself is built) and returns its path.
func Build(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "parley")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/parley")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/parley: %w\n%s", err, out)
	}
	return bin, nil
}

// RepoRoot finds the directory holding go.mod at or above dir.
func RepoRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above " + dir)
		}
		dir = parent
	}
}

// server is one `parley serve` process.
type server struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	exited chan struct{}
	err    error // Wait's result, once exited is closed
	killed atomic.Bool
}

// kill sends SIGKILL (marking the kill first, so that workers seeing
// errors know why) and waits for the process to go.
func (s *server) kill() {
	s.killed.Store(true)
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// stop asks the server to shut down gracefully.
func (s *server) stop() error {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		s.kill()
		return errors.New("parley serve ignored SIGINT for 30 s")
	}
}

// freeAddr returns a loopback address nothing listens on right now; serve
// may lose the race for it, which start detects and retries.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// start runs `parley serve` and, unless killEarly > 0, waits until it
// answers /readyz. With killEarly > 0 it kills the process that long after
// starting it, whatever stage it reached, and returns the dead server.
func (h *harness) start(ctx context.Context, killEarly time.Duration) (*server, error) {
	for attempt := 0; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h.log, "=== harness: parley serve --listen %s (restart %d)\n", addr, h.sum.Restarts)
		cmd := exec.Command(h.bin, append([]string{"serve", "--listen", addr}, h.where(true)...)...)
		cmd.Stdout, cmd.Stderr = h.log, h.log
		cmd.Env = append(os.Environ(), "PARLEY_LOG_FORMAT=text")
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		s := &server{cmd: cmd, base: "http://" + addr, exited: make(chan struct{})}
		go func() { s.err = cmd.Wait(); close(s.exited) }()
		if killEarly > 0 {
			select {
			case <-time.After(killEarly):
				s.kill()
			case <-s.exited:
			}
			return s, nil
		}
		err = h.waitReady(ctx, s)
		if err == nil {
			return s, nil
		}
		s.kill()
		if attempt < 3 && errors.Is(err, errExited) && h.logTailContains("address already in use") {
			continue
		}
		return nil, fmt.Errorf("%w\n%s", err, h.logTail())
	}
}

var errExited = errors.New("parley serve exited")

// waitReady polls /readyz until it answers 200.
func (h *harness) waitReady(ctx context.Context, s *server) error {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/readyz", nil)
		resp, err := hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%w before answering /readyz: %v", errExited, s.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("parley serve did not answer /readyz on %s within 60 s", s.base)
		}
	}
}

// operator runs an operator command of the binary on the data directory.
func (h *harness) operator(ctx context.Context, args ...string) ([]string, error) {
	cmd := exec.CommandContext(ctx, h.bin, append(args, h.where(false)...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("parley %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), nil
}

// where names the database for a command: the SQLite data directory, or
// the PostgreSQL URL (serve migrates it: one instance, as --migrate is for).
func (h *harness) where(serve bool) []string {
	switch {
	case h.cfg.DB == "":
		return []string{"--data", h.data}
	case serve:
		return []string{"--db", h.cfg.DB, "--migrate"}
	}
	return []string{"--db", h.cfg.DB}
}

// logTail returns the end of the server log, for error reports.
func (h *harness) logTail() string {
	b, err := os.ReadFile(h.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "--- end of " + h.logPath + " ---\n" + string(b)
}

func (h *harness) logTailContains(s string) bool { return strings.Contains(h.logTail(), s) }

// logf writes a progress line.
func (h *harness) logf(format string, args ...any) {
	if h.cfg.Logf != nil {
		h.cfg.Logf(format, args...)
	}
}

// delay picks the random kill delay.
func (h *harness) delay() time.Duration {
	lo, hi := h.cfg.MinDelay, h.cfg.MaxDelay
	return lo + time.Duration(h.rng.Int64N(int64(hi-lo)+1))
}
