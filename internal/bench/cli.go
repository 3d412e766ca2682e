package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// TAXIICommand runs the TAXII workload from command-line arguments; cmd/parley
// wires it as `parley bench taxii`. It returns flag.ErrHelp for -h.
//
//	parley bench taxii --url http://127.0.0.1:8080/ --token T [--root R] [--collection C]
//	    [--user U --password P] [--objects 10000] [--envelope 1000] [--page-limit 1000]
//	    [--gets 200] [--seed N] [--phase-timeout 10m] [--allow-remote]
func TAXIICommand(ctx context.Context, args []string, stdout, stderr io.Writer) (Result, error) {
	fs := flag.NewFlagSet("parley bench taxii", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var wl TAXIIWorkload
	fs.StringVar(&wl.BaseURL, "url", "", "server base URL (required)")
	fs.StringVar(&wl.Root, "root", "", "API root name or URL (default: discovery's default)")
	fs.StringVar(&wl.Collection, "collection", "", "collection id (default: first readable and writable)")
	fs.StringVar(&wl.Token, "token", "", "bearer token")
	fs.StringVar(&wl.User, "user", "", "HTTP Basic user (then --password, or --token as password)")
	fs.StringVar(&wl.Password, "password", "", "HTTP Basic password")
	fs.IntVar(&wl.Objects, "objects", 10000, "indicators to post")
	fs.IntVar(&wl.EnvelopeSize, "envelope", 1000, "objects per envelope")
	fs.IntVar(&wl.ReadPageLimit, "page-limit", 1000, "limit per read-back page")
	fs.IntVar(&wl.SingleGets, "gets", 200, "single-object GETs")
	fs.Uint64Var(&wl.Seed, "seed", 0, "data seed (default: from the clock)")
	fs.DurationVar(&wl.PhaseTimeout, "phase-timeout", 10*time.Minute, "cap on each phase (0: none)")
	fs.BoolVar(&wl.AllowRemote, "allow-remote", false, "permit a non-loopback server")
	phases := fs.String("phases", "ingest,gets,read", "phases to run, in this order: ingest, gets, read (GETs before the long read, so a server still busy with an abandoned read does not slow them)")
	if err := fs.Parse(args); err != nil {
		return Result{}, err
	}
	var err error
	if wl.Phases, err = parsePhases(*phases); err != nil {
		return Result{}, err
	}
	if wl.BaseURL == "" || fs.NArg() > 0 {
		fs.Usage()
		return Result{}, fmt.Errorf("bench taxii: --url is required and no positional arguments are taken")
	}
	if wl.User != "" && wl.Password == "" {
		wl.Password = wl.Token
	}
	return wl.Run(ctx, stdout)
}

// LoadCommand runs the load generator from command-line arguments; cmd/parley
// wires it as `parley bench load`. The server must be on loopback.
//
//	parley bench load --url http://127.0.0.1:8080/ --token T [--clients 4] [--duration 10s]
//	    [--max-requests 0] [--write-fraction 0.2] [--envelope 10] [--page-limit 100]
func LoadCommand(ctx context.Context, args []string, stdout, stderr io.Writer) (LoadResult, error) {
	fs := flag.NewFlagSet("parley bench load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var l Load
	fs.StringVar(&l.BaseURL, "url", "", "server base URL on loopback (required)")
	fs.StringVar(&l.Root, "root", "", "API root name or URL (default: discovery's default)")
	fs.StringVar(&l.Collection, "collection", "", "collection id (default: first readable and writable)")
	fs.StringVar(&l.Token, "token", "", "bearer token")
	fs.StringVar(&l.User, "user", "", "HTTP Basic user (then --password, or --token as password)")
	fs.StringVar(&l.Password, "password", "", "HTTP Basic password")
	fs.IntVar(&l.Clients, "clients", 4, "concurrent clients")
	fs.DurationVar(&l.Duration, "duration", 10*time.Second, "how long to run")
	fs.IntVar(&l.MaxRequests, "max-requests", 0, "stop after this many requests (0: no limit)")
	fs.Float64Var(&l.WriteFraction, "write-fraction", 0.2, "fraction of requests that write")
	fs.IntVar(&l.EnvelopeSize, "envelope", 10, "objects per write")
	fs.IntVar(&l.PageLimit, "page-limit", 100, "limit of page reads")
	fs.Uint64Var(&l.Seed, "seed", 0, "data seed (default: from the clock)")
	if err := fs.Parse(args); err != nil {
		return LoadResult{}, err
	}
	if l.BaseURL == "" || fs.NArg() > 0 {
		fs.Usage()
		return LoadResult{}, fmt.Errorf("bench load: --url is required and no positional arguments are taken")
	}
	if l.User != "" && l.Password == "" {
		l.Password = l.Token
	}
	return l.Run(ctx, stdout)
}

// IngestCommand runs Ingest from command-line arguments; cmd/parley wires it
// as `parley bench ingest`. The server must be on loopback.
//
//	parley bench ingest --url http://127.0.0.1:8080/ --token T [--root R] [--collection C]
//	    [--objects 100000] [--envelope 1000] [--in-flight 1] [--window N] [--server-pid PID] [--seed N]
//	    [--versus-root R2 --versus-collection C2 [--versus-token T2] [--block N]]
func IngestCommand(ctx context.Context, args []string, stdout, stderr io.Writer) (IngestResult, error) {
	fs := flag.NewFlagSet("parley bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var in Ingest
	var vs Target
	fs.StringVar(&in.BaseURL, "url", "", "server base URL on loopback (required)")
	fs.StringVar(&in.Root, "root", "", "API root name or URL (default: discovery's default)")
	fs.StringVar(&in.Collection, "collection", "", "collection id (default: first readable and writable)")
	fs.StringVar(&in.Token, "token", "", "bearer token")
	fs.StringVar(&in.User, "user", "", "HTTP Basic user (then --password, or --token as password)")
	fs.StringVar(&in.Password, "password", "", "HTTP Basic password")
	fs.IntVar(&in.Objects, "objects", 100000, "objects to post (per side with --versus-*)")
	fs.IntVar(&in.EnvelopeSize, "envelope", 1000, "objects per POST")
	fs.IntVar(&in.InFlight, "in-flight", 1, "POSTs at once (1: one request at a time, timing only the requests; more: wall time, generating overlapped)")
	fs.IntVar(&in.Window, "window", 0, "objects per reported window (default: a tenth of --objects)")
	fs.IntVar(&in.ServerPID, "server-pid", 0, "pid of the server on this machine, to report its CPU per object")
	fs.Uint64Var(&in.Seed, "seed", 0, "data seed (default: from the clock)")
	fs.StringVar(&vs.Root, "versus-root", "", "ABAB: the B side's API root")
	fs.StringVar(&vs.Collection, "versus-collection", "", "ABAB: the B side's collection (with --versus-root)")
	fs.StringVar(&in.VersusToken, "versus-token", "", "ABAB: the B side's bearer token (default: --token)")
	fs.IntVar(&in.Block, "block", 0, "ABAB: objects per block (default: 10 envelopes)")
	if err := fs.Parse(args); err != nil {
		return IngestResult{}, err
	}
	if in.BaseURL == "" || fs.NArg() > 0 || (vs.Root == "") != (vs.Collection == "") {
		fs.Usage()
		return IngestResult{}, fmt.Errorf("bench ingest: --url is required, --versus-root and --versus-collection go together, and no positional arguments are taken")
	}
	if vs.Root != "" {
		in.Versus = &vs
	}
	if in.User != "" && in.Password == "" {
		in.Password = in.Token
	}
	return in.Run(ctx, stdout)
}

// ReadersCommand runs concurrent full readers from command-line arguments;
// cmd/parley wires it as `parley bench readers`.
//
//	parley bench readers --url http://127.0.0.1:8080/ --token T [--readers 8] [--page-limit 1000]
func ReadersCommand(ctx context.Context, args []string, stdout, stderr io.Writer) (ReadersResult, error) {
	fs := flag.NewFlagSet("parley bench readers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rd Readers
	fs.StringVar(&rd.BaseURL, "url", "", "server base URL (required)")
	fs.StringVar(&rd.Root, "root", "", "API root name or URL (default: discovery's default)")
	fs.StringVar(&rd.Collection, "collection", "", "collection id (default: first readable and writable)")
	fs.StringVar(&rd.Token, "token", "", "bearer token")
	fs.StringVar(&rd.User, "user", "", "HTTP Basic user (then --password, or --token as password)")
	fs.StringVar(&rd.Password, "password", "", "HTTP Basic password")
	fs.IntVar(&rd.Readers, "readers", 8, "concurrent full readers")
	fs.IntVar(&rd.PageLimit, "page-limit", 1000, "limit per page")
	fs.BoolVar(&rd.AllowRemote, "allow-remote", false, "permit a non-loopback server")
	if err := fs.Parse(args); err != nil {
		return ReadersResult{}, err
	}
	if rd.BaseURL == "" || fs.NArg() > 0 {
		fs.Usage()
		return ReadersResult{}, fmt.Errorf("bench readers: --url is required and no positional arguments are taken")
	}
	if rd.User != "" && rd.Password == "" {
		rd.Password = rd.Token
	}
	return rd.Run(ctx, stdout)
}

// NodesCommand runs Nodes from command-line arguments; cmd/parley wires it
// as `parley bench nodes`. It starts its own two nodes on 127.0.0.1.
//
//	parley bench nodes [--objects 10000] [--grace 1000] [--envelope 1000]
//	    [--phases live,catchup] [--dir D --keep] [--bin PARLEY] [--timeout 10m] [-v]
func NodesCommand(ctx context.Context, args []string, stdout, stderr io.Writer) (NodesResult, error) {
	fs := flag.NewFlagSet("parley bench nodes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var n Nodes
	fs.IntVar(&n.Objects, "objects", 10000, "objects each party pushes to its own node, per phase")
	fs.IntVar(&n.Grace, "grace", 1000, "the agreement's grace (the first step each side risks)")
	fs.IntVar(&n.EnvelopeSize, "envelope", 1000, "objects per push")
	fs.StringVar(&n.Dir, "dir", "", "work directory for the two nodes' data and logs (default: a temporary one)")
	fs.BoolVar(&n.Keep, "keep", false, "keep the temporary work directory")
	fs.StringVar(&n.Bin, "bin", "", "the parley binary the nodes run (default: this one)")
	fs.DurationVar(&n.Timeout, "timeout", 10*time.Minute, "cap on each wait for convergence")
	fs.Uint64Var(&n.Seed, "seed", 0, "data seed (default: from the clock)")
	phases := fs.String("phases", "live,catchup", "phases to run, in this order: live (push on both sides while replicating), catchup (push while unpinned, then replicate)")
	verbose := fs.Bool("v", false, "print the CLI commands that set the nodes up")
	if err := fs.Parse(args); err != nil {
		return NodesResult{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return NodesResult{}, fmt.Errorf("bench nodes: no positional arguments are taken")
	}
	n.Phases = strings.Split(*phases, ",")
	if *verbose {
		n.Log = stderr
	}
	return n.Run(ctx, stdout)
}
