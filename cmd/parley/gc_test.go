package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeGCPercent starts `parley serve` as its own process and reads the
// collector's pace from its metrics: 400 by default, --gc-percent or
// PARLEY_GC_PERCENT when given, and GOGC over both, as Go documents it.
func TestServeGCPercent(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"default", nil, nil, "400"},
		{"flag", nil, []string{"--gc-percent", "250"}, "250"},
		{"settings env", []string{"PARLEY_GC_PERCENT=300"}, nil, "300"},
		{"GOGC wins", []string{"GOGC=150"}, []string{"--gc-percent", "250"}, "150"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := serveGCPercent(t, c.env, c.args); got != c.want {
				t.Fatalf("go_gc_gogc_percent = %s, want %s", got, c.want)
			}
		})
	}
	if _, errb, err := parleyTry(nil, "serve", "--data", filepath.Join(t.TempDir(), "d"), "--gc-percent", "0"); err == nil || !strings.Contains(errb, "--gc-percent must be 1 or more") {
		t.Fatalf("--gc-percent 0: %v %q", err, errb)
	}
}

func serveGCPercent(t *testing.T, env, args []string) string {
	t.Helper()
	addr, maddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command("parley", append([]string{"serve", "--data", filepath.Join(t.TempDir(), "data"), "--listen", addr,
		"--metrics-listen", maddr, "--log-level", "warn"}, args...)...)
	cmd.Env = append(withoutEnv(os.Environ(), "GOGC", "PARLEY_GC_PERCENT"), env...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	for i := 0; ; i++ {
		res, err := http.Get("http://" + maddr + "/metrics")
		if err == nil {
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "go_gc_gogc_percent "); ok {
					return v
				}
			}
			t.Fatal("no go_gc_gogc_percent in /metrics")
		}
		if i == 400 {
			t.Fatalf("serve's metrics on %s did not answer: %v", maddr, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
outer:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}
