package multiinstance

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/tests/e2e"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// parleyBin builds ./cmd/parley once per test binary run.
func parleyBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		buildDir, buildErr = os.MkdirTemp("", "parley-multi-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "parley")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/parley")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build ./cmd/parley: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// run runs the parley binary and returns its combined output and exit code.
func run(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, parleyBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
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

func mustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, code := run(t, nil, args...)
	if code != 0 {
		t.Fatalf("parley %v: exit %d\n%s", args, code, out)
	}
	return out
}

// freeAddr picks a free loopback port; the short window before serve binds
// it is acceptable in a test.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveProc starts `parley serve` with args and waits until it is ready;
// it is interrupted when the test ends.
func serveProc(t testing.TB, args ...string) string {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(parleyBin(t), append([]string{"serve", "--listen", addr}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("parley serve %v on %s logged:\n%s", args, addr, out.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("parley serve %v exited:\n%s", args, out.String())
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("parley serve %v not ready within 30s:\n%s", args, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// addParty creates a party with the operator command on db and registers
// fresh keys through the instance at base.
func addParty(t testing.TB, db, base, name string) *e2e.Party {
	t.Helper()
	out := mustRun(t, "party", "add", name, "--db", db)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token := lines[len(lines)-1]
	p := &e2e.Party{Name: name, Token: token}
	p.C = clientFor(t, base, p)
	me, err := p.C.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.ID = me.PartyID
	if p.Keys, err = agreement.GenerateKeys(); err != nil {
		t.Fatal(err)
	}
	if err := p.C.RegisterKeys(ctx, p.Keys.Public()); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustGet fetches url with a party's token and returns the body.
func mustGet(t testing.TB, url, token string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b.String())
	}
	return b.String()
}
