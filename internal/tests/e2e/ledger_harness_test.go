package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// startOn runs a server on the data directory dir until stop is called
// (or the test ends); stop waits for it to close its database, so the
// directory can be copied or tampered with afterwards.
func startOn(t testing.TB, dir string) (*Server, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Data: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CheckpointInterval: 100 * time.Millisecond}
	srv, err := server.New(ctx, cfg, db)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			db.Close()
		})
	}
	t.Cleanup(stop)
	return &Server{URL: "http://" + ln.Addr().(*net.TCPAddr).String(), Srv: srv, Data: dir}, stop
}

var (
	ledgerBinOnce sync.Once
	ledgerBinPath string
	ledgerBinErr  error
)

// parleyBin builds cmd/parley once per test binary (PARLEY_TEST_BIN names
// a prebuilt one instead), so tests run the real command.
func parleyBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PARLEY_TEST_BIN"); p != "" {
		return p
	}
	ledgerBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-bin-")
		if err != nil {
			ledgerBinErr = err
			return
		}
		ledgerBinPath = filepath.Join(dir, "parley")
		out, err := exec.Command("go", "build", "-o", ledgerBinPath, "github.com/parley-cti/parley/cmd/parley").CombinedOutput()
		if err != nil {
			ledgerBinErr = errors.New("go build ./cmd/parley: " + err.Error() + "\n" + string(out))
		}
	})
	if ledgerBinErr != nil {
		t.Fatal(ledgerBinErr)
	}
	return ledgerBinPath
}

// freeAddr returns a loopback address no one listens on right now, for a
// server subprocess to take.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// operatorCmd runs operator commands (parley … --data data) and returns
// the last line each prints: a new party's token, a collection's id.
func operatorCmd(t testing.TB, bin, data string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--data", data)...).CombinedOutput()
		if err != nil {
			t.Fatalf("parley %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return strings.TrimSpace(lines[len(lines)-1])
	}
}

// cli runs the parley command with its own configuration directory, as a
// party's machine would.
type cli struct {
	bin    string
	config string // PARLEY_CONFIG: the profiles file; ledger state sits beside it
}

func newCLI(t testing.TB) *cli {
	return &cli{bin: parleyBin(t), config: filepath.Join(t.TempDir(), "cfg", "profiles.json")}
}

// run returns combined output and the exit code.
func (c *cli) run(t testing.TB, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), "PARLEY_CONFIG="+c.config)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("parley %v: %v", args, err)
	return "", -1
}

func (c *cli) mustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, code := c.run(t, args...)
	if code != 0 {
		t.Fatalf("parley %s exited %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// clone copies the configuration directory (profiles and ledger state).
func (c *cli) clone(t testing.TB) *cli {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "cfg")
	copyDir(t, filepath.Dir(c.config), dst)
	return &cli{bin: c.bin, config: filepath.Join(dst, filepath.Base(c.config))}
}

func (c *cli) state(profile string) audit.State {
	return audit.State{Dir: filepath.Join(filepath.Dir(c.config), "ledger", profile)}
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitCheckpoint waits until the server's checkpoint covers at least size
// entries and returns it.
func waitCheckpoint(t testing.TB, s *Server, token string, size int64) ledger.Checkpoint {
	t.Helper()
	r := audit.NewRemote(s.URL, token, nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		signed, err := r.Checkpoint(context.Background())
		if err == nil {
			text, _, _ := bytes.Cut(signed, []byte("\n\n"))
			if c, err := ledger.ParseCheckpoint(append(text, '\n')); err == nil && c.Size >= size {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of size ≥ %d within 20s (last error %v)", size, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ledgerSize reads the log's size through the store.
func ledgerSize(t testing.TB, s *Server) int64 {
	t.Helper()
	l, err := sqliteLedger(s)
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sqliteLedger(s *Server) (ledger.Reader, error) {
	x, ok := s.Srv.Store.(interface{ Ledger() ledger.Store })
	if !ok {
		return nil, errors.New("store has no ledger")
	}
	return x.Ledger(), nil
}

// verifyJSON runs parley verify --json and decodes the report.
func (c *cli) verifyJSON(t testing.TB, args ...string) (audit.Report, string, int) {
	t.Helper()
	out, code := c.run(t, append([]string{"verify", "--json"}, args...)...)
	var rep audit.Report
	if i := strings.Index(out, "{"); i >= 0 {
		dec := json.NewDecoder(strings.NewReader(out[i:]))
		if err := dec.Decode(&rep); err != nil {
			t.Fatalf("verify --json output does not decode: %v\n%s", err, out)
		}
	}
	return rep, out, code
}

// publish has p add n indicators starting at from to its collection.
func publish(t testing.TB, p *Party, agreementID, coll string, from, n int) *client.Status {
	t.Helper()
	st, err := p.C.AddObjects(context.Background(), agreementID, coll, Indicators(from, n))
	if err != nil {
		t.Fatalf("%s publishes: %v", p.Name, err)
	}
	return st
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
