package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
)

// The settings file: every command takes --config FILE (or PARLEY_SETTINGS),
// a file of "key = value" lines or a JSON object whose keys are flag names
// (see parseConfig). One file serves the server and the operator commands
// alike: serve takes every setting; the other commands take the ones they
// have flags for (operator commands: data and db; party commands: profile,
// server, token, keys) and leave the rest to the commands that have them.
// PARLEY_CONFIG is not this file: it has always named a party's profile
// file.

// settingsEnv names the settings file when --config is not given.
const settingsEnv = "PARLEY_SETTINGS"

// otherCommandSettings are flags of commands other than serve that a shared
// settings file may hold; serve skips them and refuses anything else it
// does not know, so that a misspelt setting is caught where it matters.
var otherCommandSettings = []string{"profile", "server", "token", "keys", "json", "label", "out"}

// addConfigFlag registers --config on fs; newFlags calls it for every command.
func addConfigFlag(fs *flag.FlagSet) {
	fs.String("config", os.Getenv(settingsEnv), "settings file: key = value lines or a JSON object of flag names; command-line flags and PARLEY_<FLAG> win (env "+settingsEnv+")")
}

// applySettings reads the settings file named by fs's --config, if any,
// after fs has parsed the command line.
func applySettings(fs *flag.FlagSet) error {
	f := fs.Lookup("config")
	if f == nil || f.Value.String() == "" {
		return nil
	}
	path := f.Value.String()
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %v", errConfig, err)
	}
	vals, err := parseConfig(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if fs.Name() != "parley serve" {
		vals = slices.DeleteFunc(vals, func(v configValue) bool { return v.Name != "config" && fs.Lookup(v.Name) == nil })
	} else {
		vals = slices.DeleteFunc(vals, func(v configValue) bool { return slices.Contains(otherCommandSettings, v.Name) })
	}
	if err := applyConfig(fs, vals); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// settingsErr applies the settings file once the command line is parsed;
// a file that cannot be used is a usage error.
func settingsErr(fs *flag.FlagSet) error {
	if err := applySettings(fs); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// newLogger returns the server's logger: text or JSON on w, at a level.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info", "":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("%w: --log-level must be debug, info, warn or error, got %q", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format must be text or json, got %q", errUsage, format)
}
