package e2e

// Crash injection: the real `parley serve` runs as a subprocess and, with
// PARLEY_CRASH_AT=<point>, exits with status 137 (as kill -9 leaves it) at a
// named point of the deposit, release, withdrawal or expiry path (see
// internal/escrow/crash.go). After a restart without the variable the
// handover must be released to both sides or to neither, and every
// acknowledged deposit must still be there.

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/escrow"
)

// proc is a parley server subprocess on a fixed data directory and port.
type proc struct {
	t    *testing.T
	bin  string
	data string
	addr string
	cmd  *exec.Cmd
	done chan error
}

func newProc(t *testing.T) *proc {
	addr := freeAddr(t)
	p := &proc{t: t, bin: parleyBin(t), data: filepath.Join(t.TempDir(), "data"), addr: addr}
	t.Cleanup(func() {
		if p.cmd != nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// start runs the server (crashing at crashAt, when set) and waits until it answers.
func (p *proc) start(crashAt string) {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "serve", "--data", p.data, "--listen", p.addr)
	p.cmd.Env = append(os.Environ(), "PARLEY_CRASH_AT="+crashAt)
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(p.cmd, p.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-p.done:
			// Crashed while starting (the sweeper's first pass): let
			// crashed() see the exit.
			p.done <- err
			return
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the server as kill -9 would.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// crashed waits for the server to exit by itself with status 137.
func (p *proc) crashed(point string) {
	p.t.Helper()
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 137 {
			p.t.Fatalf("at %s the server exited with %v, want status 137", point, err)
		}
	case <-time.After(20 * time.Second):
		p.t.Fatalf("the server did not crash at %s", point)
	}
	p.cmd = nil
}

// party adds a party with the operator CLI (the server may be down) and
// returns it with a client that opens a fresh connection per request, so
// no connection to a dead server is reused.
func (p *proc) party(name string) *Party {
	p.t.Helper()
	out, err := exec.Command(p.bin, "party", "add", name, "--data", p.data).Output()
	if err != nil {
		p.t.Fatalf("party add %s: %v", name, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	i := strings.Index(lines[0], "party--")
	if i < 0 {
		p.t.Fatalf("party add printed %q", out)
	}
	token := lines[len(lines)-1]
	c, err := client.New("http://"+p.addr+"/taxii2/", client.WithToken(token),
		client.WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}, Timeout: time.Minute}))
	if err != nil {
		p.t.Fatal(err)
	}
	keys, err := agreement.GenerateKeys()
	if err != nil {
		p.t.Fatal(err)
	}
	return &Party{ID: strings.TrimSpace(lines[0][i:]), Name: name, Token: token, Keys: keys, C: c}
}

// checkBothOrNeither asserts the release invariant on case id and returns
// whether it was released.
func checkBothOrNeither(t *testing.T, a, b *Party, id string) bool {
	t.Helper()
	h, err := a.C.Handover(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	released := h.State == "released"
	for _, pair := range [][2]*Party{{a, b}, {b, a}} {
		got, err := pair[0].C.FetchDeposit(ctx, id, "")
		if released != (err == nil) {
			t.Fatalf("state %s, but %s fetching %s's deposit: %v", h.State, pair[0].Name, pair[1].Name, err)
		}
		if released && got.Depositor != pair[1].ID {
			t.Fatalf("%s got the deposit of %s", pair[0].Name, got.Depositor)
		}
		n := 0
		for _, e := range events(t, pair[0]) {
			if e.Subject == id && e.Kind == escrow.EventReleased {
				n++
			}
		}
		if (released && n != 1) || (!released && n != 0) {
			t.Fatalf("state %s, but %s has %d release events", h.State, pair[0].Name, n)
		}
	}
	if released && len(h.Deposits) != 2 {
		t.Fatalf("released with %d deposits", len(h.Deposits))
	}
	return released
}

func hasDeposit(t *testing.T, p *Party, id string) bool {
	t.Helper()
	_, err := p.C.FetchDeposit(ctx, id, p.ID)
	var ae *client.APIError
	if err != nil && !(errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestCrashInjection(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and restarts the server many times")
	}
	mine, theirs := Bundle(Indicator(1, "")), Bundle(Indicator(2, ""))
	setup := func(t *testing.T, within time.Duration) (*proc, *Party, *Party, string) {
		p := newProc(t)
		a, b := p.party("alpha"), p.party("bravo")
		p.start("")
		for _, x := range []*Party{a, b} {
			if err := x.C.RegisterKeys(ctx, x.Keys.Public()); err != nil {
				t.Fatal(err)
			}
		}
		d := Document(t, a, b, nil)
		Activate(t, a, b, d)
		var deadline time.Time
		if within > 0 {
			deadline = time.Now().Add(within)
		}
		h := OpenCase(t, a, b, d.ID, deadline)
		return p, a, b, h.ID
	}

	// Crashes during the first deposit: it was never acknowledged, so
	// nothing is held; depositing again works and releases normally.
	for _, point := range []string{escrow.CrashDepositBeforeTx, escrow.CrashDepositMidTx} {
		t.Run("first/"+point, func(t *testing.T) {
			p, a, b, id := setup(t, 0)
			p.kill()
			p.start(point)
			if _, err := a.C.Deposit(ctx, id, mine, client.DepositOptions{}); err == nil {
				t.Fatal("deposit acknowledged by a server that crashed")
			}
			p.crashed(point)
			p.start("")
			if checkBothOrNeither(t, a, b, id) || hasDeposit(t, a, id) {
				t.Fatal("an unacknowledged deposit was kept or released")
			}
			if _, err := a.C.Deposit(ctx, id, mine, client.DepositOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.C.Deposit(ctx, id, theirs, client.DepositOptions{}); err != nil {
				t.Fatal(err)
			}
			if !checkBothOrNeither(t, a, b, id) {
				t.Fatal("not released after recovery")
			}
		})
	}

	// Crashes during the second deposit, which releases both: before
	// commit nothing of it survives and the first, acknowledged deposit
	// is intact; after commit both are released.
	for _, point := range []string{escrow.CrashDepositBeforeTx, escrow.CrashDepositMidTx, escrow.CrashReleaseMidTx, escrow.CrashDepositBeforeCommit, escrow.CrashDepositAfterCommit} {
		t.Run("second/"+point, func(t *testing.T) {
			p, a, b, id := setup(t, 0)
			if _, err := a.C.Deposit(ctx, id, mine, client.DepositOptions{}); err != nil {
				t.Fatal(err)
			}
			p.kill() // kill -9 between the two deposits
			p.start(point)
			if _, err := b.C.Deposit(ctx, id, theirs, client.DepositOptions{}); err == nil {
				t.Fatal("deposit acknowledged by a server that crashed")
			}
			p.crashed(point)
			p.start("")
			released := checkBothOrNeither(t, a, b, id)
			if released != (point == escrow.CrashDepositAfterCommit) {
				t.Fatalf("released = %v after a crash at %s", released, point)
			}
			if !released {
				if !hasDeposit(t, a, id) {
					t.Fatal("the acknowledged first deposit was lost")
				}
				if _, err := b.C.Deposit(ctx, id, theirs, client.DepositOptions{}); err != nil {
					t.Fatal(err)
				}
				if !checkBothOrNeither(t, a, b, id) {
					t.Fatal("not released after recovery")
				}
			}
		})
	}

	t.Run("withdraw/"+escrow.CrashWithdrawMidTx, func(t *testing.T) {
		p, a, b, id := setup(t, 0)
		if _, err := a.C.Deposit(ctx, id, mine, client.DepositOptions{}); err != nil {
			t.Fatal(err)
		}
		p.kill()
		p.start(escrow.CrashWithdrawMidTx)
		if _, err := a.C.Withdraw(ctx, id); err == nil {
			t.Fatal("withdrawal acknowledged by a server that crashed")
		}
		p.crashed(escrow.CrashWithdrawMidTx)
		p.start("")
		if checkBothOrNeither(t, a, b, id) || !hasDeposit(t, a, id) {
			t.Fatal("an unacknowledged withdrawal took effect")
		}
		if _, err := b.C.Deposit(ctx, id, theirs, client.DepositOptions{}); err != nil {
			t.Fatal(err)
		}
		if !checkBothOrNeither(t, a, b, id) {
			t.Fatal("not released after recovery")
		}
	})

	// Crashes inside the sweeper's expiry: after restart the case is
	// expired exactly once, its deposit destroyed, never released.
	for _, point := range []string{escrow.CrashExpiryMidTx, escrow.CrashExpiryAfterCommit} {
		t.Run("expiry/"+point, func(t *testing.T) {
			p, a, b, id := setup(t, 2*time.Second)
			if _, err := a.C.Deposit(ctx, id, mine, client.DepositOptions{}); err != nil {
				t.Fatal(err)
			}
			p.kill()
			time.Sleep(2500 * time.Millisecond) // past the deadline while down
			p.start(point)                      // the sweeper's first pass crashes
			p.crashed(point)
			p.start("")
			deadline := time.Now().Add(15 * time.Second)
			for {
				h, err := a.C.Handover(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if h.State == "expired" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not expired after recovery: %+v", h)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if checkBothOrNeither(t, a, b, id) || hasDeposit(t, a, id) {
				t.Fatal("an expired case was released or kept its deposit")
			}
			n := 0
			for _, e := range events(t, a) {
				if e.Subject == id && e.Kind == escrow.EventExpired {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d expiry events, want 1", n)
			}
		})
	}
}
