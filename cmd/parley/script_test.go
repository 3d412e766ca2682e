package main

import (
	"context"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/parley-cti/parley/internal/tests/scriptcmd"
)

// TestMain lets scripts run the real parley command as "parley".
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"parley": func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI end to end: each script under testdata/script
// gets a running server on a fresh data directory ($DATA, $SERVER) and
// drives it with the parley command as operators and parties would. The
// scripts that start parley serve nodes of their own run apart, in
// internal/tests/nodescripts.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: scriptcmd.Setup,
		Cmds:  scriptcmd.Cmds(),
	})
}
