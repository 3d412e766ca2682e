//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/exchange"
)

// lockedBuffer collects a server's log while it writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDiskFullOnRealFilesystem (issue 15, finding 4) fills a real
// filesystem: `parley serve` keeps its data on an 8 MiB tmpfs, a filler
// file takes most of it, and a client ingests until the disk is full.
// While writes fail, clients get 503 with Retry-After, the log says the
// disk is full, and /readyz fails; once the filler is deleted, writes
// succeed again without a restart and /readyz is 200; and every object
// acknowledged before, during and after is there, also after a restart.
// Mounting needs root (CAP_SYS_ADMIN); elsewhere the test skips.
func TestDiskFullOnRealFilesystem(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server on a tmpfs; skipped with -short")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=8m"); err != nil {
		t.Skipf("cannot mount an 8 MiB tmpfs on %s (%v): needs root or CAP_SYS_ADMIN", mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	bin := parleyBin(t)
	data := filepath.Join(mnt, "data")
	last := operatorCmd(t, bin, data)
	token := last("party", "add", "alpha")
	coll := last("collection", "add", "--title", "feed", "--read", "alpha", "--write", "alpha")

	addr := freeAddr(t)
	base := "http://" + addr
	var logs *lockedBuffer
	var srv *exec.Cmd
	serve := func() {
		t.Helper()
		logs = &lockedBuffer{}
		srv = exec.Command(bin, "serve", "--data", data, "--listen", addr)
		srv.Stdout, srv.Stderr = logs, logs
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if resp, err := http.Get(base + "/healthz"); err == nil {
				resp.Body.Close()
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("server did not answer: %v\n%s", err, logs)
			}
		}
	}
	serve()
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	c, err := client.New(base+"/taxii2/", client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}

	// post sends one batch of n indicators of about 1 KiB each and returns
	// the status code, the Retry-After header and the ids acknowledged.
	note := strings.Repeat("seen in a phishing campaign against regional banks; ", 18)
	next := 0
	post := func(n int) (int, string, []string) {
		t.Helper()
		objs := make([]json.RawMessage, 0, n)
		for i := next; i < next+n; i++ {
			objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"C2 %d","description":"%s","pattern":"[ipv4-addr:value = '10.%d.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
				i, i, note, (i>>16)&255, (i>>8)&255, i&255)))
		}
		next += n
		body, _ := json.Marshal(map[string]any{"objects": objs})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/taxii2/"+exchange.OperatorRoot+"/collections/"+coll+"/objects/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("posting a batch: %v", err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			return resp.StatusCode, resp.Header.Get("Retry-After"), nil
		}
		var st struct {
			Successes []struct{ ID string } `json:"successes"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatalf("status resource %s: %v", raw, err)
		}
		var ids []string
		for _, s := range st.Successes {
			ids = append(ids, s.ID)
		}
		return resp.StatusCode, "", ids
	}
	ready := func() (int, string) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	acked := map[string]bool{}
	ack := func(ids []string) {
		for _, id := range ids {
			acked[id] = true
		}
	}
	if code, _, ids := post(20); code != http.StatusAccepted || len(ids) != 20 {
		t.Fatalf("first batch: %d, %d acknowledged", code, len(ids))
	} else {
		ack(ids)
	}

	// Leave about 1.5 MiB: a few dozen batches fill it.
	var fs syscall.Statfs_t
	if err := syscall.Statfs(mnt, &fs); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	if free := int64(fs.Bavail) * int64(fs.Bsize); free > 1536<<10 {
		if err := os.WriteFile(filler, make([]byte, free-1536<<10), 0o600); err != nil {
			t.Fatalf("writing the filler: %v", err)
		}
	}
	fullAt, refused, retryAfter := -1, 0, ""
	for i := 0; i < 200 && refused < 20; i++ {
		code, ra, ids := post(50)
		switch {
		case code == http.StatusAccepted:
			ack(ids)
		case code == http.StatusServiceUnavailable:
			if fullAt < 0 {
				fullAt = i
				retryAfter = ra
			}
			if ra == "" {
				t.Fatalf("503 without Retry-After on batch %d", i)
			}
			refused++
		default:
			t.Fatalf("batch %d on a filling disk: status %d, want 202 or 503\n%s", i, code, logs)
		}
	}
	if fullAt < 0 {
		t.Fatalf("200 batches of 50 indicators never filled the disk")
	}
	t.Logf("disk full after %d batches (%d objects acknowledged); %d writes refused with 503, Retry-After %s", fullAt, len(acked), refused, retryAfter)
	if code, body := ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "disk is full") {
		t.Errorf("/readyz while writes fail for lack of space: %d %q, want 503 saying the disk is full", code, body)
	} else {
		t.Logf("/readyz while full: %d %q", code, body)
	}
	log := logs.String()
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "request failed") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 || !strings.Contains(log, "disk full") && !strings.Contains(log, "SQLITE_FULL") {
		t.Fatalf("the log does not say the disk is full:\n%s", log)
	}
	t.Logf("%d refused writes, %d 'request failed' lines (rate-limited); the first: %s", refused, len(lines), lines[0])

	// Free the space: writes resume without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	resumed := false
	for i := 0; i < 30 && !resumed; i++ {
		code, _, ids := post(50)
		switch code {
		case http.StatusAccepted:
			ack(ids)
			resumed = true
		case http.StatusServiceUnavailable:
			time.Sleep(500 * time.Millisecond)
		default:
			t.Fatalf("write after freeing space: status %d", code)
		}
	}
	if !resumed {
		t.Fatalf("writes did not resume within 30 tries after space was freed\n%s", logs)
	}
	if code, body := ready(); code != http.StatusOK {
		t.Fatalf("/readyz after writes resumed: %d %q", code, body)
	}

	// Nothing acknowledged is lost, on the running server and after a
	// restart.
	check := func(when string) {
		t.Helper()
		seen := map[string]bool{}
		for nxt := ""; ; {
			page, err := c.GetObjects(ctx, exchange.OperatorRoot, coll, client.Filter{Limit: 1000, Next: nxt})
			if err != nil {
				t.Fatalf("reading back %s: %v", when, err)
			}
			for _, raw := range page.Objects {
				var o struct{ ID string }
				if err := json.Unmarshal(raw, &o); err != nil {
					t.Fatal(err)
				}
				seen[o.ID] = true
			}
			if !page.More {
				break
			}
			nxt = page.Next
		}
		for id := range acked {
			if !seen[id] {
				t.Fatalf("%s: acknowledged %s is missing (%d of %d acknowledged seen)", when, id, len(seen), len(acked))
			}
		}
	}
	check("after the disk was freed")
	srv.Process.Signal(syscall.SIGTERM)
	srv.Wait()
	serve()
	check("after a restart")
	t.Logf("all %d acknowledged objects read back, before and after a restart", len(acked))
}
