package main

import (
	"context"
	"fmt"
	"io"

	"github.com/parley-cti/parley/internal/bench"
)

func init() {
	register(command{"bench", "measure a TAXII server on loopback: bench taxii|load|ingest|readers --url U --token T (scripts/bench.sh runs them all) | bench nodes (two nodes replicating)", cmdBench})
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: bench taxii|load|ingest|readers|nodes [flags]; see 'parley bench taxii -h'", errUsage)
	}
	var err error
	switch args[0] {
	case "taxii":
		_, err = bench.TAXIICommand(ctx, args[1:], stdout, stderr)
	case "load":
		_, err = bench.LoadCommand(ctx, args[1:], stdout, stderr)
	case "ingest":
		_, err = bench.IngestCommand(ctx, args[1:], stdout, stderr)
	case "readers":
		_, err = bench.ReadersCommand(ctx, args[1:], stdout, stderr)
	case "nodes":
		_, err = bench.NodesCommand(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("%w: unknown bench %q; use taxii, load, ingest, readers or nodes", errUsage, args[0])
	}
	return err
}
