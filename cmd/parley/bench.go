package main

import (
	"context"
	"fmt"
	"io"

	"github.com/parley-cti/parley/internal/bench"
)

func init() {
	register(command{"bench", "measure a TAXII server on loopback: bench taxii --url U --token T | bench load --url U --token T --clients N | bench ingest --url U --token T [--versus-root R --versus-collection C]", cmdBench})
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: bench taxii|load|ingest [flags]; see 'parley bench taxii -h'", errUsage)
	}
	switch args[0] {
	case "taxii":
		_, err := bench.TAXIICommand(ctx, args[1:], stdout, stderr)
		return err
	case "ingest":
		_, err := bench.IngestCommand(ctx, args[1:], stdout, stderr)
		return err
	case "load":
		_, err := bench.LoadCommand(ctx, args[1:], stdout, stderr)
		return err
	}
	return fmt.Errorf("%w: unknown bench %q; use taxii, load or ingest", errUsage, args[0])
}
