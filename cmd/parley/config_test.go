package main

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func serveFlags() (*flag.FlagSet, map[string]*string, *bool) {
	fs := flag.NewFlagSet("parley serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := map[string]*string{}
	for _, n := range []string{"listen", "data", "tls-cert", "log-format", "config"} {
		s[n] = fs.String(n, env(n, "default-"+n), "")
	}
	return fs, s, fs.Bool("no-migrate", false, "")
}

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want map[string][]string
		err  string
	}{
		{"key value", "# parley\nlisten = 0.0.0.0:8443\n\ntls_cert = /etc/parley/cert.pem  \n--data=\"/var/lib/parley \"\n",
			map[string][]string{"listen": {"0.0.0.0:8443"}, "tls-cert": {"/etc/parley/cert.pem"}, "data": {"/var/lib/parley "}}, ""},
		{"json", `{"listen": "127.0.0.1:9", "no_migrate": true, "max": 5, "read": ["a", "b"]}`,
			map[string][]string{"listen": {"127.0.0.1:9"}, "no-migrate": {"true"}, "max": {"5"}, "read": {"a", "b"}}, ""},
		{"empty", "\n# nothing\n", map[string][]string{}, ""},
		{"no equals", "listen 1\n", nil, "line 1: want key = value"},
		{"bad key", "li sten = 1\n", nil, "line 1"},
		{"duplicate", "listen = a\nlisten = b\n", nil, "line 2 sets listen again (first set on line 1)"},
		{"json duplicate by spelling", `{"tls_cert": "a", "tls-cert": "b"}`, nil, "set the same setting"},
		{"json object value", `{"listen": {"x": 1}}`, nil, "values must be"},
		{"json trailing", `{"listen": "a"} {}`, nil, "text after"},
		{"json broken", `{"listen": `, nil, "not a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := parseConfig([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !errors.Is(err, errConfig) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, v := range vals {
				got[v.Name] = v.Values
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestApplyConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "parley.conf")
	os.WriteFile(path, []byte("listen = file:1\ndata = file-data\nlog_format = json\nno-migrate = true\n"), 0o600)
	t.Setenv("PARLEY_DATA", "env-data")
	fs, s, noMigrate := serveFlags()
	if err := fs.Parse([]string{"--log-format", "text"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(fs, path); err != nil {
		t.Fatal(err)
	}
	// Command line > environment > file > default.
	if *s["log-format"] != "text" || *s["data"] != "env-data" || *s["listen"] != "file:1" || !*noMigrate || *s["tls-cert"] != "default-tls-cert" {
		t.Fatalf("log-format %q data %q listen %q no-migrate %v tls-cert %q", *s["log-format"], *s["data"], *s["listen"], *noMigrate, *s["tls-cert"])
	}
	for name, content := range map[string]string{
		"unknown":  "listne = 1\n",
		"config":   "config = other.conf\n",
		"bad bool": "no-migrate = perhaps\n",
	} {
		os.WriteFile(path, []byte(content), 0o600)
		fs, _, _ := serveFlags()
		fs.Parse(nil)
		if err := applyConfigFile(fs, path); err == nil || !errors.Is(err, errConfig) || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := applyConfigFile(fs, filepath.Join(dir, "missing.conf")); err == nil || !errors.Is(err, errConfig) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParseConfig: parsing never panics; what parses re-parses to the same
// settings when written back as key = value lines (single values) or JSON.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("listen = 127.0.0.1:8080\n# c\ndata='x'\n"))
	f.Add([]byte(`{"listen":"a","read":["p","q"],"n":1.5}`))
	f.Add([]byte("a=b=c\n\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := parseConfig(data)
		if err != nil {
			if !errors.Is(err, errConfig) {
				t.Fatalf("error outside errConfig: %v", err)
			}
			return
		}
		m := map[string]any{}
		for _, v := range vals {
			if !validKey(v.Name) {
				t.Fatalf("accepted key %q", v.Name)
			}
			items := make([]any, len(v.Values))
			for i, s := range v.Values {
				items[i] = s
			}
			m[v.Name] = items
		}
		raw, err := jsonMarshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseConfig(raw)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", raw, err)
		}
		if len(again) != len(vals) {
			t.Fatalf("round trip changed the settings: %v → %v", vals, again)
		}
		for _, v := range again {
			if !reflect.DeepEqual(v.Values, m[v.Name].([]any)) && !sameStrings(v.Values, m[v.Name].([]any)) {
				t.Fatalf("%s: %v → %v", v.Name, m[v.Name], v.Values)
			}
		}
	})
}

func sameStrings(a []string, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i].(string) {
			return false
		}
	}
	return true
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
