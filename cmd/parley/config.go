package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxConfigFile bounds a configuration file; real ones are a few lines.
const maxConfigFile = 1 << 20

// errConfig marks a configuration file that cannot be used.
var errConfig = errors.New("config")

// configValue is one setting from a file: its flag name, its values (more
// than one only for repeatable flags) and where it was written.
type configValue struct {
	Name   string
	Values []string
	Where  string // "line 3" or "key \"listen\""
}

// parseConfig reads a configuration file's content: a JSON object mapping
// flag names to strings, numbers, booleans or arrays of them, or lines of
// "key = value" with blank lines and '#' comments. Keys are flag names;
// leading dashes are dropped and '_' reads as '-', so "tls_cert",
// "tls-cert" and "--tls-cert" are one key. A key may appear once.
func parseConfig(data []byte) ([]configValue, error) {
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("%w: the file is larger than %d bytes", errConfig, maxConfigFile)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: the file is not UTF-8 text", errConfig)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		return parseJSONConfig(t)
	}
	var out []configValue
	seen := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxConfigFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: want key = value", errConfig, n)
		}
		name := configKey(k)
		if !validKey(name) {
			return nil, fmt.Errorf("%w: line %d: %q is not a setting name", errConfig, n, strings.TrimSpace(k))
		}
		where := "line " + strconv.Itoa(n)
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("%w: %s sets %s again (first set on %s)", errConfig, where, name, prev)
		}
		seen[name] = where
		out = append(out, configValue{Name: name, Values: []string{unquote(strings.TrimSpace(v))}, Where: where})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", errConfig, err)
	}
	return out, nil
}

// unquote removes one pair of matching quotes, so values may keep spaces
// at their ends or contain '#'.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

func parseJSONConfig(data []byte) ([]configValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object of settings: %v", errConfig, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: text after the JSON object", errConfig)
	}
	var out []configValue
	seen := map[string]string{}
	for k, v := range m {
		name := configKey(k)
		where := "key " + strconv.Quote(k)
		if !validKey(name) {
			return nil, fmt.Errorf("%w: %s is not a setting name", errConfig, where)
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("%w: %s and %s set the same setting", errConfig, prev, where)
		}
		seen[name] = where
		var vals []string
		items, isList := v.([]any)
		if !isList {
			items = []any{v}
		}
		for _, it := range items {
			s, err := scalar(it)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", errConfig, where, err)
			}
			vals = append(vals, s)
		}
		out = append(out, configValue{Name: name, Values: vals, Where: where})
	}
	return out, nil
}

func scalar(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", errors.New("values must be strings, numbers, booleans or a list of them")
}

func configKey(k string) string {
	// '_' becomes '-' before the leading dashes go, so "_" and "-" are the
	// same (empty, refused) key whichever way the file spells it.
	return strings.TrimLeft(strings.ReplaceAll(strings.TrimSpace(k), "_", "-"), "-")
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// applyConfigFile reads path and sets, on fs, each flag the file names that
// was given neither on the command line nor through its PARLEY_<NAME>
// environment variable: command line over environment over file over
// built-in defaults. Call it after fs has parsed the command line. Unknown
// settings, and the "config" setting itself, are errors that name the line.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %v", errConfig, err)
	}
	vals, err := parseConfig(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return applyConfig(fs, vals)
}

func applyConfig(fs *flag.FlagSet, vals []configValue) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, v := range vals {
		f := fs.Lookup(v.Name)
		if f == nil || v.Name == "config" {
			return fmt.Errorf("%w: %s: parley %s has no setting %q", errConfig, v.Where, strings.TrimPrefix(fs.Name(), "parley "), v.Name)
		}
		if given[v.Name] {
			continue
		}
		if _, set := os.LookupEnv("PARLEY_" + strings.ToUpper(strings.ReplaceAll(v.Name, "-", "_"))); set {
			continue
		}
		for _, s := range v.Values {
			if err := fs.Set(v.Name, s); err != nil {
				return fmt.Errorf("%w: %s: %s = %q: %v", errConfig, v.Where, v.Name, s, err)
			}
		}
	}
	return nil
}
