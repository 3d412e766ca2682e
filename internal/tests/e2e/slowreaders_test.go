package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/exchange"
)

// TestSlowReadersDoNotPinMemory (issue 15, finding 5): 100 connections ask a
// real `parley serve` process for 10,000-object pages and never read a byte
// of the answers. The server's peak resident memory (VmHWM, read from /proc)
// must stay under 300 MiB while they hang on. Before the large-response
// bound, the same load pushed it to 878 MiB and kept it there.
func TestSlowReadersDoNotPinMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and loads 10,000 objects; skipped with -short")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to read the server's resident memory")
	}
	bin := parleyBin(t)
	data := filepath.Join(t.TempDir(), "data")
	last := operatorCmd(t, bin, data)
	token := last("party", "add", "alpha")
	coll := last("collection", "add", "--title", "feed", "--read", "alpha", "--write", "alpha")

	addr := freeAddr(t)
	srv := exec.Command(bin, "serve", "--data", data, "--listen", addr)
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	base := "http://" + addr
	c, err := client.New(base+"/taxii2/", client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := c.Discovery(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not answer: %v", err)
		}
	}
	// Objects of about 1 KiB, so a 10,000-object page (about 10 MiB) is
	// larger than what the kernel's socket buffers absorb on loopback.
	note := strings.Repeat("observed in a phishing campaign against regional banks; ", 14)
	for i := range 20 {
		batch := make([]json.RawMessage, 0, 500)
		for n := i * 500; n < (i+1)*500; n++ {
			batch = append(batch, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"C2 %d","description":"%s","pattern":"[ipv4-addr:value = '10.%d.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
				n, n, note, (n>>16)&255, (n>>8)&255, n&255)))
		}
		if _, err := c.AddObjects(ctx, exchange.OperatorRoot, coll, batch); err != nil {
			t.Fatal(err)
		}
	}
	hwm := func() int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmHWM:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
		t.Fatal("no VmHWM in /proc status")
		return 0
	}
	before := hwm()

	req := "GET /taxii2/" + exchange.OperatorRoot + "/collections/" + coll + "/objects/?limit=10000 HTTP/1.1\r\n" +
		"Host: " + addr + "\r\nAccept: application/taxii+json;version=2.1\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	var conns []net.Conn
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	for range 100 {
		cn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if tc, ok := cn.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096) // a reader that takes (almost) nothing
		}
		if _, err := cn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn)
	}
	// Let the server build and try to send every answer it will.
	time.Sleep(20 * time.Second)
	peak := hwm()
	t.Logf("server peak resident memory: %d MiB before, %d MiB with 100 non-reading clients of 10,000-object pages", before>>20, peak>>20)
	if peak > 300<<20 {
		t.Fatalf("server peak resident memory %d MiB with 100 non-reading clients; the bound is 300 MiB", peak>>20)
	}
	// Slow clients that go away free what they held: a reader that reads is
	// served at once afterwards. (While they hang on, they hold every
	// large-response slot until the write deadline; docs/operations.md.)
	for _, cn := range conns {
		cn.Close()
	}
	conns = nil
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := c.GetObjects(rctx, exchange.OperatorRoot, coll, client.Filter{Limit: 10}); err != nil {
		t.Fatalf("a reading client after the slow ones left: %v", err)
	}
}
