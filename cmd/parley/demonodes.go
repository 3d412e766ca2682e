package main

import (
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
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/crosswitness"
	"github.com/parley-cti/parley/internal/demo"
)

// cmdDemoNodes runs `parley demo --nodes`: three `parley serve` child
// processes of this very binary, each on its own loopback address and data
// directory under dir, and the exchange across them (internal/demo,
// RunNodes). It stops the nodes before it returns, whatever happened; kept
// says whether dir outlives the demo.
func cmdDemoNodes(ctx context.Context, dir string, kept bool, stdout, stderr io.Writer) error {
	start := time.Now()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	spec := []struct{ name, role string }{
		{"alpha", "CERT-Nordland's node"},
		{"bravo", "Police-Suedmark's node"},
		{"charlie", "the escrow node both parties name; holds no party"},
	}
	var nodes []*demo.Node
	var procs []*nodeProcess
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for _, s := range spec {
		p, err := startDemoNode(ctx, dir, s.name)
		if err != nil {
			return fmt.Errorf("starting node %s: %w", s.name, err)
		}
		procs = append(procs, p)
		nodes = append(nodes, &demo.Node{Name: s.name, Role: fmt.Sprintf("%s (pid %d)", s.role, p.cmd.Process.Pid), Op: cliOperator{data: p.data}})
	}
	res, err := demo.RunNodes(ctx, nodes[0], nodes[1], nodes[2], filepath.Join(dir, "verify-state"), stdout)
	if err != nil {
		for _, p := range procs {
			fmt.Fprintf(stderr, "parley demo: node %s's log: %s\n", p.name, p.log)
		}
		return fmt.Errorf("the demo failed: %w", err)
	}
	for _, p := range procs {
		p.stop()
	}
	fmt.Fprintf(stdout, "\nThe three nodes stopped. The demo took %.1f s; agreement %s.\n", time.Since(start).Seconds(), res.Agreement)
	if kept {
		fmt.Fprintf(stdout, "Data directories: %s, %s, %s (logs beside them); parley serve --data DIR serves one again.\n", procs[0].data, procs[1].data, procs[2].data)
	}
	return nil
}

// nodeProcess is one `parley serve` child of the demo.
type nodeProcess struct {
	name, data, log string
	cmd             *exec.Cmd
	done            chan error
}

// startDemoNode starts `parley serve` for node name on a free loopback port,
// with its data directory and log file under dir, and waits until it
// answers. A port another process took in between is tried again.
func startDemoNode(ctx context.Context, dir, name string) (*nodeProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &nodeProcess{name: name, data: filepath.Join(dir, name), log: filepath.Join(dir, name+".log")}
	var lastErr error
	for range 3 {
		addr, err := freeLoopback()
		if err != nil {
			return nil, err
		}
		logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		// Args[0] is "parley" whatever the binary is called, so that this
		// binary runs its serve command (a test binary dispatches on it).
		cmd := &exec.Cmd{Path: exe, Args: []string{"parley", "serve", "--data", p.data, "--listen", addr,
			"--public-url", "http://" + addr, "--node-retry-max", "1s", "--checkpoint-interval", "200ms"},
			Stdout: logf, Stderr: logf}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, err
		}
		logf.Close() // the child holds its own descriptor
		p.cmd, p.done = cmd, make(chan error, 1)
		go func() { p.done <- cmd.Wait() }()
		if lastErr = waitHealthy(ctx, "http://"+addr+"/healthz", p.done); lastErr == nil {
			return p, nil
		}
		p.stop()
	}
	return nil, fmt.Errorf("%w (log: %s)", lastErr, p.log)
}

// stop asks the node to shut down (SIGINT, as Ctrl-C would) and kills it
// if it has not stopped after 10 s. Calling it again does nothing.
func (p *nodeProcess) stop() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.cmd = nil
}

// freeLoopback returns a loopback address nothing listens on right now.
func freeLoopback() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHealthy waits until url answers 200, the process exits, or 30 s pass.
func waitHealthy(ctx context.Context, url string, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("parley serve exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("parley serve did not answer within 30 s")
		}
	}
}

// cliOperator is one node's operator, running this binary's own operator
// commands in-process on the node's data directory while it serves, as an
// operator would in a shell.
type cliOperator struct{ data string }

// cli runs "parley CMD SUB --data DIR ARGS..." for cmd = [CMD, SUB].
func (o cliOperator) cli(ctx context.Context, cmd []string, args ...string) (string, error) {
	args = append(append(append([]string{}, cmd...), "--data", o.data), args...)
	var out, errb bytes.Buffer
	if code := run(ctx, args, &out, &errb); code != 0 {
		return out.String(), fmt.Errorf("parley %s: %s", strings.Join(args, " "), strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (o cliOperator) Identity(ctx context.Context) (string, string, error) {
	out, err := o.cli(ctx, []string{"node", "id"}, "--json")
	if err != nil {
		return "", "", err
	}
	var id struct{ URL, Key string }
	if err := json.Unmarshal([]byte(out), &id); err != nil {
		return "", "", err
	}
	return id.URL, id.Key, nil
}

func (o cliOperator) Pin(ctx context.Context, name, url, key string) error {
	_, err := o.cli(ctx, []string{"peer", "add"}, name, url, key)
	return err
}

func (o cliOperator) CreateParty(ctx context.Context, name string) (string, string, error) {
	out, err := o.cli(ctx, []string{"party", "add"}, "--json", name)
	if err != nil {
		return "", "", err
	}
	var p struct {
		ID    string `json:"party_id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return "", "", fmt.Errorf("parley party add --json: %w", err)
	}
	return p.ID, p.Token, nil
}

func (o cliOperator) VerifyPeers(ctx context.Context) ([]crosswitness.PeerReport, error) {
	out, err := o.cli(ctx, []string{"verify"}, "--peers", "--settle", "30s", "--json")
	var r struct {
		Peers []crosswitness.PeerReport `json:"peers"`
		OK    bool                      `json:"ok"`
	}
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
		return nil, errors.Join(err, jerr)
	}
	if err != nil {
		return r.Peers, err
	}
	return r.Peers, nil
}
