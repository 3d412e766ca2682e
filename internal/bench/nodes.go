package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// Nodes measures feeds between two sovereign nodes (issue 14): two
// `parley serve` processes on 127.0.0.1, each with one party, pinned to
// each other, under one 1:1 agreement made through the CLI; this process
// is the two parties' client. It runs two phases on the same nodes:
//
//   - live: each party pushes Objects to its own node at once while the
//     nodes replicate; measured is the time from the last push's answer
//     until both nodes hold exactly what the allowance releases
//     (convergence);
//   - catch-up: the nodes unpin each other (`parley peer remove`), each
//     party pushes Objects more, the nodes pin each other again (`parley
//     peer add`) and the time until convergence gives the replication
//     rate: objects pulled and ingested by the other node per second,
//     both directions together and nothing else running.
//
// Convergence is read from each party's balance on its own node: what it
// holds of the other's contributions (available) equals
// min(other's pushes, grace + ratio × own pushes) and is all released to
// it. The nodes' peak RSS (VmHWM) is read from /proc at the end.
type Nodes struct {
	Bin          string        // the parley binary (default: this one)
	Dir          string        // work directory (default: a new temporary one, removed unless Keep)
	Keep         bool          // keep Dir and the nodes' logs
	Objects      int           // per side and phase (default 10,000)
	Grace        int           // the agreement's grace (default 1,000)
	EnvelopeSize int           // objects per push (default 1,000)
	Timeout      time.Duration // cap on each convergence (default 10 min)
	Seed         uint64
	Phases       []string // "live", "catchup" (default both)
	Log          io.Writer
}

// NodesResult is what a Nodes run measured.
type NodesResult struct {
	Objects, Grace int
	// Live: pushes of both sides at once with replication running.
	PushSeconds     float64 // from the first push until both sides' last answer
	PushPerSec      float64 // both sides' pushes together per second
	LiveConverge    float64 // seconds from the last push's answer to convergence
	LiveReplPerSec  float64 // objects replicated (both ways) per second of the whole live phase
	CatchupSeconds  float64 // from re-pinning until convergence
	CatchupObjects  int     // objects replicated in the catch-up (both ways)
	CatchupPerSec   float64
	RSSA, RSSB      int64 // peak RSS (VmHWM) of the two nodes, bytes
	LoadStart, Load float64
}

func (n Nodes) withDefaults() Nodes {
	if n.Objects <= 0 {
		n.Objects = 10000
	}
	if n.Grace <= 0 {
		n.Grace = 1000
	}
	if n.EnvelopeSize <= 0 {
		n.EnvelopeSize = 1000
	}
	if n.Timeout <= 0 {
		n.Timeout = 10 * time.Minute
	}
	if n.Seed == 0 {
		n.Seed = uint64(time.Now().UnixNano())
	}
	if len(n.Phases) == 0 {
		n.Phases = []string{"live", "catchup"}
	}
	if n.Log == nil {
		n.Log = io.Discard
	}
	return n
}

// benchNode is one `parley serve` process and its party.
type benchNode struct {
	name, peerName, party string
	data, addr, url, key  string
	cmd                   *exec.Cmd
	done                  chan error
	token, config         string
	c                     *client.Client
	side                  *side
}

// Run starts the nodes, runs the phases and prints the report to w.
func (n Nodes) Run(ctx context.Context, w io.Writer) (res NodesResult, err error) {
	n = n.withDefaults()
	res.Objects, res.Grace = n.Objects, n.Grace
	for _, phase := range n.Phases {
		if phase != "live" && phase != "catchup" {
			return res, fmt.Errorf("bench nodes: unknown phase %q (live, catchup)", phase)
		}
	}
	if n.Bin == "" {
		if n.Bin, err = parleyBinary(); err != nil {
			return res, err
		}
	}
	if n.Dir == "" {
		if n.Dir, err = os.MkdirTemp("", "parley-bench-nodes-"); err != nil {
			return res, err
		}
		if !n.Keep {
			defer os.RemoveAll(n.Dir)
		}
	} else if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return res, err
	}
	a := &benchNode{name: "alpha", peerName: "bravo", party: "alice"}
	b := &benchNode{name: "bravo", peerName: "alpha", party: "bob"}
	for _, x := range []*benchNode{a, b} {
		x.data = filepath.Join(n.Dir, x.name)
		x.config = filepath.Join(n.Dir, x.party+".json")
		if x.addr, err = freeLoopbackAddr(); err != nil {
			return res, err
		}
		x.url = "http://" + x.addr
		if err := n.start(ctx, x); err != nil {
			return res, err
		}
		defer n.stop(x)
	}
	res.LoadStart = loadAverage()
	fmt.Fprintf(w, "bench nodes: two parley serve processes (%s, %s), %d objects a side per phase, 1:1, grace %d, envelopes of %d, load %.2f\n",
		a.url, b.url, n.Objects, n.Grace, n.EnvelopeSize, res.LoadStart)
	ag, err := n.setup(ctx, a, b)
	if err != nil {
		return res, err
	}
	a.side = &side{c: a.c, root: ag, gen: newIndicatorGen(n.Seed)}
	b.side = &side{c: b.c, root: ag, gen: newIndicatorGen(n.Seed), sent: 1 << 30}
	for _, x := range []*benchNode{a, b} {
		if x.side.coll, err = ownCollection(ctx, x.c, ag); err != nil {
			return res, err
		}
	}
	offsetB := b.side.sent
	pushed := func(x *benchNode) int {
		if x == b {
			return x.side.sent - offsetB
		}
		return x.side.sent
	}
	for _, phase := range n.Phases {
		switch phase {
		case "live":
			t0 := time.Now()
			last, err := pushBoth(ctx, n.Objects, n.EnvelopeSize, a.side, b.side)
			if err != nil {
				return res, err
			}
			conv, err := n.converge(ctx, ag, n.Grace, a, b, pushed(a), pushed(b))
			if err != nil {
				return res, err
			}
			res.PushSeconds = last.Sub(t0).Seconds()
			res.PushPerSec = float64(2*n.Objects) / res.PushSeconds
			res.LiveConverge = conv.Sub(last).Seconds()
			res.LiveReplPerSec = float64(2*n.Objects) / conv.Sub(t0).Seconds()
			fmt.Fprintf(w, "live: pushed %d + %d at once in %.2f s (%.0f objects/s together); converged %.2f s after the last push; %.0f objects/s replicated over the phase; load %.2f\n",
				n.Objects, n.Objects, res.PushSeconds, res.PushPerSec, res.LiveConverge, res.LiveReplPerSec, loadAverage())
		case "catchup":
			for _, x := range []*benchNode{a, b} {
				if _, err := n.parley(ctx, "", "peer", "remove", "--data", x.data, x.peerName); err != nil {
					return res, err
				}
			}
			before := pushed(a) + pushed(b)
			if _, err := pushBoth(ctx, n.Objects, n.EnvelopeSize, a.side, b.side); err != nil {
				return res, err
			}
			t0 := time.Now()
			for _, pair := range [][2]*benchNode{{a, b}, {b, a}} {
				if _, err := n.parley(ctx, "", "peer", "add", "--data", pair[0].data, pair[0].peerName, pair[1].url, pair[1].key); err != nil {
					return res, err
				}
			}
			conv, err := n.converge(ctx, ag, n.Grace, a, b, pushed(a), pushed(b))
			if err != nil {
				return res, err
			}
			res.CatchupObjects = pushed(a) + pushed(b) - before
			res.CatchupSeconds = conv.Sub(t0).Seconds()
			res.CatchupPerSec = float64(res.CatchupObjects) / res.CatchupSeconds
			fmt.Fprintf(w, "catch-up: %d objects (both ways) pulled and ingested in %.2f s after re-pinning: %.0f objects/s; load %.2f\n",
				res.CatchupObjects, res.CatchupSeconds, res.CatchupPerSec, loadAverage())
		default:
			return res, fmt.Errorf("bench nodes: unknown phase %q (live, catchup)", phase)
		}
	}
	res.RSSA, res.RSSB = peakRSS(a.cmd.Process.Pid), peakRSS(b.cmd.Process.Pid)
	res.Load = loadAverage()
	fmt.Fprintf(w, "peak RSS (VmHWM): node A %.0f MiB, node B %.0f MiB; load %.2f\n", float64(res.RSSA)/(1<<20), float64(res.RSSB)/(1<<20), res.Load)
	return res, nil
}

// start runs `parley serve` for x and waits until it answers.
func (n Nodes) start(ctx context.Context, x *benchNode) error {
	logf, err := os.Create(x.data + ".log")
	if err != nil {
		return err
	}
	x.cmd = exec.Command(n.Bin, "serve", "--data", x.data, "--listen", x.addr, "--public-url", x.url, "--node-retry-max", "1s")
	x.cmd.Stdout, x.cmd.Stderr = logf, logf
	if err := x.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("bench nodes: starting %s: %w", x.name, err)
	}
	x.done = make(chan error, 1)
	go func() { x.done <- x.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, x.url+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-x.done:
			return fmt.Errorf("bench nodes: %s exited (%v); see %s.log", x.name, err, x.data)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench nodes: %s did not answer /healthz in 30 s; see %s.log", x.name, x.data)
		}
	}
}

func (n Nodes) stop(x *benchNode) {
	if x.cmd == nil || x.cmd.Process == nil {
		return
	}
	_ = x.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-x.done:
	case <-time.After(20 * time.Second):
		_ = x.cmd.Process.Kill()
		<-x.done
	}
}

// parley runs one CLI command (with PARLEY_CONFIG=config when set) and
// returns its standard output.
func (n Nodes) parley(ctx context.Context, config string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, n.Bin, args...)
	cmd.Dir = n.Dir
	cmd.Env = os.Environ()
	if config != "" {
		cmd.Env = append(cmd.Env, "PARLEY_CONFIG="+config)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("bench nodes: parley %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	fmt.Fprintf(n.Log, "$ parley %s\n%s", strings.Join(args, " "), out.String())
	return out.String(), nil
}

var agreementLine = regexp.MustCompile(`(?m)^agreement (agreement--\S+)`)

// setup pins the nodes to each other, adds a party on each, and makes
// the 1:1 agreement between them through the CLI, as the operators and
// parties would; it returns the agreement's id once both nodes hold it
// active with its collections.
func (n Nodes) setup(ctx context.Context, a, b *benchNode) (string, error) {
	for _, x := range []*benchNode{a, b} {
		out, err := n.parley(ctx, "", "node", "id", "--data", x.data, "--json")
		if err != nil {
			return "", err
		}
		var id struct{ URL, Key string }
		if err := json.Unmarshal([]byte(out), &id); err != nil {
			return "", fmt.Errorf("bench nodes: node id: %w", err)
		}
		x.key = id.Key
	}
	for _, pair := range [][2]*benchNode{{a, b}, {b, a}} {
		if _, err := n.parley(ctx, "", "peer", "add", "--data", pair[0].data, pair[0].peerName, pair[1].url, pair[1].key); err != nil {
			return "", err
		}
	}
	for _, x := range []*benchNode{a, b} {
		out, err := n.parley(ctx, "", "party", "add", "--data", x.data, x.party)
		if err != nil {
			return "", err
		}
		x.token = lastLine(out)
		if _, err := n.parley(ctx, x.config, "login", "--server", x.url, "--token", x.token); err != nil {
			return "", err
		}
		if _, err := n.parley(ctx, x.config, "keygen", "--out", filepath.Join(n.Dir, x.party+"-keys.pem")); err != nil {
			return "", err
		}
		var err2 error
		if x.c, _, err2 = newClient(x.url+"/taxii2/", x.token, "", "", nil, false); err2 != nil {
			return "", err2
		}
	}
	out, err := n.parley(ctx, a.config, "agreement", "propose", "--with", b.party+"@"+a.peerName, "--ratio", "1:1",
		"--grace", strconv.Itoa(n.Grace), "--types", "indicator", "--notice", "0s")
	if err != nil {
		return "", err
	}
	m := agreementLine.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("bench nodes: no agreement id in %q", out)
	}
	ag := m[1]
	hash, err := waitFor(ctx, 30*time.Second, func() (string, bool, error) {
		out, err := n.parley(ctx, b.config, "agreement", "show", ag, "--json")
		if err != nil {
			return "", false, nil // not arrived yet
		}
		var v struct {
			Hash string `json:"awaiting_document_hash"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			return "", false, err
		}
		return v.Hash, v.Hash != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("bench nodes: the proposal did not reach %s: %w", b.name, err)
	}
	if _, err := n.parley(ctx, b.config, "agreement", "sign", ag, "--version", "1", "--hash", hash); err != nil {
		return "", err
	}
	for _, x := range []*benchNode{a, b} {
		if _, err := waitFor(ctx, 30*time.Second, func() (string, bool, error) {
			_, err := ownCollection(ctx, x.c, ag)
			return "", err == nil, nil
		}); err != nil {
			return "", fmt.Errorf("bench nodes: the agreement is not active with collections on %s: %w", x.name, err)
		}
	}
	return ag, nil
}

func ownCollection(ctx context.Context, c *client.Client, ag string) (string, error) {
	me, err := c.Me(ctx)
	if err != nil {
		return "", err
	}
	a, err := c.Agreement(ctx, ag)
	if err != nil {
		return "", err
	}
	if a.Phase != "active" {
		return "", fmt.Errorf("agreement %s is %s", ag, a.Phase)
	}
	return a.CollectionOf(me.PartyID, true)
}

// pushBoth posts k objects to each side at once and returns when the
// later of the two last answers came.
func pushBoth(ctx context.Context, k, envelope int, sides ...*side) (time.Time, error) {
	var wg sync.WaitGroup
	errs := make([]error, len(sides))
	for i, s := range sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = s.post(ctx, k, envelope, 1)
		}()
	}
	wg.Wait()
	return time.Now(), errors.Join(errs...)
}

// converge waits until each party holds, on its own node, exactly what
// the allowance releases of the other's pushes, and returns when.
func (n Nodes) converge(ctx context.Context, ag string, grace int, a, b *benchNode, pushedA, pushedB int) (time.Time, error) {
	wantA := int64(min(pushedB, grace+pushedA)) // what alice holds of bob's on A
	wantB := int64(min(pushedA, grace+pushedB))
	var last string
	_, err := waitFor(ctx, n.Timeout, func() (string, bool, error) {
		ba, err := a.c.Balance(ctx, ag)
		if err != nil {
			return "", false, err
		}
		bb, err := b.c.Balance(ctx, ag)
		if err != nil {
			return "", false, err
		}
		last = fmt.Sprintf("alice holds %d/%d of bob's (released %d), bob %d/%d of alice's (released %d)",
			ba.Available, wantA, ba.Released, bb.Available, wantB, bb.Released)
		if ba.Available > wantA || bb.Available > wantB {
			return "", false, fmt.Errorf("bench nodes: more than the allowance crossed: %s", last)
		}
		return "", ba.Available == wantA && ba.Released == wantA && bb.Available == wantB && bb.Released == wantB, nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("%w (%s)", err, last)
	}
	return time.Now(), nil
}

// waitFor polls f every 20 ms until it is done, fails, or d passes.
func waitFor(ctx context.Context, d time.Duration, f func() (string, bool, error)) (string, error) {
	deadline := time.Now().Add(d)
	for {
		v, done, err := f()
		if err != nil || done {
			return v, err
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("not done after %s", d)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// freeLoopbackAddr returns a 127.0.0.1 port free at the moment.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// parleyBinary is the parley this process runs as: argv[0] looked up on
// PATH when it has no directory (so a test's `parley` runs itself).
func parleyBinary() (string, error) {
	if strings.ContainsRune(os.Args[0], filepath.Separator) {
		return filepath.Abs(os.Args[0])
	}
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		return p, nil
	}
	return os.Executable()
}

// peakRSS returns a process's VmHWM in bytes (0 when unknown).
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
