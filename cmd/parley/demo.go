package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parley-cti/parley/internal/demo"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

func init() {
	register(command{"demo", "run a server on a fresh data directory and play a whole exchange on it: demo [--exit] [--keep] [--listen ADDR] | demo --nodes: three sovereign nodes (parley serve processes) and the exchange across them", cmdDemo})
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	data := fs.String("data", "", "data directory (default: a new temporary one)")
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve on (another free port is used if it is taken)")
	exit := fs.Bool("exit", false, "stop after the demo instead of serving on")
	keep := fs.Bool("keep", false, "keep the temporary data directory when the demo ends (it is removed otherwise)")
	nodes := fs.Bool("nodes", false, "run three sovereign nodes (two parties' and an escrow node), each a parley serve process with its own data directory, play the exchange across them, stop them and exit")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	start := time.Now()
	dir := *data
	if dir == "" {
		d, err := os.MkdirTemp("", "parley-demo-")
		if err != nil {
			return err
		}
		dir = d
		if *keep {
			fmt.Fprintf(stdout, "Data directory: %s (kept when the demo ends: --keep)\n\n", dir)
		} else {
			fmt.Fprintf(stdout, "Data directory: %s (temporary: removed when the demo ends; --keep keeps it)\n\n", dir)
			// Runs after the database is closed (defers run last-in first-out).
			defer func() {
				if err := os.RemoveAll(dir); err != nil {
					fmt.Fprintf(stderr, "parley demo: could not remove %s: %v\n", dir, err)
				}
			}()
		}
	} else if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%w: %s is not empty; the demo needs a fresh data directory", errUsage, dir)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *nodes {
		return cmdDemoNodes(ctx, dir, *data != "" || *keep, stdout, stderr)
	}
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		return err
	}
	defer db.Close()
	cfg := server.Config{Data: dir, Listen: *listen, Migrate: true, CheckpointInterval: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv, err := server.New(ctx, cfg, db)
	if err != nil {
		return err
	}
	ln, err := srv.Listen()
	if err != nil {
		cfg.Listen = "127.0.0.1:0"
		if srv, err = server.New(ctx, cfg, db); err != nil {
			return err
		}
		if ln, err = srv.Listen(); err != nil {
			return err
		}
	}
	url := srv.URL(ln)
	served := make(chan error, 1)
	sctx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	go func() { served <- srv.Serve(sctx, ln) }()

	res, err := demo.Run(ctx, demo.PartyService{S: srv.Parties}, url, stdout)
	if err != nil {
		return fmt.Errorf("the demo failed: %w", err)
	}
	fmt.Fprintf(stdout, "\nThe demo took %.1f s. Data directory: %s\n", time.Since(start).Seconds(), dir)
	if *exit {
		stopServer()
		<-served
		return nil
	}
	fmt.Fprintf(stdout, "\nparley keeps serving on %s until you press Ctrl-C:\n", url)
	fmt.Fprintf(stdout, "  dashboard:       %s/ui/\n", url)
	fmt.Fprintf(stdout, "  TAXII discovery: %s/taxii2/\n", url)
	fmt.Fprintf(stdout, "  %s token: %s\n", res.A.Name, res.A.Token)
	fmt.Fprintf(stdout, "  %s token: %s\n", res.B.Name, res.B.Token)
	fmt.Fprintf(stdout, "  try: curl -H 'Authorization: Bearer %s' %s/taxii2/%s/collections/\n", res.B.Token, url, res.Agreement)
	err = <-served
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
