package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSettingsFileServeAndOperators: one settings file names the database
// for serve and for the operator commands; in JSON log mode serve writes
// nothing on stdout; --log-level warn keeps successful requests out of the
// access log and 401s in, and no token reaches the log.
func TestSettingsFileServeAndOperators(t *testing.T) {
	t.Setenv("PARLEY_DATA", "")
	os.Unsetenv("PARLEY_DATA")
	dir := t.TempDir()
	addr := freeAddr(t)
	conf := filepath.Join(dir, "parley.conf")
	os.WriteFile(conf, []byte("# shared by serve and the operator commands\ndata = "+filepath.Join(dir, "data")+
		"\nlisten = "+addr+"\nlog-format = json\nlog_level = warn\nserver = http://"+addr+"\n"), 0o600)

	var out, errb lockedBuf
	if code := run(context.Background(), []string{"party", "add", "alpha", "--json", "--config", conf}, &out, &errb); code != 0 {
		t.Fatalf("party add: %d %s", code, errb.String())
	}
	var added struct{ Token string }
	if err := json.Unmarshal([]byte(out.String()), &added); err != nil || added.Token == "" {
		t.Fatalf("party add output %q: %v", out.String(), err)
	}
	// The operator command used the file's data directory.
	if _, err := os.Stat(filepath.Join(dir, "data", "parley.db")); err != nil {
		t.Fatalf("party add did not use the settings file's data directory: %v", err)
	}
	// PARLEY_SETTINGS names the file too.
	t.Setenv("PARLEY_SETTINGS", conf)
	out.b.Reset()
	if code := run(context.Background(), []string{"party", "list"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "alpha") {
		t.Fatalf("party list through PARLEY_SETTINGS: %d %q %s", code, out.String(), errb.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	var sout, serr lockedBuf
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, &sout, &serr) }()
	base := "http://" + addr
	for {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, serr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	get := func(token string) int {
		req, _ := http.NewRequest("GET", base+"/taxii2/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	bad := "parley_" + strings.Repeat("Z", 43)
	if get(added.Token) != 200 || get(bad) != 401 {
		t.Fatal("unexpected statuses")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve: exit %d: %s", code, serr.String())
	}
	if sout.String() != "" {
		t.Errorf("serve in JSON mode wrote on stdout: %q", sout.String())
	}
	var requests []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(serr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a log line that is not JSON: %q", l)
		}
		if m["msg"] == "request" {
			requests = append(requests, m)
		}
	}
	// At warn: the /healthz polls and the 200 are not logged, the 401 is.
	if len(requests) != 1 || requests[0]["status"] != float64(401) || requests[0]["route"] != "/taxii2/" {
		t.Errorf("access log at warn: %v", requests)
	}
	for _, tok := range []string{added.Token, bad} {
		if strings.Contains(serr.String(), tok) {
			t.Errorf("a token in the log")
		}
	}
}

// TestSettingsFileMistakes: serve refuses settings no command has and names
// the line; a bad log level is a usage error.
func TestSettingsFileMistakes(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "parley.conf")
	os.WriteFile(conf, []byte("data = "+dir+"\nlisne = 1\n"), 0o600)
	var out, errb lockedBuf
	if code := run(context.Background(), []string{"serve", "--config", conf}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "line 2") || !strings.Contains(errb.String(), "lisne") {
		t.Errorf("serve with a misspelt setting: exit %d, %q", code, errb.String())
	}
	errb.b.Reset()
	if code := run(context.Background(), []string{"serve", "--data", dir, "--log-level", "loud"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "--log-level") {
		t.Errorf("serve --log-level loud: exit %d, %q", code, errb.String())
	}
	errb.b.Reset()
	if code := run(context.Background(), []string{"party", "list", "--config", filepath.Join(dir, "missing.conf")}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "missing.conf") {
		t.Errorf("a missing settings file: exit %d, %q", code, errb.String())
	}
}
