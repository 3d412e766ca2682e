// Command parley is the server and command-line client for reciprocal
// exchange of cyber-threat intelligence under signed agreements.
//
// This file and its siblings only parse flags and wire packages together;
// the behaviour lives under internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// Exit codes, for scripts.
const (
	exitOK      = 0
	exitFailure = 1 // the operation failed
	exitUsage   = 2 // the command line was wrong
)

// errUsage marks command-line mistakes (exit 2).
var errUsage = errors.New("usage")

type command struct {
	name  string
	usage string
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// registered holds commands that other files of this package add in their
// init functions, so each command family lives in its own file.
var registered []command

func register(c command) { registered = append(registered, c) }

func commands() []command {
	return append([]command{
		{"serve", "run the server", cmdServe},
		{"party", "manage parties (operator): party add NAME | party list", cmdParty},
		{"token", "manage API tokens (operator): token add PARTY | token revoke TOKEN-ID | token list PARTY", cmdToken},
		{"collection", "manage operator collections: collection add --title T --read P --write P | collection list", cmdCollection},
		{"migrate", "apply pending database schema migrations", cmdMigrate},
		{"version", "print the version", cmdVersion},
	}, registered...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	asJSON := wantsJSON(args)
	names = nil
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return exitOK
			case errors.Is(err, flag.ErrHelp):
				return exitOK
			case errors.Is(err, errReported):
				return exitFailure
			case errors.Is(err, errUsage):
				printError(stderr, c.name, err, exitUsage, asJSON)
				return exitUsage
			default:
				if isUnreachable(err) && !errors.Is(err, errUnreachable) {
					err = fmt.Errorf("%w (is it running, and is --server right?): %w", errUnreachable, err)
				}
				printError(stderr, c.name, err, exitFailure, asJSON)
				return exitFailure
			}
		}
	}
	var known []string
	for _, c := range commands() {
		known = append(known, c.name)
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if s := suggest(args[0], known); s != "" {
		msg += fmt.Sprintf("; did you mean 'parley %s'?", s)
	}
	printError(stderr, "", fmt.Errorf("%w: %s; run 'parley help'", errUsage, msg), exitUsage, asJSON)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "parley — reciprocal exchange of threat intelligence under signed agreements")
	fmt.Fprintln(w, "\nUsage: parley COMMAND [flags] [args]\n\nCommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		if strings.HasPrefix(c.name, "__") {
			continue // helpers for the completion scripts
		}
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nRun 'parley COMMAND -h' for a command's flags.")
}

// parse parses flags that may come before or after positional arguments
// ("party add NAME --data DIR" and "party add --data DIR NAME" alike).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	if wantsJSON(args) && !slices.Contains(args, "-h") && !slices.Contains(args, "--help") && !slices.Contains(args, "-help") {
		// Under --json stderr carries one JSON error: the flag package's
		// own usage text would break it (the error names the bad flag).
		fs.SetOutput(io.Discard)
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, settingsErr(fs)
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), settingsErr(fs)
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("parley "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addConfigFlag(fs) // every command reads the settings file (settings.go)
	return fs
}

// env returns the environment variable or a default, so every flag can
// also be set as PARLEY_<NAME>.
func env(name, def string) string {
	if v, ok := os.LookupEnv("PARLEY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); ok {
		return v
	}
	return def
}

var version = "0.1.0-dev"

func cmdVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return emit(stdout, *asJSON, map[string]string{"version": version}, func() { fmt.Fprintln(stdout, "parley", version) })
}
